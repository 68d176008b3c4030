/** Counters of one server of a memcached pool, since the backend was created. */
export interface MemcacheServerStats {
  /** `host:port` as configured. */
  readonly server: string
  /** Multi-get commands sent: one per `getMany` call that needed this server. */
  readonly getRequests: number
  /** Keys asked for in those multi-gets (distinct per call). */
  readonly keysRead: number
  /** Keys found. */
  readonly hits: number
  /** `set` commands sent (one per distinct key of a `setMany`, pipelined on one connection). */
  readonly setRequests: number
  /** `add` commands sent (one per entry of an `addMany`, pipelined). */
  readonly addRequests: number
  /** `delete` commands sent (one per distinct key of a `deleteMany`, pipelined). */
  readonly deleteRequests: number
  /**
   * Commands sent to repair keys whose earlier write failed: per key, a `gets` and where needed a `cas`
   * or `add` of a tombstone (a `delete` without tombstones); or a `flush_all`.
   */
  readonly repairRequests: number
  /** Calls on this server that failed (connection, timeout, server error, or failed fast while down). */
  readonly errors: number
  /** True while the server is considered down (calls fail fast until `retryDelay` has passed). */
  readonly down: boolean
  /** Keys whose write failed and that will be repaired (tombstoned, or deleted) before this server is used again. */
  readonly pendingRepairs: number
  /**
   * True while this process keeps away from the server: more writes to it failed than it can repair
   * (`MAX_PENDING_REPAIRS` (10,000)) and the store may not flush it (`ownsServers` is false), so it may
   * hold stale values this process no longer knows of. Calls fail fast until the server has restarted
   * (empty) since; checked with `stats` at most once per `retryDelay`.
   */
  readonly quarantined: boolean
}
