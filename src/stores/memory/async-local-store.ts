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
import { InvalidOptionError } from '../../core/errors.js'
import { encodeLookup, keysOfObject } from '../../core/key-encoding.js'
import { nameOption } from '../../core/option-values.js'
import { checkOptionNames } from '../../core/options.js'
import type { ModelInfo } from '../../core/registry.js'
import { PROCESS_MEMORY_STORE_OPTIONS, ProcessMemoryStore, type ProcessMemoryStoreOptions } from './process-memory-store.js'

/**
 * Options of {@link AsyncLocalStore}: those of the per-scope {@link ProcessMemoryStore}, but `bus`: a
 * scope's map lives for one request, so there is nothing to keep coherent with other processes.
 */
export interface AsyncLocalStoreOptions extends Omit<ProcessMemoryStoreOptions, 'bus'> {}

/**
 * A per-request identity map (the original's ThreadLocalStore) on AsyncLocalStorage. Data lives only
 * inside `store.run(fn)`: each run gets its own empty map, visible to everything `fn` awaits and to
 * nothing else, and gone when the scope's promises settle. Outside a scope the store holds nothing:
 * gets miss. Objects are copies, as in every store.
 *
 * Scopes stay coherent with each other: a put, delete or invalidation — in a scope, in a nested or
 * concurrent one, or outside any — drops the objects from every other live scope's map (with the
 * tombstones that keep reads in flight there from bringing the old copy back), so a read that starts
 * after a write resolved never returns what it replaced, whichever scope it runs in.
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
   * Drops the objects under `keys` (records or aliases) from every live scope's map but `current` that
   * holds them. No tombstone is left where a map holds nothing: a read in flight there that began
   * before the write is refused its backfill by the chain's write clock, and tombstones in every idle
   * scope made each write cost memory per live scope (a thousand scopes: 11 ms and 0.5 MB per put).
   */
  #evictElsewhere(current: ProcessMemoryStore | undefined, keys: () => string[]): void {
    let computed: string[] | undefined
    for (const ref of this.#live) {
      const map = ref.deref()
      if (map === undefined) this.#live.delete(ref)
      else if (map !== current && map.size > 0) map.evictHeld((computed ??= keys()))
    }
  }

  /** True when called inside a `run()` scope. */
  get inScope(): boolean {
    return this.#scope.getStore() !== undefined
  }

  /**
   * Empties every live scope's map (the current one, and those of nested and concurrent scopes), at
   * once: a chain's `clearCaches()` leaves no copy in any request.
   * @throws StoreClosedError (as a rejection) after `close()`.
   */
  async clear(): Promise<void> {
    this.assertOpen('clear')
    const maps: ProcessMemoryStore[] = []
    for (const ref of this.#live) {
      const map = ref.deref()
      if (map === undefined) this.#live.delete(ref)
      else maps.push(map)
    }
    await Promise.all(maps.map((map) => map.clear()))
  }

  /** The keys of `items`' objects in a scope's map (with the maps' `polymorphic` setting). */
  #keysOf(items: readonly WriteItem[]): string[] {
    const polymorphic = this.capabilities.polymorphic
    return items.flatMap((i) => {
      const k = keysOfObject(i.info, i.obj, polymorphic, `${this.name} store write`)
      return [k.record, ...k.aliases]
    })
  }

  protected override async removeByLookups(info: ModelInfo, requests: readonly LookupRequest[]): Promise<(object | undefined)[]> {
    const inner = this.#scope.getStore()
    this.#evictElsewhere(inner, () => requests.map((r) => encodeLookup(info, r.lookup, `${this.name} store delete`)))
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
    if (puts.length > 0) this.#evictElsewhere(inner, () => this.#keysOf(puts))
    if (inner === undefined) return
    if (puts.length > 0) await inner.batchPutEntries(puts.map((i) => new Entry(i.obj, i.expiresAt, i.encoded)))
    // Backfills keep what they were read at (`since`): the scope's map refuses copies of keys invalidated after it.
    const bySince = new Map<number | undefined, StoreEntry[]>()
    for (const i of items) {
      if (i.backfill !== true) continue
      const group = bySince.get(i.since)
      const entry = new Entry(i.obj, i.expiresAt, i.encoded)
      if (group === undefined) bySince.set(i.since, [entry])
      else group.push(entry)
    }
    for (const [since, entries] of bySince)
      await inner.batchPutEntries(entries, since === undefined ? { backfill: true } : { backfill: true, since })
  }

  protected async removeMany(items: readonly WriteItem[]): Promise<void> {
    const inner = this.#scope.getStore()
    this.#evictElsewhere(inner, () => this.#keysOf(items))
    await inner?.batchDelete(items.map((i) => i.obj))
  }

  protected override async invalidateMany(info: ModelInfo, requests: readonly LookupRequest[], options?: InvalidateOptions): Promise<void> {
    const inner = this.#scope.getStore()
    this.#evictElsewhere(inner, () => requests.map((r) => encodeLookup(info, r.lookup, `${this.name} store invalidate`)))
    await inner?.batchInvalidate(info.model, requests.map((r) => r.lookup) as never, options)
  }
}
