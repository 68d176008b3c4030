import { AsyncLocalStorage } from 'node:async_hooks'
import {
  BaseStore,
  capabilities,
  type GetEntriesOptions,
  type InvalidateOptions,
  type LookupRequest,
  readRequests,
  type StoreCapabilities,
  type StoreEntry,
  type WriteItem,
} from '../../contracts/base-store.js'
import { Entry } from '../../contracts/batch-records.js'
import { encodeRecord } from '../../core/codec.js'
import { InvalidOptionError } from '../../core/errors.js'
import { supersededCopies } from '../../core/key-claims.js'
import { encodeLookup, keysOfObject, type ObjectKeys } from '../../core/key-encoding.js'
import { nameOption } from '../../core/option-values.js'
import { checkOptionNames } from '../../core/options.js'
import type { ModelInfo } from '../../core/registry.js'
import { keysOfCopy } from './copy-keys.js'
import { InvalidationLog } from './invalidation-log.js'
import { invalidatedSince } from './prepare-writes.js'
import { PROCESS_MEMORY_STORE_OPTIONS, ProcessMemoryStore, type ProcessMemoryStoreOptions } from './process-memory-store.js'

/**
 * Bytes of the log of writes (see AsyncLocalStore's `#written`): key length + 176 each, so some 5,000
 * keys. A copy read before the oldest write it still remembers is refused, whatever its key: a cost of
 * misses, never a stale copy.
 */
export const SCOPE_WRITE_LOG_BYTES = 1024 * 1024

/** The keys of a write: what other scopes' maps drop, and what the log of writes remembers. */
interface Written {
  /** Records and aliases (or the lookups' keys), for {@link ProcessMemoryStore.evictHeld}. */
  readonly held: readonly string[]
  /** The record keys (or the lookups' keys) for the log. */
  readonly records: readonly string[]
  /** Some of `records` may be alternate keys (a lookup by one): see InvalidationLog. */
  readonly aliases: boolean
}

/**
 * Options of {@link AsyncLocalStore}: those of the per-scope {@link ProcessMemoryStore}, but `bus`: a
 * scope's map lives for one request, so there is nothing to keep coherent with other processes.
 */
export interface AsyncLocalStoreOptions extends Omit<ProcessMemoryStoreOptions, 'bus'> {}

/**
 * A per-request identity map (the original's ThreadLocalStore) on AsyncLocalStorage. Data lives only
 * inside `store.run(fn)`: each run gets its own empty map, visible to everything `fn` awaits and to
 * nothing else, and gone when the scope's promises settle. Outside a scope the store holds nothing:
 * gets miss; puts and deletes store nothing but check their input as in a scope (the same typed
 * errors). Objects are copies, as in every store.
 *
 * Scopes stay coherent with each other: a put, delete or invalidation — in a scope, in a nested or
 * concurrent one, or outside any — drops the objects from every other live scope's map (with the
 * tombstones that keep reads in flight there from bringing the old copy back), and is remembered in
 * one log of the store's, so that a read in flight in a scope that held nothing, through any chain,
 * backfills no copy read before it, and (a step of the process's invalidation sequence) no read begun
 * after it joins one begun before it: a read that starts after a write resolved never returns what
 * it replaced, whichever scope it runs in and whichever chain wrote.
 */
export class AsyncLocalStore extends BaseStore {
  readonly name: string
  override readonly capabilities: StoreCapabilities
  readonly #scope = new AsyncLocalStorage<ProcessMemoryStore>()
  readonly #options: AsyncLocalStoreOptions
  /**
   * Every scope's map that may still be used. Weak: a scope ends when nothing of its request can reach
   * its map any more (a `run(next)` returns at once while the request goes on), which only the garbage
   * collector knows; the registry then forgets it.
   */
  readonly #live = new Set<WeakRef<ProcessMemoryStore>>()
  readonly #ended = new FinalizationRegistry<WeakRef<ProcessMemoryStore>>((ref) => this.#live.delete(ref))
  /**
   * When keys were last written here (at most {@link SCOPE_WRITE_LOG_BYTES}), in a scope or outside any:
   * a backfill into any scope's map of a copy read before then is refused. A scope that did not hold the
   * object gets no tombstone (one per live scope cost 11 ms and 0.5 MB per put with a thousand scopes),
   * and its chain's write clock knows only its own chain's writes: another chain over this store (found
   * by review), or a write on the store itself, went unseen and the copy read before it landed. Every
   * write is noted, also when no other scope is live: a scope begun after it may join (single-flight) a
   * read begun before it, and the note (a step of the process's invalidation sequence) is what keeps
   * both the join and the copy out (found by review: only writes made while another scope was live were
   * noted, and such a scope kept and served the old copy).
   */
  readonly #written = new InvalidationLog(SCOPE_WRITE_LOG_BYTES)

  /** @throws InvalidOptionError naming a bad option (checked once, here). */
  constructor(options: AsyncLocalStoreOptions = {}) {
    super()
    checkOptionNames(typeof options?.name === 'string' ? options.name : 'async-local', options, PROCESS_MEMORY_STORE_OPTIONS)
    this.name = nameOption('async-local', options.name, 'async-local')
    if ((options as ProcessMemoryStoreOptions).bus !== undefined) {
      throw new InvalidOptionError(
        `${this.name}: option \`bus\` is not for a per-scope store (each scope's map lives for one request; put a bus on a ProcessMemoryStore)`,
      )
    }
    const probe = new ProcessMemoryStore({ ...options, name: this.name })
    // A Date lifetime was checked above; in scopes begun after it passed it means "not cached", as in
    // any store whose Date passed (a scope's store would refuse it as a Date in the past).
    const { lifetime } = options
    this.#options = { ...options, name: this.name, ...(lifetime instanceof Date ? { lifetime: () => lifetime } : {}) }
    this.capabilities = capabilities({ ...probe.capabilities, scoped: true, inProcess: true, clearable: true })
  }

  /** Runs `fn` in a new scope with an empty map; returns what `fn` returns. Scopes nest: the inner one starts empty. */
  run<T>(fn: () => T): T {
    const map = new ProcessMemoryStore(this.#options)
    const ref = new WeakRef(map)
    this.#live.add(ref)
    this.#ended.register(map, ref)
    return this.#scope.run(map, fn)
  }

  /**
   * A write of `written` made in scope `current` (or outside any): every other live scope's map that
   * holds them drops them (tombstones there), and the write is noted in {@link #written}, which refuses
   * the backfills read before it in every scope, and moves the process's invalidation sequence, so that
   * no read begun after it joins one begun before it (see SingleFlight).
   */
  #evictElsewhere(current: ProcessMemoryStore | undefined, written: Written): void {
    for (const ref of this.#live) {
      const map = ref.deref()
      if (map === undefined) this.#live.delete(ref)
      else if (map !== current && map.size > 0) map.evictHeld(written.held)
    }
    this.#written.invalidated(written.records, written.aliases)
  }

  /** True when called inside a `run()` scope. */
  get inScope(): boolean {
    return this.#scope.getStore() !== undefined
  }

  /**
   * Empties every live scope's map (the current one, and those of nested and concurrent scopes), at
   * once: a chain's `clearCaches()` leaves no copy in any request. Reads in flight then backfill nothing
   * into any scope, also one begun later, and no read begun after the clear joins one begun before it.
   * @throws StoreClosedError (as a rejection) after `close()`.
   */
  async clear(): Promise<void> {
    this.assertOpen('clear')
    this.#written.forgetAll()
    const maps: ProcessMemoryStore[] = []
    for (const ref of this.#live) {
      const map = ref.deref()
      if (map === undefined) this.#live.delete(ref)
      else maps.push(map)
    }
    await Promise.all(maps.map((map) => map.clear()))
  }

  /**
   * The keys of `items`' objects in a scope's map (with the maps' `polymorphic` setting); `operation`
   * (`put`, `delete`) names the call in errors; `each`, when given, gets each object's keys.
   * @throws MissingKeyAttributeError / InvalidKeyError, as a scope's map would.
   */
  #keysOf(items: readonly WriteItem[], operation: string, each?: ObjectKeys[]): Written {
    const polymorphic = this.capabilities.polymorphic
    const where = `${this.name} store ${operation}`
    const held: string[] = []
    const records: string[] = []
    for (const i of items) {
      const k = keysOfObject(i.info, i.obj, polymorphic, where)
      each?.push(k)
      held.push(k.record, ...k.aliases)
      records.push(k.record)
    }
    return { held, records, aliases: false }
  }

  /**
   * Checks puts made outside any scope as a scope's map would check them, though nothing is stored: two
   * objects of the batch claiming one alternate key, a value that cannot be encoded (encoded once, as the
   * chain's shared envelope or a scope's map would; skipped when the item carries its envelope).
   * @throws KeyConflictError, SerializationError (the errors of a put in a scope).
   */
  #checkUnscoped(puts: readonly WriteItem[], keys: readonly ObjectKeys[]): void {
    const where = `${this.name} store put`
    supersededCopies(where, puts, keys)
    for (const i of puts) if (i.encoded === undefined) encodeRecord(i.obj, undefined, where)
  }

  /** The keys of lookups (records or, by an alternate key or in a polymorphic store, maybe aliases). */
  #keysOfLookups(info: ModelInfo, requests: readonly LookupRequest[], operation: string): Written {
    const keys = requests.map((r) => encodeLookup(info, r.lookup, `${this.name} store ${operation}`))
    return { held: keys, records: keys, aliases: this.capabilities.polymorphic || requests.some((r) => r.spec !== info.primary) }
  }

  protected override async removeByLookups(info: ModelInfo, requests: readonly LookupRequest[]): Promise<(object | undefined)[]> {
    const inner = this.#scope.getStore()
    this.#evictElsewhere(inner, this.#keysOfLookups(info, requests, 'delete'))
    if (inner === undefined) return requests.map(() => undefined)
    return inner.batchDeleteByKey(info.model, requests.map((r) => r.lookup) as never)
  }

  protected async readMany(
    info: ModelInfo,
    requests: readonly LookupRequest[],
    options?: GetEntriesOptions,
  ): Promise<(StoreEntry | undefined)[]> {
    const inner = this.#scope.getStore()
    if (inner === undefined) return requests.map(() => undefined)
    return readRequests(inner, info, requests, options)
  }

  protected async writeMany(items: readonly WriteItem[]): Promise<void> {
    const inner = this.#scope.getStore()
    const puts = items.filter((i) => i.backfill !== true)
    if (puts.length > 0) {
      // The keys are checked wherever the put runs; outside a scope the rest of what a scope's map
      // checks as it stores a put is checked here (nothing stores it)
      const each = inner === undefined ? [] : undefined
      const written = this.#keysOf(puts, 'put', each)
      if (each !== undefined) this.#checkUnscoped(puts, each)
      this.#evictElsewhere(inner, written)
    }
    if (inner === undefined) return
    if (puts.length > 0) await inner.batchPutEntries(puts.map((i) => new Entry(i.obj, i.expiresAt, i.encoded)))
    // Backfills keep what they were read at (`since`): the scope's map refuses copies of keys invalidated after it.
    const bySince = new Map<number | undefined, StoreEntry[]>()
    for (const i of items) {
      if (i.backfill !== true || this.#writtenSince(i)) continue
      const group = bySince.get(i.since)
      const entry = new Entry(i.obj, i.expiresAt, i.encoded)
      if (group === undefined) bySince.set(i.since, [entry])
      else group.push(entry)
    }
    for (const [since, entries] of bySince)
      await inner.batchPutEntries(entries, since === undefined ? { backfill: true } : { backfill: true, since })
  }

  /** Whether backfill `item` was read before a write of its key noted in {@link #written} (one comparison when none came since). */
  #writtenSince(item: WriteItem): boolean {
    const since = item.since
    if (since === undefined || this.#written.newest <= since) return false
    const keys = keysOfCopy(item.info, item.obj, this.capabilities.polymorphic, `${this.name} store put`)
    return invalidatedSince(this.#written, keys, since)
  }

  protected async removeMany(items: readonly WriteItem[]): Promise<void> {
    const inner = this.#scope.getStore()
    this.#evictElsewhere(inner, this.#keysOf(items, 'delete'))
    await inner?.batchDelete(items.map((i) => i.obj))
  }

  protected override async invalidateMany(info: ModelInfo, requests: readonly LookupRequest[], options?: InvalidateOptions): Promise<void> {
    const inner = this.#scope.getStore()
    this.#evictElsewhere(inner, this.#keysOfLookups(info, requests, 'invalidate'))
    await inner?.batchInvalidate(info.model, requests.map((r) => r.lookup) as never, options)
  }
}
