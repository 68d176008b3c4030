import {
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  isAbortedTransactionError,
  type QueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from 'kysely'
import type { WriteMark } from './cache-sync-mark.js'

/** Work to run once the connection's transaction committed or its COMMIT failed (dropped on rollback). */
export type AfterCommitWork = () => Promise<void>

/**
 * What the wrapped driver hands every statement to: the plugin's side, which follows the watched
 * writes. It sees each statement as it reaches the driver — after every plugin of the Kysely instance
 * transformed it (a `CamelCasePlugin`'s renaming included) — together with the connection it runs on.
 */
export interface StatementRunner {
  /**
   * Runs `compiledQuery` on `connection.inner`, and resolves to what that connection would have given
   * (a watched write runs with the plugin's RETURNING and its invalidation is run or queued).
   */
  execute<R>(compiledQuery: CompiledQuery, connection: TrackedConnection): Promise<QueryResult<R>>
  /** Streams `compiledQuery` on `connection.inner`, each chunk as that connection would have given it. */
  stream<R>(
    compiledQuery: CompiledQuery,
    chunkSize: number | undefined,
    connection: TrackedConnection,
  ): AsyncIterableIterator<QueryResult<R>>
  /**
   * The error `what` is refused with before it reaches the database, or `undefined`: once the chain is
   * closed, a COMMIT with invalidations queued is refused (they could not run).
   */
  refusal(what: string): Error | undefined
  /** A transaction committed, or its COMMIT failed (outcome unknown): run its queued work (never rejects). */
  committed(work: readonly AfterCommitWork[]): Promise<void>
  /**
   * Whether a transaction is open on `connection`, asked after a statement or a COMMIT failed inside
   * one: SQLite keeps it open when a deferred constraint or a busy database refuses the COMMIT, and ends
   * it on its own after some errors (`RAISE(ROLLBACK)` in a trigger, a full disk, an interrupt).
   * `undefined` when the dialect cannot tell.
   */
  transactionOpen(connection: DatabaseConnection): Promise<boolean | undefined>
}

/**
 * One acquisition of a connection of the wrapped driver: knows whether a transaction is open and what
 * waits for its COMMIT.
 */
export class TrackedConnection implements DatabaseConnection {
  /** The dialect's own connection. */
  readonly inner: DatabaseConnection
  /** Work queued for COMMIT; `undefined` outside a transaction. */
  pending: AfterCommitWork[] | undefined
  /** Length of {@link pending} at each open savepoint. */
  readonly savepoints = new Map<string, number>()
  readonly #runner: StatementRunner

  constructor(inner: DatabaseConnection, runner: StatementRunner) {
    this.inner = inner
    this.#runner = runner
  }

  executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const result = this.#runner.execute<R>(compiledQuery, this)
    return this.pending === undefined ? result : result.catch((err: unknown) => this.#afterFailure(err))
  }

  streamQuery<R>(compiledQuery: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    const chunks = this.#runner.stream<R>(compiledQuery, chunkSize, this)
    return this.pending === undefined ? chunks : this.#watchFailure(chunks)
  }

  /** Ends the transaction's bookkeeping; what was queued for its COMMIT is handed back. */
  end(): AfterCommitWork[] {
    const work = this.pending ?? []
    this.pending = undefined
    this.savepoints.clear()
    return work
  }

  async *#watchFailure<R>(chunks: AsyncIterableIterator<QueryResult<R>>): AsyncGenerator<QueryResult<R>> {
    try {
      yield* chunks
    } catch (err) {
      await this.#afterFailure(err)
    }
  }

  /**
   * A statement failed inside a transaction. When the database ended the transaction on its own, what
   * was queued for its COMMIT was rolled back with it, and the statements that follow on the connection
   * commit one by one (SQLite's autocommit), so they must invalidate at once: the queue is dropped.
   */
  async #afterFailure(err: unknown): Promise<never> {
    if (this.pending !== undefined && (await this.#runner.transactionOpen(this.inner)) === false) this.end()
    throw err
  }
}

function unsupported(name: string): never {
  throw new Error(`the wrapped Kysely driver has no ${name}()`)
}

/** Delegates to the dialect's driver, tracking transactions per connection. */
class TrackingDriver implements Driver {
  readonly #inner: Driver
  readonly #runner: StatementRunner

  constructor(inner: Driver, runner: StatementRunner) {
    this.#inner = inner
    this.#runner = runner
  }

  init(): Promise<void> {
    return this.#inner.init()
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    return new TrackedConnection(await this.#inner.acquireConnection(), this.#runner)
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const c = connection as TrackedConnection
    await this.#inner.beginTransaction(c.inner, settings)
    c.end()
    c.pending = []
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const c = connection as TrackedConnection
    // the transaction stays open, to be rolled back (Kysely's transaction() does)
    const refusal = c.pending?.length ? this.#runner.refusal('the COMMIT of a transaction that wrote watched tables') : undefined
    if (refusal !== undefined) throw refusal
    try {
      await this.#inner.commitTransaction(c.inner)
    } catch (err) {
      // The transaction is still open (SQLite): everything stays queued for its next COMMIT or ROLLBACK.
      if ((await this.#runner.transactionOpen(c.inner)) === true) throw err
      // Whether the COMMIT took effect is unknown (its reply may be lost with the connection): the rows
      // the transaction wrote are invalidated all the same (harmless if it rolled back), then it rejects.
      // A COMMIT the database answered with ROLLBACK (an aborted transaction) is known to have rolled back.
      const work = c.end()
      if (work.length > 0 && !isAbortedTransactionError(err)) await this.#runner.committed(work)
      throw err
    }
    const work = c.end()
    // The connection stays with Kysely: the driver cannot tell a `db.transaction()` that acquired it
    // from one inside `db.connection()` (a Migrator's scope), whose later statements still run on it.
    // What the invalidations need from a pool (a PostgresBus publishing) must come from its own.
    if (work.length > 0) await this.#runner.committed(work)
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const c = connection as TrackedConnection
    c.end()
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

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    await this.#inner.releaseConnection((connection as TrackedConnection).inner)
  }

  destroy(): Promise<void> {
    return this.#inner.destroy()
  }
}

/**
 * `dialect` with a driver that tracks transactions per connection and hands every statement to
 * `runner`, and a query compiler that takes the plugin's `mark` out of the writes.
 */
export function trackingDialect(dialect: Dialect, runner: StatementRunner, mark: WriteMark): Dialect {
  return {
    createDriver: () => new TrackingDriver(dialect.createDriver(), runner),
    createQueryCompiler: () => mark.compiler(dialect.createQueryCompiler()),
    createAdapter: () => dialect.createAdapter(),
    createIntrospector: (db) => dialect.createIntrospector(db),
  }
}

/**
 * A dialect over one already-open connection of `dialect` (no transactions): how the plugin reads a
 * table's schema on the very connection a statement ran on, even inside that connection's transaction.
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
    createDriver: () => driver,
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createAdapter: () => dialect.createAdapter(),
    createIntrospector: (db) => dialect.createIntrospector(db),
  }
}
