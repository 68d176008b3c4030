import type { Store } from '../contracts/base-store.js'
import { callHook } from '../core/call-hook.js'
import { canonicalKey } from '../core/canonical-key.js'
import { InvalidOptionError, StockpyleError, StoreClosedError, show } from '../core/errors.js'
import type { Lookup, Model } from '../core/model.js'
import type { ModelInfo } from '../core/registry.js'
import { ProcessMemoryStore } from '../stores/memory/process-memory-store.js'
import { checkChannel, checkPool, listenConfig, loadPg, type PgModule } from '../stores/sql/pg-driver.js'
import { PgListener } from '../stores/sql/pg-listener.js'
import { type Kysely, openPostgres, queryRows } from '../stores/sql/postgres-access.js'
import { callbackOption, checkKnown, errorReporter, msOption } from './bus-options.js'
import { DEFAULT_ROWS_CHANNEL } from './invalidation-triggers.js'
import { keyLookup } from './key-lookup.js'
import { memoryLayers } from './memory-layers.js'
import { describeTarget } from './postgres-bus.js'
import { parseRowChange, type RowChange, untargetable } from './row-change.js'
import {
  checkModels,
  checkNaming,
  describeTables,
  isKysely,
  isSqlStore,
  type SqlSource,
  sourceOfKysely,
  sourceOfStore,
  type WatchedTable,
} from './sql-tables.js'
import { TriggerCheck } from './trigger-check.js'
import { type DatabaseWatcher, KNOWN, type WatchDatabaseOptions } from './watch-database-options.js'

export type { DatabaseWatcher, WatchDatabaseOptions } from './watch-database-options.js'

/**
 * Evicts rows changed by any client of a PostgreSQL database — another service, `psql`, a migration
 * — from every cache layer of these stores: it LISTENs for the notifications of
 * {@link installInvalidationTriggers}, maps each changed table to its model and the row's primary-key
 * columns to a primary-key lookup (column names and value types exactly as SqlStore maps them: int8 →
 * bigint, int4 → number, …), and calls `store.batchInvalidate(model, lookups)` on each store — for a
 * ChainedStore that drops the copies in every cache layer (memory, Redis, memcached), leaving
 * tombstones so no concurrent read puts the old row back. Notifications that arrive together are
 * applied as one batch per model, in commit order.
 *
 * Run one watcher per process (per set of chains). Writes made through the chains are notified too,
 * and evict the copies the write just stored: the next read goes to the database.
 *
 * Guarantees and limits: NOTIFY reaches only connected listeners. While the LISTEN connection is down,
 * changes are missed; so memory layers are cleared when it goes down and again when it is back
 * (`clearMemory`), `onReconnect` is called, and `onError` hears about the outage. A TRUNCATE or an
 * oversized key cannot be targeted: memory layers are cleared and `onError` is told. Without
 * `onError`, the watcher's first error is one process warning `STOCKPYLE_INVALIDATION_ERROR` (later
 * ones are dropped): nothing fails silently.
 *
 * At every (re)connect and every heartbeat (one catalog query on the LISTEN connection) the watcher
 * checks that each table (looked up by name) still has both triggers, enabled and notifying its
 * channel (a partitioned table's partitions too: their clones of the row trigger): a table without them is reported (SchemaError `E_SCHEMA` naming it and the remedy, once until
 * it is fixed; `ready()` rejects with it at the start) and memory layers are cleared at each check until
 * then. A table recreated since the last check (a new OID: DROP + CREATE, a rename swap) and a partition
 * dropped or detached since (its rows left without notification) are handled as a TRUNCATE: memory
 * layers cleared, reported.
 *
 * @param stores the ChainedStore(s) (or any stores with `batchInvalidate`) to evict from.
 * @throws InvalidOptionError (synchronously) for an invalid option.
 */
export function watchDatabase(stores: Store | readonly Store[], options: WatchDatabaseOptions): DatabaseWatcher {
  return new Watcher(stores, options)
}

class Watcher implements DatabaseWatcher {
  readonly #name: string
  readonly #stores: readonly Store[]
  readonly #memory: readonly Store[]
  readonly #infos: readonly ModelInfo[]
  readonly #source: SqlSource
  readonly #clearMemory: boolean
  /**
   * Hands an error to `onError` (what that throws or rejects with: one process warning, never the
   * watcher's failure); without `onError`, the first error is one process warning. Never throws.
   */
  readonly #report: (err: unknown) => void
  readonly #onReconnect: (() => void) | undefined
  readonly #onInvalidate: ((model: Model, lookups: readonly Lookup<Model>[]) => void) | undefined
  readonly #listener: PgListener
  readonly #ready: Promise<void>
  #settleReady: { resolve: () => void; reject: (err: unknown) => void } | undefined
  /** A Kysely the watcher made for introspection, over `pool` or over a pool of its own (then `#ownsPool`). */
  #ownDb: Promise<Kysely<any>> | undefined
  #ownsPool = false
  #tables: Promise<Map<string, WatchedTable[]>> | undefined
  /** pg's type parsers (loaded with the tables). */
  #types: PgModule['types'] | undefined
  #queue: RowChange[] = []
  #flushScheduled = false
  #work: Promise<void> = Promise.resolve()
  #everUp = false
  #closed = false
  #closing: Promise<void> | undefined
  readonly #unknownTables = new Set<string>()
  readonly #check: TriggerCheck
  /** Heartbeats check the triggers (not while a (re)connect checks them: two checks would compare out of order). */
  #heartbeatChecks = false
  /** Counts (re)connects: only the latest one's check lets heartbeats check again. */
  #ups = 0

  constructor(stores: Store | readonly Store[], options: WatchDatabaseOptions) {
    const owner = 'watchDatabase'
    if (typeof options !== 'object' || options === null)
      throw new InvalidOptionError(`${owner}: options must be an object, got ${show(options)}`)
    checkKnown(owner, options, KNOWN)
    const list = (Array.isArray(stores) ? [...stores] : [stores]) as Store[]
    if (list.length === 0) throw new InvalidOptionError(`${owner}: give at least one store to evict from`)
    list.forEach((s, i) => {
      if (typeof s?.batchInvalidate !== 'function') throw new InvalidOptionError(`${owner}: store ${i} (${show(s)}) has no batchInvalidate`)
    })
    this.#stores = list
    this.#infos = checkModels(owner, options.models)
    const config = listenConfig(owner, options)
    if (options.pool !== undefined) checkPool(owner, options.pool)
    const channel = checkChannel(owner, options.channel ?? DEFAULT_ROWS_CHANNEL)
    if (options.clearMemory !== undefined && typeof options.clearMemory !== 'boolean') {
      throw new InvalidOptionError(`${owner}: option \`clearMemory\` must be a boolean, got ${show(options.clearMemory)}`)
    }
    this.#clearMemory = options.clearMemory ?? true
    const onError = callbackOption<(error: unknown) => void>(owner, 'onError', options.onError)
    this.#onReconnect = callbackOption(owner, 'onReconnect', options.onReconnect)
    this.#onInvalidate = callbackOption(owner, 'onInvalidate', options.onInvalidate)
    const timeout = msOption(owner, 'timeout', options.timeout, 1000)
    const heartbeatInterval = msOption(owner, 'heartbeatInterval', options.heartbeatInterval, 2000, true)
    const maxBackoff = msOption(owner, 'maxBackoff', options.maxBackoff, 2000)
    this.#source = this.#sourceOf(owner, list, options)
    this.#name = `database-watcher(${describeTarget(config)} ${channel})`
    this.#report = errorReporter(this.#name, onError)
    this.#memory = memoryLayers(list)
    this.#check = new TriggerCheck(this.#name, channel)
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#settleReady = { resolve, reject }
    })
    this.#ready.catch(() => {})
    this.#listener = new PgListener({
      name: this.#name,
      config,
      channels: [channel],
      timeout,
      heartbeatInterval,
      maxBackoff,
      heartbeatQuery: () => (this.#heartbeatChecks ? this.#check.query() : undefined),
      onHeartbeat: (rows) => void this.#checked(rows),
      onNotification: (_channel, payload) => this.#receive(payload),
      onUp: () => this.#up(),
      onDown: () => this.#down(),
      onError: this.#report,
    })
    this.#listener.start()
  }

  get listening(): boolean {
    return this.#listener.up
  }

  ready(): Promise<void> {
    return this.#ready
  }

  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    this.#closed = true
    this.#settleReady?.reject(new StoreClosedError(`${this.#name} was closed before it was ready`))
    this.#settleReady = undefined
    await this.#listener.close()
    await this.#work
    const own = await this.#ownDb?.catch(() => undefined)
    // destroying a Kysely ends its pool: only the watcher's own
    if (this.#ownsPool) await own?.destroy()
  }

  #sourceOf(owner: string, stores: readonly Store[], options: WatchDatabaseOptions): SqlSource {
    checkNaming(owner, options) // whichever source supplies the naming
    if (options.sql !== undefined) {
      if (!isSqlStore(options.sql)) throw new InvalidOptionError(`${owner}: option \`sql\` must be a SqlStore, got ${show(options.sql)}`)
      if (options.db !== undefined)
        throw new InvalidOptionError(`${owner}: options \`sql\` and \`db\` both give the database to introspect: give only one`)
      return sourceOfStore(owner, options.sql, options)
    }
    const authoritative = (stores[0] as { layers?: readonly Store[] }).layers?.at(-1)
    if (isSqlStore(authoritative) && authoritative.dialect === 'postgres' && options.db === undefined)
      return sourceOfStore(owner, authoritative, options)
    if (options.db !== undefined) {
      if (!isKysely(options.db)) throw new InvalidOptionError(`${owner}: option \`db\` must be a Kysely instance, got ${show(options.db)}`)
      return sourceOfKysely(owner, options.db, options.tables, options.camelCase)
    }
    const pool = options.pool
    const config = listenConfig(owner, options)
    return sourceOfKysely(
      owner,
      () => {
        // after close() began, no new pool: close() ends only the one it finds
        if (this.#closed) return Promise.reject(new StoreClosedError(`${this.#name} is closed`))
        this.#ownDb ??= (async () => {
          const { db, ownsPool } = await openPostgres(owner, pool, config)
          this.#ownsPool = ownsPool
          return db
        })()
        this.#ownDb.catch(() => {
          this.#ownDb = undefined
        })
        return this.#ownDb
      },
      options.tables,
      options.camelCase,
    )
  }

  #up(): void {
    if (this.#closed) return
    const reconnect = this.#everUp
    this.#everUp = true
    // Whatever was cached before LISTEN was (re)established may have missed a change.
    this.#clear()
    this.#tables = undefined // introspect again: a migration may have run meanwhile
    this.#heartbeatChecks = false
    const up = ++this.#ups
    this.#work = this.#work.then(async () => {
      if (this.#closed) return
      try {
        await this.#describe()
        if (this.#closed) return
        // the triggers are there, enabled, on this channel (else ready() rejects: E_SCHEMA naming the table)
        const query = this.#check.query()
        const rows =
          query === undefined ? [] : await queryRows<Record<string, unknown>>(this.#name, await this.#source.db(), query.text, query.values)
        const missing = this.#checked(rows)
        if (missing === undefined) this.#settleReady?.resolve()
        else this.#settleReady?.reject(missing)
      } catch (err) {
        if (this.#closed) return // what closing the connections made fail; ready() rejected already
        this.#report(err)
        this.#settleReady?.reject(err)
      } finally {
        this.#settleReady = undefined
        if (up === this.#ups) this.#heartbeatChecks = true
      }
    })
    if (reconnect) this.#call(() => this.#onReconnect?.())
  }

  #down(): void {
    this.#clear()
  }

  #clear(): void {
    if (!this.#clearMemory) return
    for (const layer of this.#memory) {
      if ((layer as { closed?: unknown }).closed === true) continue
      // A memory store's clear() does its work before returning, and its promise never rejects; with
      // `fence` it refuses backfills for its tombstone lifetime (reads in flight may hold old rows).
      if (layer instanceof ProcessMemoryStore) void layer.clear({ fence: true })
      else layer.clear?.().catch((err: unknown) => this.#report(err))
    }
  }

  /**
   * Acts on a check of the triggers (at each (re)connect and heartbeat): clears memory layers when
   * changes were or are not notified, reports what it found, and has the tables introspected again
   * after one was recreated. Returns the error of the tables whose triggers are missing. Never throws.
   */
  #checked(rows: readonly Record<string, unknown>[]): StockpyleError | undefined {
    if (this.#closed) return undefined
    const { clear, redescribe, reports, missing } = this.#check.review(rows)
    if (clear) this.#clear()
    if (redescribe) this.#tables = undefined
    for (const err of reports) this.#report(err)
    return missing
  }

  #describe(): Promise<Map<string, WatchedTable[]>> {
    this.#tables ??= Promise.all([describeTables(this.#source, this.#infos), loadPg(this.#name)]).then(([tables, pg]) => {
      this.#types = pg.types
      const byTable = new Map<string, WatchedTable[]>()
      for (const t of tables) byTable.set(t.qualified, [...(byTable.get(t.qualified) ?? []), t])
      this.#check.watch(byTable.values())
      return byTable
    })
    this.#tables.catch(() => {
      this.#tables = undefined
    })
    return this.#tables
  }

  #receive(payload: string): void {
    if (this.#closed) return
    const change = parseRowChange(payload)
    if (change === undefined) {
      this.#report(new StockpyleError(`${this.#name}: ignored a notification that is not a row change: ${show(payload)}`))
      return
    }
    this.#queue.push(change)
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    // Notifications that arrive together (one socket read) become one batch per model.
    setImmediate(() => {
      this.#flushScheduled = false
      const batch = this.#queue
      this.#queue = []
      // The queue never rejects: whatever applying a batch throws is reported, and the next batch runs.
      this.#work = this.#work.then(() => this.#apply(batch)).catch((err: unknown) => this.#report(err))
    })
  }

  async #apply(batch: readonly RowChange[]): Promise<void> {
    let tables: Map<string, WatchedTable[]>
    try {
      tables = await this.#describe()
    } catch (err) {
      this.#clear()
      this.#report(
        new StockpyleError(`${this.#name}: ${batch.length} row change(s) could not be mapped to models: ${(err as Error).message}`, {
          cause: err,
        }),
      )
      return
    }
    const byModel = new Map<ModelInfo, Map<string, Lookup<Model>>>()
    for (const change of batch) {
      const watched = tables.get(change.table)
      if (watched === undefined) {
        if (!this.#unknownTables.has(change.table)) {
          this.#unknownTables.add(change.table)
          this.#report(
            new StockpyleError(
              `${this.#name}: notified about table \`${change.table}\`, which none of the watched models maps to (a partition of a watched table? run installInvalidationTriggers again: triggers installed before this release name the partition)`,
            ),
          )
        }
        continue
      }
      if (change.pk === undefined) {
        this.#clear()
        this.#report(
          new StockpyleError(
            `${this.#name}: ${untargetable(change)}: memory layers were cleared; shared cache layers keep copies of model \`${watched[0]?.info.name}\` until they expire`,
          ),
        )
        continue
      }
      for (const t of watched) {
        for (const pk of change.old_pk === undefined ? [change.pk] : [change.pk, change.old_pk]) {
          const lookup = keyLookup(t, pk, this.#types)
          if (typeof lookup === 'string') {
            this.#clear() // a row that cannot be named, as a TRUNCATE
            this.#report(
              new StockpyleError(
                `${this.#name}: a change of table \`${t.qualified}\` has no usable value for key column \`${lookup}\`: ${show(pk)} (the triggers were installed for other key columns? run installInvalidationTriggers again); memory layers were cleared`,
              ),
            )
            continue
          }
          let lookups = byModel.get(t.info)
          if (lookups === undefined) byModel.set(t.info, (lookups = new Map()))
          try {
            lookups.set(canonicalKey(t.info.model, lookup as never), lookup)
          } catch (err) {
            this.#report(err)
          }
        }
      }
    }
    for (const [info, lookups] of byModel) {
      const list = [...lookups.values()]
      await Promise.all(
        this.#stores.map(async (store) => {
          if ((store as { closed?: boolean }).closed === true) return // closed before the watcher: nothing left to evict
          try {
            await store.batchInvalidate?.(info.model, list as never)
          } catch (err) {
            this.#report(err)
          }
        }),
      )
      this.#call(() => this.#onInvalidate?.(info.model, list))
    }
  }

  /** Runs a caller's callback; what it throws, or its promise rejects with, goes to `onError`. */
  #call(fn: () => unknown): void {
    callHook(fn, undefined, this.#report)
  }
}
