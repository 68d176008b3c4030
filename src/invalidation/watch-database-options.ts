import type { Lookup, Model } from '../core/model.js'
import type { TableNaming } from '../stores/sql/naming.js'
import type { ListenConnectionOptions } from '../stores/sql/pg-driver.js'
import type { Kysely } from '../stores/sql/postgres-access.js'
import type { SqlStore } from '../stores/sql/sql-store.js'

/**
 * Options of {@link watchDatabase}. The watcher LISTENs on a dedicated connection made from `url`,
 * `connection` or the options of `pool`.
 */
export interface WatchDatabaseOptions extends ListenConnectionOptions {
  /** The models whose tables have triggers (see {@link installInvalidationTriggers}). */
  models: readonly Model[]
  /** The NOTIFY channel the triggers use. Default {@link DEFAULT_ROWS_CHANNEL}. */
  channel?: string | undefined
  /**
   * The SqlStore whose table naming and camelCase mapping the triggers were installed with, also
   * used to introspect the tables. Default: the last (authoritative) layer of the first store given,
   * when it is a SqlStore on PostgreSQL and `db` is not given. Not with `db`.
   */
  sql?: SqlStore | undefined
  /**
   * Without a SqlStore: a Kysely instance on the database, to introspect the tables (default: a
   * connection from `url`/`connection`/`pool`). Given, it is used instead of the chain's last layer.
   */
  db?: Kysely<any> | undefined
  /** Without a SqlStore: SqlStore's `tables` option. Refused (InvalidOptionError) when a SqlStore supplies the naming. */
  tables?: TableNaming | undefined
  /** Without a SqlStore: SqlStore's `camelCase` option. Refused (InvalidOptionError) when a SqlStore supplies the naming. */
  camelCase?: boolean | undefined
  /**
   * Clear every in-process cache layer among the stores — each ProcessMemoryStore, also inside chains
   * and behind decorators (a StoreDecorator's `inner`), and any other store declaring
   * `capabilities.inProcess` that has `clear()` — when the LISTEN connection goes down, when it is up
   * again, when a change cannot be targeted (TRUNCATE, an oversized key), at each check that finds a
   * table without its triggers, and when a check finds a table recreated or a partition dropped or
   * detached. Default `true`.
   */
  clearMemory?: boolean | undefined
  /** Ms allowed for connecting, LISTEN and heartbeat queries. Default `1000`. */
  timeout?: number | undefined
  /**
   * Ms between heartbeats on the LISTEN connection: each is one catalog query that checks the triggers
   * of every watched table (see {@link watchDatabase}; so a table recreated, or a partition dropped or
   * detached, is noticed within this) and notices a frozen server within `heartbeatInterval + timeout`.
   * `0` = off (the triggers are then checked only at each (re)connect). Default `2000`.
   */
  heartbeatInterval?: number | undefined
  /** Longest wait in ms between reconnect attempts (doubling from 100 ms). Default `2000`. */
  maxBackoff?: number | undefined
  /**
   * Receives every problem: LISTEN connection errors (the first of each outage), a failed
   * `batchInvalidate`, unknown tables, malformed notifications, changes that cannot be targeted
   * (TRUNCATE, oversized keys: a `StockpyleError` saying which table), a table whose triggers are
   * missing, disabled or notify another channel (a `SchemaError`, once until they are back), a table
   * recreated or a partition dropped or detached since the last check, and what `onReconnect` or
   * `onInvalidate` throw or their promises reject with. Default (undefined): the watcher's first
   * such error is one process warning `STOCKPYLE_INVALIDATION_ERROR` naming the watcher and the error;
   * later ones are dropped. What `onError` throws, or its promise rejects with, is one process warning
   * `STOCKPYLE_CALLBACK` (the first time; later ones are dropped).
   */
  onError?: ((error: unknown) => void) | undefined
  /**
   * Called after the LISTEN connection came back after an outage. Row changes committed meanwhile
   * were not seen: memory layers are cleared (see `clearMemory`); shared layers (Redis, memcached)
   * keep what they hold until other processes' watchers evict it or it expires — flush them here if
   * that is not good enough.
   */
  onReconnect?: (() => void) | undefined
  /** Called after each batch of invalidations of one model was applied to every store (for metrics and tests). */
  onInvalidate?: ((model: Model, lookups: readonly Lookup<Model>[]) => void) | undefined
}

/** A running {@link watchDatabase}. */
export interface DatabaseWatcher {
  /** True while the LISTEN connection is up (whether the tables have their triggers: `ready()` and `onError` say). */
  readonly listening: boolean
  /**
   * Resolves once the watcher listens, knows the tables and found their triggers (the first time).
   * @throws the introspection error (e.g. `E_SCHEMA` for a missing table); SchemaError (`E_SCHEMA`) naming
   *   each table without both triggers enabled on the watcher's channel (run installInvalidationTriggers;
   *   the watcher keeps running and evicts once they are there); StoreClosedError when closed before.
   */
  ready(): Promise<void>
  /** Stops listening, waits for invalidations in progress, and closes the connections the watcher made. Idempotent. */
  close(): Promise<void>
}

/** The option names {@link watchDatabase} accepts (anything else is an InvalidOptionError). */
export const KNOWN = [
  'url',
  'connection',
  'pool',
  'models',
  'channel',
  'sql',
  'db',
  'tables',
  'camelCase',
  'clearMemory',
  'timeout',
  'heartbeatInterval',
  'maxBackoff',
  'onError',
  'onReconnect',
  'onInvalidate',
] as const
