import type { ConnectionOptions } from 'node:tls'
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis'
import { CACHE_OPTION_NAMES, type CacheStoreOptions, checkCacheOptions, KeyValueStore } from '../../contracts/key-value-store.js'
import { InvalidOptionError, show } from '../../core/errors.js'
import { systemClock } from '../../core/lifetime.js'
import { msOption } from '../../core/option-values.js'
import { checkOptionNames } from '../../core/options.js'
import { checkRedisOptions, REDIS_STORE_OWNED } from './owned-redis-options.js'
import { RedisBackend } from './redis-backend.js'
import { clientName, DEFAULT_REDIS_TIMEOUT, isRedisClient } from './redis-backend-options.js'
import { checkRedisUrl } from './redis-url.js'

/** A Redis node address. */
export interface RedisNode {
  readonly host: string
  /** TCP port, 1–65535. */
  readonly port: number
}

/**
 * Options of {@link RedisStore}. Say where Redis is with exactly one of `client`, `cluster`, `url`, or
 * `host`/`port`; with none of them the store connects to `127.0.0.1:6379`.
 */
export interface RedisStoreOptions extends CacheStoreOptions {
  /** `redis://[user:pass@]host:port[/db]` or `rediss://…` (TLS). */
  url?: string | undefined
  /** Host of a single node; default `'127.0.0.1'`. */
  host?: string | undefined
  /** Port of a single node; default `6379`. */
  port?: number | undefined
  /** Startup nodes of a Redis Cluster (at least one). */
  cluster?: readonly RedisNode[] | undefined
  /**
   * An ioredis `Redis` or `Cluster` you created and own: the store never closes it, and its own
   * options (offline queue, retries) apply — `timeout` still bounds every operation.
   */
  client?: Redis | Cluster | undefined
  /**
   * Upper bound in ms for every operation, including waiting for the first connection; an operation
   * that takes longer rejects with `StoreUnavailableError`. Default `1000`.
   */
  timeout?: number | undefined
  /**
   * Cluster only: ms a master that failed (an error, or no answer within `timeout` — not a late part
   * of a master that answers, e.g. one held for a redirection) is skipped — its keys fail at once while
   * the other masters keep serving — before one call probes it again. Default `1000`. See `RedisBackend`.
   */
  retryDelay?: number | undefined
  /**
   * `true` or Node TLS options to connect with TLS (`rediss://` URLs imply it: `false` with one is
   * refused with `InvalidOptionError`).
   */
  tls?: boolean | ConnectionOptions | undefined
  /** Password (AUTH). */
  password?: string | undefined
  /** ACL user name (Redis ≥ 6). */
  username?: string | undefined
  /** Database index of a single node, 0 to 2^31 − 1; default `0`. Not available in a cluster. */
  db?: number | undefined
  /**
   * Extra ioredis options (e.g. `connectionName`, `keepAlive`, `family`, `connectTimeout`). Those the
   * store sets itself or has an option for are refused with `InvalidOptionError` naming
   * `redisOptions.<key>` and what to use instead: `keyPrefix` (use `prefix`: ioredis does not prefix
   * SCAN patterns, so `clear()` would remove nothing), `db`, `tls`, `password`, `username`, `host`,
   * `port`, and the fail-fast settings `lazyConnect`, `enableOfflineQueue`, `maxRetriesPerRequest`,
   * `retryStrategy` and `commandTimeout` (use `timeout`). For a cluster they go to each node's connection.
   */
  redisOptions?: RedisOptions | undefined
  /** Name for messages and stats; default `redis(host:port)` / `redis-cluster(host:port,…)`. */
  name?: string | undefined
}

/** The largest database number Redis' SELECT takes. */
const MAX_DB = 2 ** 31 - 1
const retryStrategy = (times: number): number => Math.min(times * 50, 500)
/**
 * A cache store in Redis or a Redis Cluster (ioredis 5). Objects are stored once under their primary
 * key with aliases for alternate keys (see {@link KeyValueStore}); expiry is set on the server (`PX`,
 * rounded up) and checked again on read.
 *
 * A batch read is one `MGET` (single node) or one pipeline of per-slot `MGET`s per cluster node. The
 * store fails fast: a dead, frozen or unreachable server makes operations reject with
 * `StoreUnavailableError` within `timeout` ms, and the connection recovers by itself once the server
 * is back.
 *
 * @example
 * const cache = new RedisStore({ url: 'redis://127.0.0.1:6379', lifetime: 300, prefix: 'myapp' })
 * @throws InvalidOptionError (synchronously) for an invalid option, naming it.
 */
export class RedisStore extends KeyValueStore {
  /** @throws InvalidOptionError naming the invalid option. */
  constructor(options: RedisStoreOptions = {}) {
    super(createBackend(options), { ...cacheOptions(options), name: backendName(options) })
  }

  /** The ioredis client (yours if you passed `client`). */
  get client(): Redis | Cluster {
    return (this.backend as RedisBackend).client
  }
}

/** The options KeyValueStore handles: everything that is not Redis-specific (so new cache options pass through). */
function cacheOptions(options: RedisStoreOptions): CacheStoreOptions {
  const { url, host, port, cluster, client, timeout, retryDelay, tls, password, username, db, redisOptions, name, ...rest } = options
  return rest
}

function fail(option: string, expected: string, got: unknown): never {
  throw new InvalidOptionError(`redis store: option \`${option}\` must be ${expected}, got ${show(got)}`)
}

function checkPort(option: string, port: unknown): void {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) fail(option, 'an integer port 1–65535', port)
}

function checkHost(option: string, host: unknown): void {
  if (typeof host !== 'string' || host === '') fail(option, 'a non-empty host name', host)
}

function backendName(options: RedisStoreOptions): string {
  if (options.name !== undefined) return options.name
  if (options.cluster !== undefined) return `redis-cluster(${options.cluster.map((n) => `${n.host}:${n.port}`).join(',')})`
  if (options.client !== undefined) return clientName(options.client)
  if (options.url !== undefined) {
    const url = new URL(options.url)
    return `redis(${url.hostname}:${url.port || 6379})`
  }
  return `redis(${options.host ?? '127.0.0.1'}:${options.port ?? 6379})`
}

const REDIS_STORE_OPTIONS = [
  ...CACHE_OPTION_NAMES,
  'url',
  'host',
  'port',
  'cluster',
  'client',
  'timeout',
  'retryDelay',
  'tls',
  'password',
  'username',
  'db',
  'redisOptions',
  'name',
]

/** Validates every option (all synchronously), then creates the client lazily — nothing connects yet. */
function createBackend(options: RedisStoreOptions): RedisBackend {
  checkOptionNames('redis store', options, REDIS_STORE_OPTIONS)
  checkCacheOptions('redis store', options)
  const {
    url,
    host,
    port,
    cluster,
    client,
    timeout: timeoutOption,
    retryDelay: retryDelayOption,
    tls,
    password,
    username,
    db,
    redisOptions,
    name,
  } = options
  const timeout = msOption('redis store', 'timeout', timeoutOption, DEFAULT_REDIS_TIMEOUT)
  msOption('redis store', 'retryDelay', retryDelayOption, 1000, true)
  if (name !== undefined && (typeof name !== 'string' || name === '')) fail('name', 'a non-empty string', name)
  const fromUrl = checkRedisUrl('redis store', url)
  if (host !== undefined) checkHost('host', host)
  if (port !== undefined) checkPort('port', port)
  if (cluster !== undefined) {
    if (!Array.isArray(cluster) || cluster.length === 0) fail('cluster', 'a non-empty array of {host, port}', cluster)
    cluster.forEach((node: unknown, i) => {
      if (typeof node !== 'object' || node === null) fail(`cluster[${i}]`, 'an object {host, port}', node)
      checkHost(`cluster[${i}].host`, (node as RedisNode).host)
      checkPort(`cluster[${i}].port`, (node as RedisNode).port)
    })
  }
  if (client !== undefined && !isRedisClient(client)) fail('client', 'an ioredis Redis or Cluster instance', client)
  const where = [
    ['client', client],
    ['cluster', cluster],
    ['url', url],
    ['host/port', host ?? port],
  ].filter(([, v]) => v !== undefined)
  if (where.length > 1) {
    throw new InvalidOptionError(`redis store: options ${where.map(([k]) => `\`${k}\``).join(' and ')} are exclusive: give exactly one`)
  }
  if (tls !== undefined && typeof tls !== 'boolean' && (typeof tls !== 'object' || tls === null))
    fail('tls', 'a boolean or TLS options', tls)
  if (password !== undefined && typeof password !== 'string') fail('password', 'a string', '(hidden)')
  if (username !== undefined && typeof username !== 'string') fail('username', 'a string', username)
  if (db !== undefined) {
    // SELECT takes a 32-bit signed integer: a larger one would fail only at the first call
    if (typeof db !== 'number' || !Number.isInteger(db) || db < 0 || db > MAX_DB) fail('db', 'an integer from 0 to 2^31 − 1', db)
    if (cluster !== undefined) fail('db', 'absent with `cluster` (a Redis Cluster has only database 0)', db)
  }
  // ioredis lets a URL's database and credentials win over the options: two answers, one silently lost
  if (db !== undefined && fromUrl.db !== undefined) {
    throw new InvalidOptionError('redis store: option `db` cannot be combined with a database in `url`: give one')
  }
  if ((password !== undefined || username !== undefined) && fromUrl.credentials) {
    throw new InvalidOptionError('redis store: options `password` and `username` cannot be combined with credentials in `url`: give one')
  }
  if (retryDelayOption !== undefined && cluster === undefined && (client as { isCluster?: boolean } | undefined)?.isCluster !== true) {
    fail('retryDelay', 'absent without a cluster (it is how long a failed cluster master is skipped)', retryDelayOption)
  }
  // ioredis would use TLS all the same: the scheme asks for it, and `tls: false` reads as "not given"
  if (tls === false && fromUrl.tls) {
    throw new InvalidOptionError(
      'redis store: option `tls: false` cannot be combined with a `rediss://` `url` (which asks for TLS): give one',
    )
  }
  checkRedisOptions('redis store', redisOptions, REDIS_STORE_OWNED)
  if (
    client !== undefined &&
    (tls !== undefined || password !== undefined || username !== undefined || db !== undefined || redisOptions !== undefined)
  ) {
    throw new InvalidOptionError(
      'redis store: option `client` cannot be combined with `tls`, `password`, `username`, `db` or `redisOptions`: configure your client',
    )
  }

  const clock = options.clock ?? systemClock
  // Without a prefix a clear would remove every key of the server: the store has none (capabilities.clearable false).
  const common = { name: backendName(options), timeout, retryDelay: retryDelayOption, clock, clearable: options.prefix !== '' }
  if (client !== undefined) return new RedisBackend({ ...common, client, ownsClient: false })

  // redisOptions go under the store's own settings: it may not give them (checked above), and a key it
  // gives as `undefined` must not unset them either.
  const nodeOptions: RedisOptions = {
    connectTimeout: Math.max(timeout, 1000),
    // On close, ioredis waits this long for the socket to close before destroying it, with a timer that
    // keeps the process alive: 2 s by default, for every client whose server died or froze.
    disconnectTimeout: timeout,
    ...redisOptions,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    // No commandTimeout: the store's deadline bounds every call and lets a reply that came in during
    // a stall win; ioredis's would not, and its timer only rejects a command (which stays queued for
    // its reply) at the cost of a second timer per command: measured 5–14% of a Redis hit's time.
    commandTimeout: undefined,
    keyPrefix: undefined,
    // (ioredis turns TLS on only for a URL starting with lower-case `rediss://`: say so for any case)
    tls: tls === undefined ? (fromUrl.tls ? {} : undefined) : tls === false ? undefined : tls === true ? {} : tls,
    password,
    username,
    db,
  }
  if (cluster !== undefined) {
    const { retryStrategy: _r, enableOfflineQueue: _q, ...perNode } = nodeOptions
    const clusterOptions: ClusterOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      clusterRetryStrategy: retryStrategy,
      slotsRefreshTimeout: Math.max(timeout, 1000),
      retryDelayOnFailover: 50,
      // A master refusing with CLUSTERDOWN (its view of the cluster lost the majority; it refuses for
      // the rejoin delay, ≥ 500 ms) fails its part at once, saying so. ioredis would park the command
      // and resend it after a slot refresh, which can wait on a frozen master past our deadline.
      retryDelayOnClusterDown: 0,
      redisOptions: perNode,
    }
    return new RedisBackend({
      ...common,
      client: new Cluster(
        cluster.map((n) => ({ host: n.host, port: n.port })),
        clusterOptions,
      ),
      ownsClient: true,
    })
  }
  const single: RedisOptions = { ...nodeOptions, enableOfflineQueue: false, retryStrategy }
  const redis = url !== undefined ? new Redis(url, single) : new Redis({ ...single, host: host ?? '127.0.0.1', port: port ?? 6379 })
  return new RedisBackend({ ...common, client: redis, ownsClient: true })
}
