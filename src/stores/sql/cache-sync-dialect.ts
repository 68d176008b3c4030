import type { CompiledQuery, DatabaseConnection, Dialect, Driver, QueryCompiler, QueryResult, TransactionSettings } from 'kysely'

/** Work to run once the connection's transaction committed or its COMMIT failed (dropped on rollback). */
export type AfterCommitWork = () => Promise<void>

/** A connection of the wrapped driver: knows whether a transaction is open and what waits for its COMMIT. */
export class TrackedConnection implements DatabaseConnection {
  /** The dialect's own connection. */
  readonly inner: DatabaseConnection
  /** Work queued for COMMIT; `undefined` outside a transaction. */
  pending: AfterCommitWork[] | undefined
  /** Length of {@link pending} at each open savepoint. */
  readonly savepoints = new Map<string, number>()
  readonly #tracker: ConnectionTracker

  constructor(inner: DatabaseConnection, tracker: ConnectionTracker) {
    this.inner = inner
    this.#tracker = tracker
  }

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    this.#tracker.ran(compiledQuery, this)
    let result: QueryResult<R> | undefined
    try {
      await this.#tracker.before(compiledQuery, this.inner)
      result = await this.inner.executeQuery<R>(compiledQuery)
      return result
    } finally {
      this.#tracker.answered(compiledQuery, result)
    }
  }

  streamQuery<R>(compiledQuery: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    this.#tracker.ran(compiledQuery, this)
    return this.inner.streamQuery<R>(compiledQuery, chunkSize)
  }
}

/**
 * What the wrapped driver reports to the plugin, per execution of a statement (`compiledQuery`: one
 * object per execution; its `queryId` is shared by every execution of a builder and of the builders
 * derived from it).
 */
export interface ConnectionTracker {
  /** A statement ran on `connection`. */
  ran(compiledQuery: CompiledQuery, connection: TrackedConnection): void
  /** Runs what must precede the statement on the same connection (a SELECT of old keys); resolves at once otherwise. */
  before(compiledQuery: CompiledQuery, connection: DatabaseConnection): Promise<void>
  /** The statement's result, as the driver gave it (before plugins transform it); `undefined` when it failed. */
  answered(compiledQuery: CompiledQuery, result: QueryResult<unknown> | undefined): void
  /**
   * A transaction committed, or its COMMIT failed (outcome unknown): run its queued work (never
   * rejects: failures are the tracker's to report).
   */
  committed(work: readonly AfterCommitWork[]): Promise<void>
}

function unsupported(name: string): never {
  throw new Error(`the wrapped Kysely driver has no ${name}()`)
}

/** Delegates to the dialect's driver, tracking transactions per connection. */
class TrackingDriver implements Driver {
  readonly #inner: Driver
  readonly #tracker: ConnectionTracker
  readonly #wrapped = new WeakMap<DatabaseConnection, TrackedConnection>()

  constructor(inner: Driver, tracker: ConnectionTracker) {
    this.#inner = inner
    this.#tracker = tracker
  }

  init(): Promise<void> {
    return this.#inner.init()
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const inner = await this.#inner.acquireConnection()
    let tracked = this.#wrapped.get(inner)
    if (tracked === undefined) {
      tracked = new TrackedConnection(inner, this.#tracker)
      this.#wrapped.set(inner, tracked)
    }
    return tracked
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const c = connection as TrackedConnection
    await this.#inner.beginTransaction(c.inner, settings)
    c.pending = []
    c.savepoints.clear()
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const c = connection as TrackedConnection
    try {
      await this.#inner.commitTransaction(c.inner)
    } catch (err) {
      // Whether the COMMIT took effect is unknown (its reply may be lost with the connection): the rows
      // the transaction wrote are invalidated all the same (harmless if it rolled back), then it rejects.
      const work = c.pending ?? []
      c.pending = undefined
      c.savepoints.clear()
      if (work.length > 0) await this.#tracker.committed(work)
      throw err
    }
    const work = c.pending ?? []
    c.pending = undefined
    c.savepoints.clear()
    if (work.length > 0) await this.#tracker.committed(work)
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const c = connection as TrackedConnection
    c.pending = undefined
    c.savepoints.clear()
    await this.#inner.rollbackTransaction(c.inner)
  }

  async savepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    const c = connection as TrackedConnection
    await (this.#inner.savepoint ?? unsupported('savepoint')).call(this.#inner, c.inner, name, compile)
    c.savepoints.set(name, c.pending?.length ?? 0)
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    const c = connection as TrackedConnection
    await (this.#inner.rollbackToSavepoint ?? unsupported('rollbackToSavepoint')).call(this.#inner, c.inner, name, compile)
    const at = c.savepoints.get(name)
    if (at !== undefined && c.pending !== undefined) c.pending.length = at
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    const c = connection as TrackedConnection
    await (this.#inner.releaseSavepoint ?? unsupported('releaseSavepoint')).call(this.#inner, c.inner, name, compile)
    c.savepoints.delete(name)
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return this.#inner.releaseConnection((connection as TrackedConnection).inner)
  }

  destroy(): Promise<void> {
    return this.#inner.destroy()
  }
}

/** `dialect` with a driver that tracks transactions per connection for `tracker`. */
export function trackingDialect(dialect: Dialect, tracker: ConnectionTracker): Dialect {
  return {
    createDriver: () => new TrackingDriver(dialect.createDriver(), tracker),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createAdapter: () => dialect.createAdapter(),
    createIntrospector: (db) => dialect.createIntrospector(db),
  }
}

/**
 * A dialect over one already-open connection (no transactions): how the plugin reads a table's schema
 * on the very connection a statement ran on, even inside that connection's transaction.
 */
export function connectionDialect(dialect: Dialect, connection: DatabaseConnection): Dialect {
  const driver: Driver = {
    init: async () => {},
    acquireConnection: async () => connection,
    beginTransaction: async () => unsupported('beginTransaction'),
    commitTransaction: async () => unsupported('commitTransaction'),
    rollbackTransaction: async () => unsupported('rollbackTransaction'),
    releaseConnection: async () => {},
    destroy: async () => {},
  }
  return {
    ...trackingDialect(dialect, { ran: () => {}, before: async () => {}, answered: () => {}, committed: async () => {} }),
    createDriver: () => driver,
  }
}
