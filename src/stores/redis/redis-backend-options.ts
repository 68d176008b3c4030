import type { Cluster, Redis } from 'ioredis'
import type { Clock } from '../../core/lifetime.js'

/** Options of {@link RedisBackend}. */
export interface RedisBackendOptions {
  /** A connected (or lazily connecting) ioredis `Redis` or `Cluster`. */
  readonly client: Redis | Cluster
  /** Close the client in `close()`. `false` for a client the caller owns. */
  readonly ownsClient: boolean
  /** Upper bound in ms for each operation, including waiting for the first connection. */
  readonly timeout: number
  /** Time source for turning absolute expiries into server-side `PX` lifetimes. */
  readonly clock: Clock
  /** Name for messages, e.g. `redis(127.0.0.1:6379)`. */
  readonly name: string
  /**
   * Cluster only: ms a master that failed is skipped (its keys fail at once) before one call probes it
   * again. Default 1000.
   */
  readonly retryDelay?: number | undefined
  /**
   * Whether the store over this backend can clear its keys by prefix: `false` for a store without a
   * prefix (clearing would remove every key of the server), which then has no `clear`. Default `true`.
   */
  readonly clearable?: boolean | undefined
}
