import {
  CompiledQuery,
  createQueryId,
  type DatabaseConnection,
  type Dialect,
  Kysely,
  type QueryCompiler,
  type QueryId,
  QueryNode,
  type QueryResult,
  type RootOperationNode,
  SelectModifierNode,
  type SelectQueryNode,
  type UnknownRow,
  type UpdateQueryNode,
} from 'kysely'
import type { Model } from '../../core/model.js'
import { type AfterCommitWork, connectionDialect, type StatementRunner, type TrackedConnection } from './cache-sync-dialect.js'
import { planStatement, type SyncPlan, type WatchedTable } from './cache-sync-plan.js'
import { restrictToRows } from './cache-sync-restrict.js'
import { isKeyValue } from './row-mapper.js'
import { rowToAttributes } from './row-reader.js'
import type { SqlStore } from './sql-store.js'
import { sqliteTransactionOpen } from './sqlite-transaction-open.js'

/** The objects one statement touched, by model. */
export interface Invalidation {
  readonly model: Model
  readonly lookups: readonly object[]
}

/** What a {@link StatementSync} follows writes for: the plugin. */
export interface SyncTarget {
  readonly store: SqlStore
  readonly watched: ReadonlyMap<string, WatchedTable>
  /** The watched table with its key columns as the store maps them, introspected through `db` if need be. */
  resolve(table: WatchedTable, db: Kysely<any>): Promise<WatchedTable>
  /** Whether statements with this `queryId` were built by a Kysely instance that has the plugin. */
  follows(queryId: QueryId): boolean
  /** Invalidates in the chain (may reject: a statement outside a transaction then rejects). */
  invalidate(invalidations: readonly Invalidation[]): Promise<void>
  /** The error `what` (a followed write, a COMMIT after some) is refused with before it runs, or `undefined` while the chain is open. */
  refusal(what: string): Error | undefined
  /** Runs work queued for a COMMIT, reporting failures (never rejects). */
  runAll(work: readonly AfterCommitWork[]): Promise<void>
}

type Row = Record<string, unknown>

/**
 * The statement side of `CacheSyncPlugin`, behind the wrapped dialect's connections. It sees every
 * statement as it reaches the driver, after all plugins of the Kysely instance (so it sees the table
 * and column names the database gets, whatever plugin renamed them, and each execution on its own,
 * with the connection it runs on). A write on a watched table, built by a Kysely with the plugin, is
 * compiled again with a RETURNING of the key columns; an UPDATE of primary keys is preceded by a
 * SELECT of the old keys on the same connection, and restricted to the rows it read. The result is given back as the driver would have
 * given it without the plugin's columns — before any plugin's `transformResult` sees it — and the rows
 * are invalidated at once outside a transaction, after COMMIT inside one.
 */
export class StatementSync implements StatementRunner {
  readonly #target: SyncTarget
  readonly #dialect: Dialect
  #compiler: QueryCompiler | undefined
  readonly #onConnection = new WeakMap<DatabaseConnection, Kysely<any>>()

  constructor(target: SyncTarget, dialect: Dialect) {
    this.#target = target
    this.#dialect = dialect
  }

  async execute<R>(compiled: CompiledQuery, connection: TrackedConnection): Promise<QueryResult<R>> {
    const watched = this.#watchedWrite(compiled)
    if (watched === undefined) return connection.inner.executeQuery<R>(compiled)
    this.#refuseIfClosed(watched)
    const { plan, node } = await this.#plan(compiled, watched, connection.inner)
    const old = plan.before === undefined ? [] : await this.#oldRows(plan.before.select, connection.inner)
    const result = await connection.inner.executeQuery<Row>(this.#statement(plan, node, old, compiled.queryId))
    const keyRows = keysOf(plan, result.rows)
    await this.#follow(plan, [...keyRows, ...keysOf(plan, old)], connection)
    return restore(plan, result, keyRows, this.#target.store.dialect) as QueryResult<R>
  }

  stream<R>(compiled: CompiledQuery, chunkSize: number | undefined, connection: TrackedConnection): AsyncIterableIterator<QueryResult<R>> {
    const watched = this.#watchedWrite(compiled)
    if (watched === undefined) return connection.inner.streamQuery<R>(compiled, chunkSize)
    return this.#streamWatched<R>(compiled, watched, chunkSize, connection)
  }

  /**
   * A streamed write: every chunk without the plugin's columns, and every row invalidated once the
   * stream ended (a DML statement changes all its rows before the first chunk comes back, and outside a
   * transaction it commits when the stream ends). A consumer that stops early has the rest read first,
   * so that no changed row is left out.
   */
  async *#streamWatched<R>(
    compiled: CompiledQuery,
    watched: WatchedTable,
    chunkSize: number | undefined,
    connection: TrackedConnection,
  ): AsyncGenerator<QueryResult<R>> {
    this.#refuseIfClosed(watched)
    const { plan, node } = await this.#plan(compiled, watched, connection.inner)
    const old = plan.before === undefined ? [] : await this.#oldRows(plan.before.select, connection.inner)
    const keyRows = keysOf(plan, old)
    const chunks = connection.inner.streamQuery<Row>(this.#statement(plan, node, old, compiled.queryId), chunkSize)
    const read = async () => {
      const next = await chunks.next()
      if (next.done === true) return undefined
      keyRows.push(...keysOf(plan, next.value.rows))
      return next.value
    }
    // 'reading' until the database's stream ended or failed; a consumer that leaves before finds it 'reading'
    let state: 'reading' | 'ended' | 'failed' = 'reading'
    try {
      for (;;) {
        const chunk = await read().catch((err: unknown) => {
          state = 'failed'
          throw err
        })
        if (chunk === undefined) break
        yield withoutKeys(plan, chunk) as QueryResult<R>
      }
      state = 'ended'
    } finally {
      try {
        while (state === 'reading') if ((await read()) === undefined) state = 'ended'
      } finally {
        // what was read is invalidated also when the stream failed (harmless if nothing changed)
        await this.#follow(plan, keyRows, connection)
      }
    }
  }

  /**
   * A write on a watched table after the chain was closed: refused before it runs, since its
   * invalidation could not run and the caches (a shared one too) would keep what it replaced.
   * @throws StoreClosedError
   */
  #refuseIfClosed(watched: WatchedTable): void {
    const refusal = this.#target.refusal(`a write on table \`${watched.table}\``)
    if (refusal !== undefined) throw refusal
  }

  refusal(what: string): Error | undefined {
    return this.#target.refusal(what)
  }

  committed(work: readonly AfterCommitWork[]): Promise<void> {
    return this.#target.runAll(work)
  }

  /**
   * SQLite only (PostgreSQL keeps a failed transaction open until its ROLLBACK, and a failed COMMIT
   * ends it): a `BEGIN` on the connection fails with "cannot start a transaction within a transaction"
   * while one is open; one that succeeds is rolled back at once (it started nothing). `undefined` when
   * it cannot tell (PostgreSQL, or the probe failed for another reason).
   */
  async transactionOpen(connection: DatabaseConnection): Promise<boolean | undefined> {
    if (this.#target.store.dialect !== 'sqlite') return undefined
    return sqliteTransactionOpen((statement) => connection.executeQuery(CompiledQuery.raw(statement)))
  }

  /**
   * The watched table a statement built with the plugin writes (undefined for any other statement,
   * which runs untouched). Refuses, before it runs, a statement it cannot follow whatever the key columns.
   */
  #watchedWrite(compiled: CompiledQuery): WatchedTable | undefined {
    if (!this.#target.follows(compiled.queryId)) return undefined
    return planStatement(compiled.query, this.#target.watched, this.#target.store.dialect).plan?.watched
  }

  /**
   * For a write on a watched table: its plan, with the table's key columns as the store maps them
   * (introspected on the statement's connection on first use), and the statement to run instead (see
   * {@link #statement}).
   */
  async #plan(
    compiled: CompiledQuery,
    watched: WatchedTable,
    connection: DatabaseConnection,
  ): Promise<{ plan: SyncPlan; node: RootOperationNode }> {
    const table = await this.#target.resolve(watched, this.#kyselyOn(connection))
    const tables = this.#target.watched
    const resolved = {
      has: (key: string) => tables.has(key),
      get: (key: string) => (tables.get(key) === watched ? table : tables.get(key)),
    }
    const { node, plan } = planStatement(compiled.query, resolved, this.#target.store.dialect)
    if (plan === undefined) throw new Error('stockpyle cache sync: a watched write was not planned again')
    return { plan, node }
  }

  /**
   * The statement to run: `node` compiled, an UPDATE of primary keys restricted to the rows whose old
   * keys the SELECT before it read (`old`, as it returned them), so that it changes no other row.
   * @throws UnsupportedOperationError for an old key value it cannot match exactly (see `restrictToRows`).
   */
  #statement(plan: SyncPlan, node: RootOperationNode, old: readonly Row[], queryId: QueryId): CompiledQuery {
    const restricted =
      plan.before === undefined ? node : restrictToRows(node as UpdateQueryNode, plan.before, old, plan.aliases, this.#target.store.dialect)
    this.#compiler ??= this.#dialect.createQueryCompiler()
    return this.#compiler.compileQuery(restricted, queryId)
  }

  /** For an UPDATE of primary keys: the keys of the rows it will change, read on its connection just before it. */
  async #oldRows(select: SelectQueryNode, connection: DatabaseConnection): Promise<readonly Row[]> {
    const locked: RootOperationNode =
      this.#target.store.dialect === 'postgres' ? QueryNode.cloneWithEndModifier(select, SelectModifierNode.create('ForUpdate')) : select
    this.#compiler ??= this.#dialect.createQueryCompiler()
    const { rows } = await connection.executeQuery<Row>(this.#compiler.compileQuery(locked, createQueryId()))
    return rows
  }

  /** Invalidates the rows at once outside a transaction; queues it for COMMIT inside one. */
  async #follow(plan: SyncPlan, keyRows: readonly Row[], connection: TrackedConnection): Promise<void> {
    if (keyRows.length === 0) return
    const invalidations = await this.#invalidations(plan, keyRows, this.#kyselyOn(connection.inner))
    const work = () => this.#target.invalidate(invalidations)
    if (connection.pending !== undefined) connection.pending.push(work)
    else await work()
  }

  async #invalidations(plan: SyncPlan, keyRows: readonly Row[], db: Kysely<any>): Promise<Invalidation[]> {
    const out: Invalidation[] = []
    for (const info of plan.watched.models) {
      const m = await this.#target.store.mappingOn(db, info.model)
      const lookups: object[] = []
      for (const row of keyRows) {
        const attributes = rowToAttributes(m, row)
        for (const spec of info.keys) {
          const values = spec.fields.map((f) => attributes[f])
          if (values.every(isKeyValue)) lookups.push(Object.fromEntries(spec.fields.map((f, i) => [f, values[i]])))
        }
      }
      if (lookups.length > 0) out.push({ model: info.model, lookups })
    }
    return out
  }

  /** A Kysely over the connection a statement ran on (for reading table schemas inside its transaction). */
  #kyselyOn(connection: DatabaseConnection): Kysely<any> {
    let db = this.#onConnection.get(connection)
    if (db === undefined) {
      db = new Kysely<any>({ dialect: connectionDialect(this.#dialect, connection) })
      this.#onConnection.set(connection, db)
    }
    return db
  }
}

/** The key columns of each row, by column name (from the plugin's RETURNING aliases). */
function keysOf(plan: SyncPlan, rows: readonly Row[]): Row[] {
  return rows.map((row) => {
    const keys: Row = {}
    for (const [alias, column] of plan.aliases) keys[column] = row[alias]
    return keys
  })
}

/** A streamed chunk without the plugin's columns (no rows when the statement had no RETURNING of its own). */
function withoutKeys(plan: SyncPlan, chunk: QueryResult<Row>): QueryResult<UnknownRow> {
  if (plan.ownReturning) return { ...chunk, rows: [] }
  return {
    ...chunk,
    rows: chunk.rows.map((row) => {
      const clean = { ...row }
      for (const alias of plan.aliases.keys()) delete clean[alias]
      return clean
    }),
  }
}

/** The result as the statement would have given it without the plugin's RETURNING. */
function restore(
  plan: SyncPlan,
  result: QueryResult<Row>,
  keyRows: readonly Row[],
  dialect: 'sqlite' | 'postgres',
): QueryResult<UnknownRow> {
  const rows = result.rows
  if (!plan.ownReturning) return withoutKeys(plan, result)
  // A statement with RETURNING reports no affected-row count or insert id on SQLite: give them back.
  const restored: { -readonly [K in keyof QueryResult<UnknownRow>]: QueryResult<UnknownRow>[K] } = {
    ...result,
    rows: [],
    numAffectedRows: result.numAffectedRows ?? BigInt(rows.length),
  }
  const primary = plan.watched.models[0]?.primary.fields
  const last = keyRows.at(-1)
  // an insert id only where the driver gives one without RETURNING (SQLite; PostgreSQL never does)
  if (dialect === 'sqlite' && plan.insert && result.insertId === undefined && primary?.length === 1 && last !== undefined) {
    const id = last[[...plan.watched.primaryColumns][0] as string]
    if (typeof id === 'number' && Number.isInteger(id)) restored.insertId = BigInt(id)
    else if (typeof id === 'bigint') restored.insertId = id
  }
  return restored
}
