import { EventEmitter } from 'node:events'
import { decodeRecord, encodeRecord } from '../core/codec.js'
import { InvalidOptionError, MissingKeyAttributeError, StockpyleError, show } from '../core/errors.js'
import { encodeLookup, keysOfObject } from '../core/key-encoding.js'
import type { Model } from '../core/model.js'
import { describeModel, type ModelInfo } from '../core/registry.js'
import {
  BaseStore,
  capabilities,
  type LookupRequest,
  type Store,
  type StoreCapabilities,
  type StoreEntry,
  type WriteItem,
} from '../stores/base-store.js'

/** Options of {@link ChainedStore}. */
export interface ChainedStoreOptions {
  /**
   * What a failing cache layer (any layer but the last) means to callers. `'report'` (default): the
   * call succeeds — reads are answered by the layers below, a failed cache write is cleaned up — and
   * the failure is counted in `stats()` and emitted as a `cacheError` event. `'throw'`: the same
   * clean-up happens, then the call rejects with the error.
   */
  onCacheError?: 'report' | 'throw'
  /** Name in messages. Default `'chain'`. */
  name?: string
}

/** Counters of one layer, since the chain was created. */
export interface LayerStats {
  readonly name: string
  /** Lookups this layer answered. */
  hits: number
  /** Lookups this layer was asked and did not have. */
  misses: number
  /** Operations on this layer that failed. */
  errors: number
  /** Objects copied into this layer from a layer below it. */
  backfills: number
}

/** The payload of a `cacheError` event. */
export interface CacheErrorEvent {
  readonly layer: string
  readonly index: number
  readonly operation: 'get' | 'put' | 'delete' | 'backfill'
  readonly error: unknown
}

/**
 * A write-through chain of stores, fastest first and authoritative (the database) last. It is itself a
 * Store, so chains nest.
 *
 * - get / batchGet: layers are asked in order, each only for the lookups still missing, in one batch
 *   call; a hit at layer j is copied (backfilled) into layers 0..j−1 in one batch per layer, never
 *   outliving its source and never over a write that happened since the read began.
 * - put / batchPut: the last layer first (it may fill ids and defaults), then the caches bottom-up.
 * - delete / batchDelete: the last layer first, then the caches bottom-up, so no read can bring the
 *   object back from below.
 * - A failing authoritative layer rejects the call and leaves no cache entry newer than the database
 *   (the objects are invalidated in every cache). A failing cache layer is skipped on reads and
 *   reported (see {@link ChainedStoreOptions.onCacheError}); a failed cache write is followed by an
 *   invalidation of those objects in that layer so nothing stale is served later.
 * - Concurrent misses of one key in this process cause one read of the layers below the first
 *   (single-flight); each caller still gets its own copy.
 */
export class ChainedStore extends BaseStore {
  readonly name: string
  override readonly capabilities: StoreCapabilities
  /** Emits `cacheError` ({@link CacheErrorEvent}). */
  readonly events = new EventEmitter()
  readonly #layers: readonly Store[]
  readonly #stats: LayerStats[]
  readonly #throwCacheErrors: boolean
  readonly #flights = new Map<string, Promise<StoreEntry | undefined>>()
  // Write clock: the sequence number of the last write that touched each key, so a read that began
  // before it does not backfill what it read. Pruned when no read is in flight.
  #seq = 0
  readonly #lastWrite = new Map<string, number>()
  readonly #readsInFlight = new Map<number, number>()
  readonly #backfilling = new Map<string, Promise<void>>()

  /** @throws InvalidOptionError for an empty list, a non-store or a bad option. */
  constructor(layers: readonly Store[], options: ChainedStoreOptions = {}) {
    super()
    this.name = options.name ?? 'chain'
    if (!Array.isArray(layers) || layers.length === 0) {
      throw new InvalidOptionError(
        `${this.name}: option \`layers\` must be a non-empty array of stores, fastest first, got ${show(layers)}`,
      )
    }
    layers.forEach((layer, i) => {
      if (
        typeof layer?.batchGetEntries !== 'function' ||
        typeof layer.batchPutEntries !== 'function' ||
        typeof layer.batchDelete !== 'function'
      ) {
        throw new InvalidOptionError(`${this.name}: option \`layers\`[${i}] is not a store (${show(layer)})`)
      }
    })
    const policy = options.onCacheError ?? 'report'
    if (policy !== 'report' && policy !== 'throw') {
      throw new InvalidOptionError(`${this.name}: option \`onCacheError\` must be 'report' or 'throw', got ${show(policy)}`)
    }
    this.#throwCacheErrors = policy === 'throw'
    this.#layers = [...layers]
    this.#stats = layers.map((l) => ({ name: l.name, hits: 0, misses: 0, errors: 0, backfills: 0 }))
    const last = layers[layers.length - 1] as Store
    this.capabilities = capabilities({
      authoritative: last.capabilities.authoritative,
      generatesKeys: last.capabilities.generatesKeys,
      expires: layers.every((l) => l.capabilities.expires),
      polymorphic: layers.every((l) => l.capabilities.polymorphic),
      secondResolution: layers.some((l) => l.capabilities.secondResolution),
      scoped: layers.every((l) => l.capabilities.scoped),
    })
  }

  /** The layers, fastest first. */
  get layers(): readonly Store[] {
    return this.#layers
  }

  /** A snapshot of each layer's counters, fastest first. */
  stats(): LayerStats[] {
    return this.#stats.map((s) => ({ ...s }))
  }

  #report(index: number, operation: CacheErrorEvent['operation'], error: unknown): void {
    ;(this.#stats[index] as LayerStats).errors++
    const layer = this.#layers[index] as Store
    if (this.events.listenerCount('cacheError') > 0) this.events.emit('cacheError', { layer: layer.name, index, operation, error })
  }

  // ---- reads -------------------------------------------------------------------------------

  protected async readMany(info: ModelInfo, requests: readonly LookupRequest[]): Promise<(StoreEntry | undefined)[]> {
    const model = info.model
    const lookups = requests.map((r) => r.lookup)
    const out = await this.#ask(0, model, lookups, requests.length)
    const missing: number[] = []
    for (let i = 0; i < out.length; i++) if (out[i] === undefined) missing.push(i)
    if (missing.length === 0 || this.#layers.length === 1) return out

    // Single-flight: join reads of the same key already going below layer 0; start one batch for the rest.
    const keys = missing.map((i) => `${info.name}\u0000${encodeLookup(info, lookups[i], `${this.name} store get`)}`)
    const mine: number[] = []
    const joined: [number, Promise<StoreEntry | undefined>][] = []
    missing.forEach((slot, m) => {
      const flight = this.#flights.get(keys[m] as string)
      if (flight === undefined) mine.push(m)
      else joined.push([slot, flight.then(copyEntry)])
    })
    if (mine.length > 0) {
      const firstOf = new Map<string, number>()
      const unique: number[] = []
      for (const m of mine) {
        const key = keys[m] as string
        if (!firstOf.has(key)) {
          firstOf.set(key, unique.length)
          unique.push(m)
        }
      }
      const batch = this.#readBelow(
        model,
        unique.map((m) => lookups[missing[m] as number] as object),
      )
      unique.forEach((m, u) => {
        const key = keys[m] as string
        const flight = batch.then((entries) => entries[u])
        flight.catch(() => {})
        this.#flights.set(key, flight)
        void batch.then(
          () => this.#flights.delete(key),
          () => this.#flights.delete(key),
        )
      })
      const entries = await batch
      const used = new Set<number>()
      for (const m of mine) {
        const u = firstOf.get(keys[m] as string) as number
        const entry = entries[u]
        out[missing[m] as number] = used.has(u) ? copyEntry(entry) : entry
        used.add(u)
      }
    }
    for (const [slot, flight] of joined) out[slot] = await flight
    return out
  }

  /** Asks layer `index` for `lookups`; a failing cache layer answers with misses (or throws per policy). */
  async #ask(index: number, model: Model, lookups: readonly object[], count: number): Promise<(StoreEntry | undefined)[]> {
    const layer = this.#layers[index] as Store
    const stats = this.#stats[index] as LayerStats
    let entries: (StoreEntry | undefined)[]
    try {
      entries = await layer.batchGetEntries(model, lookups as never)
    } catch (err) {
      if (index === this.#layers.length - 1 || this.#throwCacheErrors || isCallerError(err)) throw err
      this.#report(index, 'get', err)
      return new Array(count).fill(undefined)
    }
    for (const e of entries) e === undefined ? stats.misses++ : stats.hits++
    return entries
  }

  /** Reads `lookups` from layers 1..n−1 and backfills the hits upward. */
  async #readBelow(model: Model, lookups: readonly object[]): Promise<(StoreEntry | undefined)[]> {
    const started = this.#beginRead()
    try {
      const out: (StoreEntry | undefined)[] = new Array(lookups.length).fill(undefined)
      let pending = lookups.map((_, i) => i)
      for (let j = 1; j < this.#layers.length && pending.length > 0; j++) {
        const found = await this.#ask(
          j,
          model,
          pending.map((i) => lookups[i] as object),
          pending.length,
        )
        const hits: StoreEntry[] = []
        const still: number[] = []
        pending.forEach((i, p) => {
          const entry = found[p]
          if (entry === undefined) still.push(i)
          else {
            out[i] = entry
            hits.push(entry)
          }
        })
        if (hits.length > 0) await this.#backfill(j, hits, started)
        pending = still
      }
      return out
    } finally {
      this.#endRead(started)
    }
  }

  async #backfill(below: number, hits: StoreEntry[], started: number): Promise<void> {
    const fresh: StoreEntry[] = []
    const keys: string[] = []
    for (const hit of hits) {
      const objKeys = objectKeys(hit.value)
      if (this.#lastWrite.size > 0 && objKeys.some((k) => (this.#lastWrite.get(k) ?? -1) > started)) continue
      fresh.push(hit)
      keys.push(...objKeys)
    }
    if (fresh.length === 0) return
    const work = this.#writeBackfill(below, fresh)
    // A write of these objects waits for this backfill to land before it updates the caches, so the
    // backfill can never land after (and over) the write.
    for (const key of keys) this.#backfilling.set(key, work)
    try {
      await work
    } finally {
      for (const key of keys) if (this.#backfilling.get(key) === work) this.#backfilling.delete(key)
    }
  }

  async #writeBackfill(below: number, fresh: StoreEntry[]): Promise<void> {
    for (let i = below - 1; i >= 0; i--) {
      const layer = this.#layers[i] as Store
      try {
        await layer.batchPutEntries(fresh, { backfill: true })
        ;(this.#stats[i] as LayerStats).backfills += fresh.length
      } catch (err) {
        this.#report(i, 'backfill', err)
        await this.#invalidate(
          i,
          fresh.map((e) => e.value),
        )
        if (this.#throwCacheErrors) throw err
      }
    }
  }

  /** Waits for backfills in flight of any of these objects' keys. */
  async #settleBackfills(objs: readonly object[]): Promise<void> {
    if (this.#backfilling.size === 0) return
    const pending = new Set<Promise<void>>()
    for (const obj of objs) {
      for (const key of objectKeys(obj)) {
        const work = this.#backfilling.get(key)
        if (work !== undefined) pending.add(work)
      }
    }
    await Promise.allSettled(pending)
  }

  #beginRead(): number {
    const started = this.#seq
    this.#readsInFlight.set(started, (this.#readsInFlight.get(started) ?? 0) + 1)
    return started
  }

  #endRead(started: number): void {
    const left = (this.#readsInFlight.get(started) ?? 1) - 1
    if (left > 0) this.#readsInFlight.set(started, left)
    else this.#readsInFlight.delete(started)
    if (this.#readsInFlight.size === 0) this.#lastWrite.clear()
    else if (this.#lastWrite.size > 10_000) {
      const oldest = Math.min(...this.#readsInFlight.keys())
      for (const [key, seq] of this.#lastWrite) if (seq <= oldest) this.#lastWrite.delete(key)
    }
  }

  #markWritten(objs: readonly object[]): void {
    this.#markKeys(this.#readsInFlight.size === 0 ? [] : objs.flatMap(objectKeys))
  }

  /** Advances the write clock, stamping these canonical keys when reads are in flight. */
  #markKeys(keys: readonly string[]): void {
    const seq = ++this.#seq
    if (this.#readsInFlight.size === 0) return
    for (const key of keys) this.#lastWrite.set(key, seq)
  }

  // ---- writes ------------------------------------------------------------------------------

  protected async writeMany(items: readonly WriteItem[]): Promise<void> {
    const objs = items.map((i) => i.obj)
    this.#checkWritable(items)
    this.#markWritten(objs)
    const last = this.#layers.length - 1
    try {
      await (this.#layers[last] as Store).batchPutEntries(items.map((i) => ({ value: i.obj, expiresAt: i.expiresAt })))
    } catch (err) {
      await this.#invalidateCaches(objs)
      throw err
    } finally {
      this.#markWritten(objs)
    }
    await this.#settleBackfills(objs)
    await this.#eachCache('put', objs, (layer) => layer.batchPutEntries(items.map((i) => ({ value: i.obj, expiresAt: i.expiresAt }))))
  }

  protected async removeMany(items: readonly WriteItem[]): Promise<void> {
    const objs = items.map((i) => i.obj)
    this.#markWritten(objs)
    const last = this.#layers.length - 1
    try {
      await (this.#layers[last] as Store).batchDelete(objs)
    } catch (err) {
      await this.#invalidateCaches(objs)
      throw err
    } finally {
      this.#markWritten(objs)
    }
    await this.#settleBackfills(objs)
    await this.#eachCache('delete', objs, (layer) => layer.batchDelete(objs))
  }

  /** Every check a layer would make, before the first write: keys complete (unless the database fills them) and encodable. */
  #checkWritable(items: readonly WriteItem[]): void {
    if (this.#layers.length === 1) return
    const generates = this.capabilities.generatesKeys
    for (const { obj, info } of items) {
      try {
        keysOfObject(info, obj, false, `${this.name} store put`)
      } catch (err) {
        if (!(generates && err instanceof MissingKeyAttributeError && missingOnlyPrimary(info, obj))) throw err
      }
      encodeRecord(obj, undefined, `${this.name} store put`)
    }
  }

  async #eachCache(operation: 'put' | 'delete', objs: readonly object[], write: (layer: Store) => Promise<void>): Promise<void> {
    let failure: unknown
    for (let i = this.#layers.length - 2; i >= 0; i--) {
      try {
        await write(this.#layers[i] as Store)
      } catch (err) {
        this.#report(i, operation, err)
        if (operation === 'put') await this.#invalidate(i, objs)
        failure ??= err
      }
    }
    if (failure !== undefined && this.#throwCacheErrors) throw failure
  }

  async #invalidate(index: number, objs: readonly object[]): Promise<void> {
    try {
      await (this.#layers[index] as Store).batchDelete(objs)
    } catch (err) {
      this.#report(index, 'delete', err)
    }
  }

  async #invalidateCaches(objs: readonly object[]): Promise<void> {
    for (let i = this.#layers.length - 2; i >= 0; i--) {
      try {
        await (this.#layers[i] as Store).batchDelete(objs)
      } catch (err) {
        if (!isCallerError(err)) this.#report(i, 'delete', err)
      }
    }
  }

  /** Drops cached copies in every cache layer (the authoritative layer keeps its data). */
  protected override async invalidateMany(info: ModelInfo, requests: readonly LookupRequest[]): Promise<void> {
    const lookups = requests.map((r) => r.lookup)
    this.#markKeys(requests.map((r) => encodeLookup(info, r.lookup, `${this.name} store invalidate`)))
    let failure: unknown
    for (let i = this.#layers.length - 2; i >= 0; i--) {
      const layer = this.#layers[i] as Store
      if (layer.batchInvalidate === undefined) continue
      try {
        await layer.batchInvalidate(info.model, lookups as never)
      } catch (err) {
        this.#report(i, 'delete', err)
        failure ??= err
      }
    }
    if (failure !== undefined && this.#throwCacheErrors) throw failure
  }

  protected override async release(): Promise<void> {
    const results = await Promise.allSettled(this.#layers.map((l) => l.close()))
    const failed = results.find((r) => r.status === 'rejected')
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason
  }
}

/** An error about the caller's input, which no layer failure policy should hide. */
function isCallerError(err: unknown): boolean {
  return err instanceof StockpyleError && CALLER_ERRORS.has(err.code)
}
const CALLER_ERRORS = new Set(['E_UNKNOWN_KEY', 'E_INVALID_KEY', 'E_MISSING_KEY_ATTRIBUTE', 'E_SERIALIZATION'])

function missingOnlyPrimary(info: ModelInfo, obj: object): boolean {
  const source = obj as Record<string, unknown>
  const missing = info.primary.fields.some((f) => source[f] === undefined || source[f] === null)
  if (!missing) return false
  try {
    for (const spec of info.keys) {
      if (spec === info.primary) continue
      for (const f of spec.fields) if (source[f] === undefined || source[f] === null) return false
    }
  } catch {
    return false
  }
  return true
}

/** The keys that identify an object for the write clock: every key of every model in its lineage. */
function objectKeys(obj: object): string[] {
  const ctor = (obj as { constructor: Model }).constructor
  try {
    const info = describeModel(ctor)
    const keys = keysOfObject(info, obj, true, 'chain')
    return [keys.record, ...keys.aliases]
  } catch {
    return []
  }
}

function copyEntry(entry: StoreEntry | undefined): StoreEntry | undefined {
  if (entry === undefined) return undefined
  return { value: decodeRecord(encodeRecord(entry.value, undefined)) as object, expiresAt: entry.expiresAt }
}
