import { type Kysely, sql } from 'kysely'
import {
  BaseStore,
  type GetEntriesOptions,
  type LookupRequest,
  type PutEntriesOptions,
  type StoreCapabilities,
  type StoreEntry,
  type WriteItem,
} from '../../contracts/base-store.js'
import { StoreClosedError } from '../../core/errors.js'
import type { Instance, Lookup, Model } from '../../core/model.js'
import type { ModelInfo } from '../../core/registry.js'
import { copyOf, keysOf } from './copy-of.js'
import { guarded } from './guarded-kysely.js'
import { readEntries } from './read-entries.js'
import { removeObjects } from './remove-objects.js'
import { removeByLookups } from './sql-delete-by-key.js'
import { isRetryableFailure } from './sql-errors.js'
import { type Executor, type OperationContext, writeObjects } from './sql-operations.js'
import { sqliteRolledBack } from './sqlite-rolled-back.js'
import type { RunOnConnection } from './sqlite-transaction-open.js'

/**
 * One write made in a transaction, as it was when its statement ran: copies of the objects of one
 * `put`/`batchPut` (with the values written back), or of the key attributes of those of one
 * `delete`/`batchDelete` (an object the cache codec cannot copy is reported as a delete of its keys).
 */
export interface TransactionChange {
  readonly operation: 'put' | 'delete'
  readonly objects: readonly object[]
}

/** Called once after a transaction committed, with its writes in order. */
export type AfterCommit = (changes: readonly TransactionChange[]) => void | Promise<void>

/**
 * The store-like handle `SqlStore.transaction()` passes to its callback: `put`, `get`, `delete` and
 * the batch calls, all in one database transaction. It is only valid inside the callback: calls after
 * the callback settled reject with `StoreClosedError` before anything runs; calls made in the callback
 * and left running finish before the COMMIT (see `SqlStore.transaction()`).
 *
 * Generated values are written back onto objects as each statement runs, so an id is available to the
 * next statement; when the transaction rolls back, objects keep those values.
 */
export class SqlTransaction extends BaseStore {
  readonly name: string
  override readonly capabilities: StoreCapabilities
  readonly #context: OperationContext
  readonly #executor: Executor
  readonly #guarded: Kysely<any>
  readonly #changes: TransactionChange[] = []
  readonly #afterCommit: AfterCommit[] = []
  readonly #afterCommitFailed: AfterCommit[] = []
  readonly #trx: Kysely<any>
  #savepoints = 0
  /**
   * The savepoint the first write opened, left open until COMMIT: releasing it then ({@link verify})
   * fails when the transaction is no longer the one begun.
   */
  #guard: string | undefined
  #queue: Promise<unknown> = Promise.resolve()
  /** Set when the transaction rolls back: calls queued and not yet started are refused. */
  #abandoned = false
  /** The first failure of a call that was still queued or running when the handle was ended. */
  #late: { error: unknown } | undefined
  /**
   * The deadlock or serialization failure of a call, or the error of one after which SQLite had rolled
   * the transaction back: the transaction cannot commit (see {@link end}).
   */
  #doomed: { error: unknown } | undefined

  /** @internal created by `SqlStore.transaction()` only. */
  constructor(context: OperationContext, capabilities: StoreCapabilities, trx: Kysely<any>) {
    super()
    this.name = context.name
    this.capabilities = capabilities
    this.#context = context
    this.#trx = trx
    const postgres = context.dialect === 'postgres'
    const guarding = (): boolean => this.#guard === undefined
    this.#executor = {
      db: trx,
      // PostgreSQL: a failed statement would abort the whole transaction; either dialect: the first
      // write opens the savepoint that guards the transaction
      get atomicWrites() {
        return postgres || guarding()
      },
      atomic: (fn) => this.#atomic(fn),
    }
    // SQLite: a raw statement of the caller's may end the whole transaction as one of the store's can
    const failed = postgres ? undefined : (error: unknown, run: RunOnConnection) => this.#rawFailed(error, run)
    this.#guarded = guarded(trx, context.name, context.dialect, failed)
  }

  /**
   * Runs `fn` in a savepoint: it keeps a batch all-or-nothing inside the transaction (SQLite keeps
   * earlier statements of a failed batch otherwise, and PostgreSQL would abort the whole transaction).
   * The first one stays open as the transaction's guard (see {@link verify}). After a deadlock or
   * serialization failure the transaction stays aborted: it cannot commit (see {@link end}).
   */
  async #atomic<T>(fn: (db: Kysely<any>) => Promise<T>): Promise<T> {
    const name = `stockpyle_${++this.#savepoints}`
    const savepoint = sql.id(name)
    await sql`savepoint ${savepoint}`.execute(this.#trx)
    const guard = this.#guard === undefined
    if (guard) this.#guard = name
    try {
      const result = await fn(this.#trx)
      if (!guard) await sql`release savepoint ${savepoint}`.execute(this.#trx)
      return result
    } catch (err) {
      if (!isRetryableFailure(err)) await sql`rollback to savepoint ${savepoint}`.execute(this.#trx).catch(() => {})
      throw err
    }
  }

  /**
   * The Kysely transaction, for queries of your own that must join it. Its transaction control —
   * `commit()`, `rollback()`, `savepoint()`, `rollbackToSavepoint()`, `releaseSavepoint()` — throws
   * `UnsupportedOperationError`: `transaction()` ends the transaction itself, and a write undone by a
   * rollback to a savepoint would stay in {@link changes} and reach the caches after COMMIT. So does raw
   * SQL run through it (`sql\`…\`.execute(tx.kysely())`, its `executeQuery`, its executor and the
   * connections that provides) one of whose statements is transaction control — `COMMIT`, `ROLLBACK`
   * (also `ROLLBACK TO SAVEPOINT`), `END`, `ABORT`, `BEGIN`, `START TRANSACTION`, `SAVEPOINT`,
   * `RELEASE`, `PREPARE TRANSACTION` — also after comments or other statements (`select 1; rollback`),
   * before anything of it runs. When SQL it cannot see (in a query builder's SQL, or sent through
   * another handle on the connection) ended a transaction this handle wrote in, `transaction()` rejects
   * with `UnsupportedOperationError` instead of committing (the first write's savepoint, left open until
   * COMMIT, is then gone) and the caches drop what it wrote; a transaction it wrote nothing in commits
   * what is left. An unseen `ROLLBACK TO SAVEPOINT` is not detected (call `chain.batchInvalidate()` or
   * `chain.clearCaches()` for what it undid). Its statements are bounded by the store's option `timeout`.
   * SQLite: raw SQL through it that fails after SQLite rolled the whole transaction back (a trigger's
   * `RAISE(ROLLBACK)`) rejects with an error saying so, and dooms this handle as a call of its own would.
   *
   * Its writes are not followed: they are not in {@link changes}, and the `CacheSyncPlugin` is not on
   * this Kysely, so a chain's caches keep what they replaced. After the transaction resolved, call
   * `chain.batchInvalidate(Model, lookups)` for the objects they changed (or `chain.clearCaches()`), or
   * make those writes through this handle's `put`/`delete`. Await its statements: unlike this handle's
   * calls, one still running when the callback returns is not waited for before COMMIT.
   */
  kysely(): Kysely<any> {
    return this.#guarded
  }

  /** The writes made so far, in order. */
  get changes(): readonly TransactionChange[] {
    return this.#changes
  }

  /**
   * Registers `fn` to run once after the transaction commits (never after a rollback), with every
   * write in order: how a chain updates its caches only with committed data. `transaction()` awaits
   * it before resolving; an error it throws rejects `transaction()` (the data stays committed).
   */
  afterCommit(fn: AfterCommit): void {
    this.assertOpen('afterCommit')
    this.#afterCommit.push(fn)
  }

  /**
   * Registers `fn` to run once when COMMIT was sent and failed (never after a rollback of the callback's
   * own making, nor when the database answered the COMMIT with ROLLBACK or an error such as a deferred
   * constraint's), with every write in order. The outcome of such a transaction is unknown: the database
   * may have committed it and lost the reply with the connection. A cache in front must therefore drop
   * what the writes touched, as after a failed write. `transaction()` awaits it, then rejects with the
   * COMMIT's error (with an `AggregateError` of both when a callback fails too). It also runs when SQL
   * the store could not see ended the transaction (see {@link kysely}): no COMMIT is sent, and
   * `transaction()` rejects with `UnsupportedOperationError`.
   */
  afterCommitFailed(fn: AfterCommit): void {
    this.assertOpen('afterCommitFailed')
    this.#afterCommitFailed.push(fn)
  }

  /** @internal runs the afterCommit callbacks; called by `SqlStore.transaction()` after COMMIT. */
  async committed(): Promise<void> {
    const errors = await this.#runAll(this.#afterCommit)
    if (errors.length === 1) throw errors[0]
    if (errors.length > 1) throw new AggregateError(errors, `${this.name} store: ${errors.length} afterCommit callbacks failed`)
  }

  /**
   * @internal runs the afterCommitFailed callbacks; called by `SqlStore.transaction()` when COMMIT failed.
   * @returns the callbacks' errors.
   */
  commitFailed(): Promise<unknown[]> {
    return this.#runAll(this.#afterCommitFailed)
  }

  async #runAll(callbacks: readonly AfterCommit[]): Promise<unknown[]> {
    const errors: unknown[] = []
    for (const fn of callbacks) {
      try {
        await fn(this.#changes)
      } catch (err) {
        errors.push(err)
      }
    }
    return errors
  }

  /**
   * @internal Ends the handle when the callback has settled, before COMMIT or ROLLBACK: later calls are
   * refused with `StoreClosedError` before anything runs, and the calls made in the callback that are
   * still queued or running (a write left without `await`) are waited for, so that none of their
   * statements reaches the connection after the COMMIT or ROLLBACK (PostgreSQL would run it outside
   * the transaction, in autocommit). With `abandon` (a rollback), the calls not yet started are refused
   * instead of run.
   * @returns the deadlock or serialization failure a call met, or on SQLite the error of one after which
   *   SQLite had rolled the transaction back (also one the callback caught: the database gave the
   *   transaction up), else the first failure of a call still in flight when the handle
   *   was ended (the transaction must not commit without it), or `undefined`.
   */
  async end(abandon: boolean): Promise<{ error: unknown } | undefined> {
    if (abandon) this.#abandoned = true
    await this.close()
    await this.#queue
    return this.#doomed ?? this.#late
  }

  /**
   * @internal Before COMMIT, once the handle has ended: releases the savepoint the first write opened.
   * That fails when the transaction is no longer the one begun — SQL of the caller's the store could
   * not see ended it (and maybe began another) — or is aborted, or the connection was lost.
   * @throws the database's error of the release.
   */
  async verify(): Promise<void> {
    if (this.#guard !== undefined) await sql`release savepoint ${sql.id(this.#guard)}`.execute(this.#trx)
  }

  // Every call made in the callback is #reported: one left running when the callback returned (a write
  // without `await`) that fails there fails the transaction with its error (see `end`).
  override get<M extends Model>(model: M, lookup: Lookup<M>): Promise<Instance<M> | undefined> {
    return this.#reported(super.get(model, lookup))
  }

  override batchGet<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<(Instance<M> | undefined)[]> {
    return this.#reported(super.batchGet(model, lookups))
  }

  override batchGetEntries<M extends Model>(
    model: M,
    lookups: readonly Lookup<M>[],
    options?: GetEntriesOptions,
  ): Promise<(StoreEntry<Instance<M>> | undefined)[]> {
    return this.#reported(super.batchGetEntries(model, lookups, options))
  }

  override put(obj: object): Promise<void> {
    return this.#reported(super.put(obj))
  }

  override batchPut(objs: readonly object[]): Promise<void> {
    return this.#reported(super.batchPut(objs))
  }

  override batchPutEntries(entries: readonly StoreEntry[], options?: PutEntriesOptions): Promise<void> {
    return this.#reported(super.batchPutEntries(entries, options))
  }

  override delete(obj: object): Promise<void>
  override delete<M extends Model>(model: M, lookup: Lookup<M>): Promise<void>
  override delete(target: object, ...lookup: [object?]): Promise<void> {
    return this.#reported((super.delete as (t: object, ...l: [object?]) => Promise<void>).call(this, target, ...lookup))
  }

  override batchDelete(objs: readonly object[]): Promise<void>
  override batchDelete<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<void>
  override batchDelete(target: readonly object[] | Model, lookups?: readonly object[]): Promise<void> {
    return this.#reported((super.batchDelete as (t: unknown, l?: unknown) => Promise<void>).call(this, target, lookups))
  }

  override batchDeleteByKey<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<(Instance<M> | undefined)[]> {
    return this.#reported(super.batchDeleteByKey(model, lookups))
  }

  /**
   * `call`, made now, as its caller gets it: if it was made in the callback and fails after the callback
   * returned, `transaction()` rejects with its error, so its own promise is marked handled — a forgotten
   * `await` must not also end the host process with an unhandled rejection. A call failing while the
   * callback runs is the caller's to handle, as any promise.
   */
  #reported<T>(call: Promise<T>): Promise<T> {
    if (this.closed) return call
    const reported: Promise<T> = call.catch((error: unknown) => {
      if (this.closed) reported.catch(() => {})
      throw error
    })
    return reported
  }

  protected override assertOpen(operation: string): void {
    if (this.closed) {
      throw new StoreClosedError(`${this.name} store transaction has ended: ${operation} was called after its callback returned`)
    }
  }

  /**
   * Runs operations of this transaction one at a time: they share one connection anyway, and a batch's
   * savepoint must not roll back a concurrent call's statements. One still queued when the transaction
   * rolls back is refused; one that fails after the handle was ended is remembered (see {@link end}).
   * After a deadlock or serialization failure, or a failure SQLite answered by rolling the whole
   * transaction back, every call rejects with it before anything runs.
   */
  #serial<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    const start = (): Promise<T> => {
      if (this.#abandoned) {
        return Promise.reject(
          new StoreClosedError(`${this.name} store transaction has ended: its ${operation} was still queued when it rolled back`),
        )
      }
      // the database gave the transaction up: nothing more of it may run as if it could commit
      if (this.#doomed !== undefined) return Promise.reject(this.#doomed.error)
      return fn()
    }
    let run = this.#queue.then(start, start)
    if (this.#context.dialect === 'sqlite') run = run.catch((error: unknown) => this.#ifRolledBack(error))
    // (runs before the caller learns of the failure: its next call is refused)
    this.#queue = run.catch((error: unknown) => {
      if (isRetryableFailure(error)) this.#doomed ??= { error }
      if (this.closed && !this.#abandoned) this.#late ??= { error }
    })
    return run
  }

  /**
   * SQLite: a failure may have ended the whole transaction (see `sqliteRolledBack`); the transaction is
   * then doomed as after a deadlock, with an error saying so: every later call would run in autocommit.
   * @throws that error, else `error`.
   */
  async #ifRolledBack(error: unknown, run: RunOnConnection = (s) => sql.raw(s).execute(this.#trx)): Promise<never> {
    if (this.#doomed !== undefined || this.#abandoned) throw error
    const doomed = await sqliteRolledBack(run, error)
    if (doomed === undefined) throw error
    this.#doomed = { error: doomed }
    throw doomed
  }

  /**
   * SQLite: a statement of the caller's through {@link kysely} failed while the callback runs (`run`
   * runs one on its connection): as {@link #ifRolledBack}, so that the handle's later calls are refused
   * rather than run, and committed, in autocommit.
   */
  #rawFailed(error: unknown, run: RunOnConnection): Promise<never> {
    return this.closed ? Promise.reject(error) : this.#ifRolledBack(error, run)
  }

  protected readMany(info: ModelInfo, requests: readonly LookupRequest[]): Promise<(StoreEntry | undefined)[]> {
    return this.#serial('get', () => readEntries(this.#context, this.#executor, info, requests))
  }

  // What is remembered for after COMMIT are copies taken as each statement ran: the caller may change
  // or reuse an object between its write and the COMMIT, and the caches must get what was written.

  protected writeMany(items: readonly WriteItem[]): Promise<void> {
    return this.#serial('put', async () => {
      const objects = await writeObjects(this.#context, this.#executor, items)
      const copies = objects.map(copyOf)
      const copied = copies.filter((c): c is object => c !== undefined)
      if (copied.length > 0) this.#changes.push({ operation: 'put', objects: copied })
      // an object the cache codec cannot copy is dropped from the caches instead
      const uncopied = objects.filter((_, i) => copies[i] === undefined).map(keysOf)
      if (uncopied.length > 0) this.#changes.push({ operation: 'delete', objects: uncopied })
    })
  }

  protected override removeByLookups(info: ModelInfo, requests: readonly LookupRequest[]): Promise<(object | undefined)[]> {
    return this.#serial('delete', async () => {
      const found = await removeByLookups(this.#context, this.#executor, info, requests)
      const objects = [...new Set(found.filter((o): o is object => o !== undefined))]
      if (objects.length > 0) this.#changes.push({ operation: 'delete', objects: objects.map(keysOf) })
      return found
    })
  }

  protected removeMany(items: readonly WriteItem[]): Promise<void> {
    return this.#serial('delete', async () => {
      const objects = await removeObjects(this.#context, this.#executor, items)
      this.#changes.push({ operation: 'delete', objects: objects.map(keysOf) })
    })
  }
}
