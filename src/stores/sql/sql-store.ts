import { AsyncLocalStorage } from 'node:async_hooks'
import type { Kysely } from 'kysely'
import {
  BaseStore,
  capabilities,
  type LookupRequest,
  type StoreCapabilities,
  type StoreEntry,
  type WriteItem,
} from '../../contracts/base-store.js'
import { clockOption, prefixOption } from '../../contracts/cache-store-options.js'
import { InvalidArgumentError, InvalidOptionError, show, UnsupportedOperationError } from '../../core/errors.js'
import type { Model } from '../../core/model.js'
import { msOption } from '../../core/option-values.js'
import { checkOptionNames } from '../../core/options.js'
import { describeModel, describeModelIn, type ModelInfo } from '../../core/registry.js'
import type { SqlDialect } from './column-kind.js'
import { type ParsedConnection, parseConnection, type SqlConnection } from './connect.js'
import { MappingCache } from './model-mapping.js'
import { checkTableNaming, type TableNaming } from './naming.js'
import { readEntries } from './read-entries.js'
import { removeObjects } from './remove-objects.js'
import type { BytesType, ModelMapping } from './row-mapper.js'
import { runTransaction } from './run-transaction.js'
import { removeByLookups } from './sql-delete-by-key.js'
import { type Executor, type OperationContext, writeObjects } from './sql-operations.js'
import { CONNECTION_ARGUMENT, SQL_STORE_OPTIONS } from './sql-option-names.js'
import { SqlTransaction } from './sql-transaction.js'

/** Options of {@link SqlStore}. */
export interface SqlStoreOptions {
  /** Name used in messages and stats. Default `'sql'`. */
  name?: string | undefined
  /**
   * Which table each model lives in: a `Map` from model class, a record from type tag
   * (`stockpyleName` or class name), or a function returning a name or `undefined`. Models not named
   * here use their own `static stockpyleTable`, else their type tag in snake_case plural
   * (`ConformanceUser` → `conformance_users`). Names are `table` or `schema.table`.
   */
  tables?: TableNaming | undefined
  /** Columns are snake_case and attributes camelCase (`org_id` ↔ `orgId`). Default `false`: attribute = column name. */
  camelCase?: boolean | undefined
  /**
   * At first use of each table, check that every declared key is backed by the primary key or a unique
   * index, and fail with `E_SCHEMA` naming the missing index otherwise. Default `true`. With `false`, a
   * lookup matching several rows raises `NonUniqueKeyError`.
   */
  checkUniqueKeys?: boolean | undefined
  /**
   * How bytes columns (BLOB/bytea) come back: `'Buffer'` (default, what both drivers return) or
   * `'Uint8Array'`, for every column or per model attribute through a function. Writing accepts either.
   */
  bytes?: BytesType | ((model: Model, attribute: string) => BytesType) | undefined
  /**
   * The dialect of a `db` connection whose adapter SqlStore does not recognise (it must be SQLite- or
   * PostgreSQL-compatible). Refused (`InvalidOptionError`) with a `url`, whose scheme decides the dialect.
   */
  dialect?: SqlDialect | undefined
  /**
   * Pool size for a `postgres://` URL (integer ≥ 1). Default 10. Refused (`InvalidOptionError`) with a
   * `sqlite:` URL (one connection) and with a `db` (configure its pool yourself).
   */
  maxConnections?: number | undefined
  /**
   * Most ms (< 2^31) SqlStore waits on the database, for a connection it opens from a `url`.
   * PostgreSQL: for each statement and for each connection from the pool (opening one, or waiting
   * for a free one): past it the call rejects with `StoreUnavailableError` naming the option, and the
   * connection is closed, not reused (a write that timed out may still take effect). Default 30,000:
   * a frozen server does not hang callers, a statement of a large batch is not cut. SQLite: the busy
   * timeout — how long a statement waits for a lock another connection holds (blocking the thread,
   * as better-sqlite3 runs statements synchronously) before `SQLITE_BUSY`, a `StoreUnavailableError`;
   * default better-sqlite3's 5,000. Refused with a `db` (configure your own pool). A `postgres://`
   * URL setting statement_timeout, query_timeout, connectionTimeoutMillis or connect_timeout (or
   * `-c statement_timeout` in `options`) is refused with `InvalidOptionError`: it would replace this.
   */
  timeout?: number | undefined
  /**
   * Accepted for option sharing with cache stores and ignored (SqlStore never expires objects); checked
   * as theirs is: an object with a `now()` method, else `InvalidOptionError`.
   */
  clock?: unknown
  /**
   * Accepted for option sharing with cache stores and ignored (tables isolate data); checked as theirs
   * is: at most 40 characters of `[A-Za-z0-9_.~:-]`, else `InvalidOptionError`.
   */
  prefix?: string | undefined
}

const SQL_CAPABILITIES = capabilities({ authoritative: true, generatesKeys: true, expires: false, polymorphic: false })

/**
 * Rejects misspelt options, and cache options that SqlStore cannot honour (it never expires objects and
 * is not polymorphic). `clock` and `prefix` are accepted (and checked by the constructor) and ignored, so
 * cache-store options can be shared.
 */
function checkKnownOptions(options: object): void {
  for (const [key, value] of Object.entries(options)) {
    if (key === 'lifetime' && value !== undefined) {
      throw new InvalidOptionError('SqlStore: option `lifetime` is not supported: the SQL store keeps objects until deleted')
    }
    if (key === 'polymorphic' && value !== undefined && value !== false) {
      throw new InvalidOptionError('SqlStore: option `polymorphic` is not supported: each model has its own table')
    }
  }
  checkOptionNames('SqlStore', options, SQL_STORE_OPTIONS, CONNECTION_ARGUMENT)
}

function checkBoolean(store: string, option: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw new InvalidOptionError(`${store}: option \`${option}\` must be a boolean, got ${show(value)}`)
  return value
}

/**
 * Runs `fn` in a transaction of `db`. When `fn` fails and the ROLLBACK fails too (the connection was
 * lost, and the transaction with it), rejects with `fn`'s error: Kysely would reject with the
 * ROLLBACK's (pg: "Client has encountered a connection error and is not queryable").
 */
async function atomically<T>(db: Kysely<any>, fn: (db: Kysely<any>) => Promise<T>): Promise<T> {
  let failure: { error: unknown } | undefined
  try {
    return await db.transaction().execute(async (trx) => {
      try {
        return await fn(trx)
      } catch (error) {
        failure = { error }
        throw error
      }
    })
  } catch (err) {
    throw failure === undefined ? err : failure.error
  }
}

/**
 * The authoritative layer: objects live as rows of SQL tables (SQLite through better-sqlite3 or
 * PostgreSQL through pg, both via Kysely), one table per model, one column per attribute.
 *
 * - `put`/`batchPut` upsert on the primary key in one statement per chunk, all chunks in one
 *   transaction; attributes left `undefined` take the column default, and stored values (generated
 *   ids, defaults) are written back onto the object. A collision on an alternate unique key is a
 *   `StockpyleError` with code `E_KEY_CONFLICT`, and nothing is written.
 * - `get`/`batchGet` by any declared key: one query per key shape per chunk.
 * - `delete`/`batchDelete` of objects by primary key; `delete(Model, lookup)` by any declared key with
 *   `DELETE … RETURNING`.
 * - {@link SqlStore.transaction} runs several calls in one database transaction.
 *
 * See docs/stores/sql.md for the mapping of column types.
 *
 * @throws InvalidOptionError synchronously from the constructor, naming the option.
 */
export class SqlStore extends BaseStore {
  readonly name: string
  override readonly capabilities: StoreCapabilities = SQL_CAPABILITIES
  /** The SQL dialect: `'sqlite'` or `'postgres'`. */
  readonly dialect: SqlDialect
  readonly #connection: ParsedConnection
  readonly #context: OperationContext
  #executor: Executor | undefined
  /** Calls and transactions in flight; `close()` waits for them before it destroys the connection. */
  #active = 0
  #drained: (() => void) | undefined
  readonly #scope = new AsyncLocalStorage<{ active: boolean }>()
  #db: Promise<Kysely<any>> | undefined

  constructor(connection: SqlConnection, options: SqlStoreOptions = {}) {
    super()
    if (typeof options !== 'object' || options === null)
      throw new InvalidOptionError(`SqlStore: options must be an object, got ${show(options)}`)
    checkKnownOptions(options)
    const name = options.name ?? 'sql'
    if (typeof name !== 'string' || name.length === 0)
      throw new InvalidOptionError(`SqlStore: option \`name\` must be a non-empty string, got ${show(name)}`)
    this.name = name
    // (show() would wrap the quoted name in backticks: SqlStore `"sql"`)
    const label = `SqlStore ${show(name).slice(1, -1)}`
    const maxConnections = options.maxConnections
    if (maxConnections !== undefined && (!Number.isSafeInteger(maxConnections) || maxConnections < 1)) {
      throw new InvalidOptionError(`${label}: option \`maxConnections\` must be a positive integer, got ${show(maxConnections)}`)
    }
    // accepted so that cache-store options can be shared, and ignored, but checked as theirs are
    prefixOption(label, options.prefix)
    clockOption(label, options.clock)
    const bytes = options.bytes ?? 'Buffer'
    if (bytes !== 'Uint8Array' && bytes !== 'Buffer' && typeof bytes !== 'function') {
      throw new InvalidOptionError(`${label}: option \`bytes\` must be 'Uint8Array', 'Buffer' or a function, got ${show(bytes)}`)
    }
    const mappingOptions = {
      tables: checkTableNaming(label, options.tables),
      camelCase: checkBoolean(label, 'camelCase', options.camelCase, false),
      checkUniqueKeys: checkBoolean(label, 'checkUniqueKeys', options.checkUniqueKeys, true),
      bytes,
    }
    const timeout = options.timeout === undefined ? undefined : msOption(label, 'timeout', options.timeout, 0)
    this.#connection = parseConnection(label, connection, options.dialect, { maxConnections, timeout })
    this.dialect = this.#connection.dialect
    this.#context = { name, dialect: this.dialect, mappings: new MappingCache(name, this.dialect, mappingOptions) }
  }

  /**
   * The Kysely instance, opening the connection (and loading the driver) on first call. Use it for
   * queries of your own. On a pool opened from a `postgres://` URL every statement is bounded by option
   * `timeout` (pg drops the connection 1 s after it, whatever `SET statement_timeout` says): run long
   * migrations on a Kysely instance of their own, or give the store a larger `timeout`.
   * @throws StoreUnavailableError when the driver is not installed or the database cannot be opened.
   */
  kysely(): Promise<Kysely<any>> {
    this.assertOpen('kysely')
    if (this.#db === undefined) {
      const opening = this.#connection.open()
      this.#db = opening
      opening.catch(() => {
        if (this.#db === opening) this.#db = undefined
      })
    }
    return this.#db
  }

  /**
   * The table a model maps to (see {@link SqlStoreOptions.tables}).
   * @throws StockpyleError `E_SCHEMA` for an invalid name; UnknownModelError for a class that is not a model.
   */
  tableOf(model: Model): string {
    return this.#context.mappings.tableOf(describeModelIn(model, `${this.name} store tableOf`))
  }

  /**
   * @internal The mapping of `model` onto its table, introspected through `db` on first use (the Kysely
   * cache-sync plugin passes the connection a statement ran on, which may hold a transaction).
   */
  mappingOn(db: Kysely<any>, model: Model): Promise<ModelMapping> {
    return this.#context.mappings.mapping(db, describeModel(model))
  }

  /** Whether attributes map to snake_case columns (option `camelCase`). */
  get camelCase(): boolean {
    return this.#context.mappings.options.camelCase
  }

  /** Forgets what introspection learned about tables, so the next use of each table looks again (after a migration). */
  refreshSchema(): void {
    this.#context.mappings.clear()
  }

  /**
   * Runs `fn` in one database transaction and returns its result. `fn` receives a store-like
   * {@link SqlTransaction} whose calls all join the transaction; when `fn` throws (or rejects) the
   * transaction rolls back and `transaction()` rejects with that error. After COMMIT, callbacks
   * registered with `tx.afterCommit()` run with every write in order.
   *
   * The transaction ends when `fn` settles: calls on `tx` after that are refused with
   * `StoreClosedError` before anything runs. A call made in `fn` and left running (a write without
   * `await`) finishes before the COMMIT, inside the transaction, and its write reaches the caches of a
   * chain; if it fails, the transaction rolls back and rejects with its error. When `fn` fails, such a
   * call is refused if it had not started, and finishes before the ROLLBACK if it had. (Statements of
   * your own through `tx.kysely()` are not waited for: await them.)
   *
   * A deadlock or serialization failure (PostgreSQL 40P01, 40001) of a call on `tx` dooms the whole
   * transaction, also when `fn` catches it: later calls on `tx` reject with the same error, and the
   * transaction rolls back and rejects with it (run the whole `transaction()` again). A transaction that
   * SQL of your own ended (a COMMIT or ROLLBACK `tx.kysely()` could not see) rejects with
   * `UnsupportedOperationError` instead of committing, and the afterCommitFailed callbacks run.
   *
   * Inside `fn`, use `tx`, not this store: calling the store itself there throws (on SQLite it would
   * wait forever for the connection the transaction holds).
   * @throws StoreClosedError after `close()`; a translated database error when BEGIN or COMMIT fails;
   *   the deadlock or serialization failure of a call on `tx`; UnsupportedOperationError when SQL of
   *   your own ended the transaction.
   */
  async transaction<R>(fn: (tx: SqlTransaction) => Promise<R>): Promise<R> {
    this.assertOpen('transaction')
    this.#assertOutside('transaction')
    if (typeof fn !== 'function') throw new InvalidArgumentError(`${this.name} store: transaction() takes a function, got ${show(fn)}`)
    return this.#tracked(() => this.#transaction(fn))
  }

  async #transaction<R>(fn: (tx: SqlTransaction) => Promise<R>): Promise<R> {
    const db = await this.kysely()
    const state = { active: true }
    return runTransaction(
      db,
      {
        name: this.name,
        dialect: this.dialect,
        open: (trx) => new SqlTransaction(this.#context, this.capabilities, trx),
        inScope: (call) => this.#scope.run(state, call),
        left: () => {
          state.active = false
        },
      },
      fn,
    )
  }

  #assertOutside(operation: string): void {
    if (this.#scope.getStore()?.active === true) {
      throw new UnsupportedOperationError(
        `${this.name} store: ${operation} was called on the store inside its own transaction(): use the tx argument instead (on SQLite the store would wait forever for the transaction's connection)`,
      )
    }
  }

  /** Runs `work` with the executor, counted as in flight until it settles (see {@link release}). */
  async #run<T>(operation: string, work: (executor: Executor) => Promise<T>): Promise<T> {
    this.#assertOutside(operation)
    return this.#tracked(async () => {
      const db = await this.kysely()
      if (this.#executor?.db !== db) this.#executor = { db, atomic: (fn) => atomically(db, fn) }
      return work(this.#executor)
    })
  }

  async #tracked<T>(work: () => Promise<T>): Promise<T> {
    this.#active++
    try {
      return await work()
    } finally {
      if (--this.#active === 0) this.#drained?.()
    }
  }

  protected readMany(info: ModelInfo, requests: readonly LookupRequest[]): Promise<(StoreEntry | undefined)[]> {
    return this.#run('get', (executor) => readEntries(this.#context, executor, info, requests))
  }

  protected async writeMany(items: readonly WriteItem[]): Promise<void> {
    await this.#run('put', (executor) => writeObjects(this.#context, executor, items))
  }

  protected async removeMany(items: readonly WriteItem[]): Promise<void> {
    await this.#run('delete', (executor) => removeObjects(this.#context, executor, items))
  }

  /** Delete by key in one statement per key shape: `DELETE … RETURNING *`, so a chain learns every key of what went. */
  protected override removeByLookups(info: ModelInfo, requests: readonly LookupRequest[]): Promise<(object | undefined)[]> {
    return this.#run('delete', (executor) => removeByLookups(this.#context, executor, info, requests))
  }

  /**
   * Destroys the Kysely instance when SqlStore created it from a URL (a `db` you passed stays open),
   * once the calls and transactions begun before `close()` have settled: they complete as they would
   * have, rather than fail on a destroyed connection.
   */
  protected override async release(): Promise<void> {
    if (this.#active > 0) await new Promise<void>((resolve) => (this.#drained = resolve))
    const opening = this.#db
    if (opening === undefined || !this.#connection.owned) return
    const db = await opening.catch(() => undefined)
    await db?.destroy()
  }
}
