/**
 * What a benchmark run connects to and what the scenarios get from it: the raw clients the floors use
 * and factories for stockpyle's stores (opened by `openEnv`, see ./env.ts).
 */
import type HashRing from 'hashring'
import type { Redis } from 'ioredis'
import type { Kysely } from 'kysely'
import type { MemcacheClient } from 'memcache-client'
import type { Packr } from 'msgpackr'
import type { MemcacheStore } from '../../stores/memcache/memcache-store.js'
import type { RedisStore } from '../../stores/redis/redis-store.js'
import type { SqlStore } from '../../stores/sql/sql-store.js'

/** The stores a run may use. */
export const STORE_NAMES = ['memory', 'redis', 'memcached', 'sqlite', 'postgres'] as const
/** One of {@link STORE_NAMES}. */
export type StoreName = (typeof STORE_NAMES)[number]

/** Where the servers are. */
export interface Targets {
  readonly stores: ReadonlySet<StoreName>
  readonly redisUrl?: string | undefined
  readonly memcached?: readonly string[] | undefined
  readonly postgresUrl?: string | undefined
  /** SQLite database file; default: a file in a fresh temp directory, removed at the end. */
  readonly sqlitePath?: string | undefined
  /**
   * Prefix of every cache key written (and deleted at the end in Redis: the keys under `<prefix>:`).
   * Default: `stockpyle-bench-<run id>`, a prefix of the run's own, so that runs sharing a server
   * never touch each other's keys.
   */
  readonly prefix?: string | undefined
}

/** Lifetime of every cache entry the benchmark writes, in seconds (what is left in memcached expires). */
export const BENCH_TTL_SECONDS = 600

/** Rows of the run's table: ids 1..ROWS. */
export const ROWS = 20_000

/** One SQL database of the run. */
export interface SqlEnv {
  readonly dialect: 'sqlite' | 'postgres'
  readonly url: string
  /** The run's table of `BenchUser` rows (`stockpyle_bench_users_<run id>`), created at the start and dropped at the end. */
  readonly table: string
  /** The floor's own Kysely instance (a separate connection). */
  readonly db: Kysely<any>
  /** A new SqlStore on the database, mapping `BenchUser` to {@link table}. */
  newStore(): Promise<SqlStore>
  /** Server version, for the machine description. */
  readonly version: string
}

/** Everything the scenarios need. */
export interface BenchEnv {
  readonly targets: Targets
  /** Prefix of the run's cache keys: every key the run writes is under `<prefix>:`. */
  readonly prefix: string
  /** The run's table in each SQL database (see {@link SqlEnv.table}). */
  readonly table: string
  /** The floors' codec: msgpackr with the same options as stockpyle's. */
  readonly packr: Packr
  readonly redis?: RedisEnv
  readonly memcached?: MemcachedEnv
  readonly sqlite?: SqlEnv
  readonly postgres?: SqlEnv
  /**
   * Closes every connection, deletes the run's Redis keys, drops its table and removes temp files;
   * a clean-up step that fails is reported as one warning line (`warn` of `openEnv`), not thrown.
   * Runs once: later calls return the same promise. The stores' `newStore()` throw once it began.
   */
  close(): Promise<void>
}

/** The run's Redis. */
export interface RedisEnv {
  readonly url: string
  /** The floor's client. */
  readonly client: Redis
  /** A new RedisStore (under `prefix` instead of the run's when given; keep it under `<run prefix>:`). */
  newStore(prefix?: string): RedisStore
  readonly version: string
}

/** The run's memcached servers. */
export interface MemcachedEnv {
  readonly servers: readonly string[]
  /** The floor's clients, one per server, and the ketama ring that picks one. */
  readonly clients: ReadonlyMap<string, MemcacheClient>
  readonly ring: HashRing | undefined
  clientFor(key: string): MemcacheClient
  newStore(): MemcacheStore
  readonly version: string
}

/**
 * What the openers of each server share: the run's names, its clean-up and its signal. Steps are run
 * by `openEnv` in order; a step that fails leaves the steps registered so far to `close`.
 */
export interface OpenContext {
  readonly prefix: string
  readonly table: string
  readonly signal: AbortSignal | undefined
  readonly log: (line: string) => void
  /** Registers work for `close` (run in the reverse order); its failure is ignored. */
  onClose(close: () => Promise<void> | void): void
  /** Registers a clean-up step for `close`; when it fails, one warning line says `cannot <what>: <error>`. */
  onCleanUp(what: string, cleanUp: () => Promise<void> | void): void
  /** Throws once `close` began (a scenario still running after SIGINT must not open a new store). */
  notClosed(): void
}
