import { EventEmitter } from 'node:events'
import { LRUCache } from 'lru-cache'
import {
  BaseStore,
  capabilities,
  type GetEntriesOptions,
  type LeaseCapable,
  type LookupRequest,
  type Store,
  type StoreCapabilities,
  type StoreEntry,
  type TransactionCapable,
  type TransactionHandle,
  type WriteItem,
} from '../contracts/base-store.js'
import { decodeRecord, encodeRecord } from '../core/codec.js'
import { InvalidOptionError, MissingKeyAttributeError, StockpyleError, show } from '../core/errors.js'
import { encodeLookup, keyForLookup, keyOfObjectFor, keysOfObject } from '../core/key-encoding.js'
import { type Clock, systemClock } from '../core/lifetime.js'
import type { Instance, Lookup, Model } from '../core/model.js'
import { describeModel, type ModelInfo } from '../core/registry.js'
import { type BreakerOptions, isCallerError, LayerGuard } from './layer-guard.js'
import { ChainMetrics, type MeterLike } from './metrics.js'
import { WriteClock } from './write-clock.js'

/** Options of {@link ChainedStore}. */
export interface ChainedStoreOptions {
  /**
   * What a failing cache layer (any layer but the last) means to callers. `'report'` (default): the
   * call succeeds — reads are answered by the layers below, a failed cache write is cleaned up — and
   * the failure is counted in `stats()` and emitted as a `cacheError` event. `'throw'`: the same
   * clean-up happens, then the call rejects with the error.
   */
  onCacheError?: 'report' | 'throw'
  /** Milliseconds each call to a cache layer may take before it counts as failed. Default: none (the stores' own timeouts). In-process layers are never timed. */
  timeout?: number
  /**
   * Circuit breaker per cache layer (cockatiel): after `failures` consecutive failures the layer is
   * skipped for `halfOpenAfter` ms, then probed by one call. `false` turns it off.
   * Default `{ failures: 1, halfOpenAfter: 1000 }`. In-process layers have none.
   */
  breaker?: BreakerOptions | false
  /**
   * Seconds a lookup that missed in every layer is remembered in this process, so repeated gets of
   * absent objects do not reach the database (negative caching). Puts, deletes and invalidations of
   * the object through this chain forget it at once; writes elsewhere are seen when it expires.
   * Default 0 (off).
   */
  missLifetime?: number
  /**
   * When the authoritative layer fails on a read, answer with expired copies that cache layers still
   * hold within their `grace` (see the stores' `grace` option), instead of rejecting. Default `false`.
   */
  serveStale?: boolean
  /**
   * The coherence protections (write clock, backfills that never replace a newer value, writes that
   * wait for in-flight backfills). Default `true`; `false` exists to show what they prevent.
   */
  coherence?: boolean
  /**
   * Cross-process protection against miss storms: when a lookup misses in the lowest cache layer that
   * can hand out leases (memcached, Redis: `capabilities.leases`), one process takes a lease and reads
   * the database; the others poll that layer for its copy for up to `wait` ms (default 500) before
   * reading the database themselves. A lease lasts `ttl` ms (default 2000) unless released. `true` uses
   * the defaults. Default: off.
   */
  leases?: boolean | { wait?: number; ttl?: number }
  /** An OpenTelemetry-compatible meter for per-layer metrics (see {@link ChainMetrics}). */
  meter?: MeterLike
  /** Clock for negative caching (ms since the epoch). Default `Date.now`. */
  clock?: Clock
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
  /** Calls not sent because the layer's circuit was open or repairs were pending. */
  skipped: number
  /** Objects copied into this layer from a layer below it. */
  backfills: number
  /** Objects whose copy in this layer awaits repair (an invalidation that could not be applied yet). */
  pendingRepairs: number
}

/** The payload of a `cacheError` event. */
export interface CacheErrorEvent {
  readonly layer: string
  readonly index: number
  readonly operation: 'get' | 'put' | 'delete' | 'backfill' | 'invalidate' | 'repair'
  readonly error: unknown
}

type Operation = CacheErrorEvent['operation']

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
 *   reported (see {@link ChainedStoreOptions.onCacheError}); a copy it may still hold after a failed
 *   write is invalidated, at once or — if the layer is unreachable — before the layer is read again.
 * - Concurrent misses of one key in this process cause one read of the layers below the first
 *   (single-flight); each caller still gets its own copy.
 */
export class ChainedStore extends BaseStore {
  readonly name: string
  override readonly capabilities: StoreCapabilities
  /** Emits `cacheError` ({@link CacheErrorEvent}). */
  readonly events = new EventEmitter()
  readonly #layers: readonly Store[]
  readonly #guards: readonly LayerGuard[]
  readonly #stats: Omit<LayerStats, 'pendingRepairs'>[]
  readonly #throwCacheErrors: boolean
  readonly #coherence: boolean
  readonly #serveStale: boolean
  /** Reads going below the first layer, by lookup key, with the write clock when they started. */
  readonly #flights = new Map<string, { readonly entry: Promise<StoreEntry | undefined>; readonly seq: number }>()
  readonly #clock = new WriteClock()
  readonly #backfilling = new Map<string, Promise<void>>()
  readonly #misses: LRUCache<string, number> | undefined
  readonly #missMs: number
  readonly #now: Clock
  readonly #metrics: ChainMetrics | undefined
  readonly #leases: { wait: number; ttl: number } | undefined
  readonly #leaseLayer: number

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
    if (options.timeout !== undefined && !(Number.isFinite(options.timeout) && options.timeout > 0)) {
      throw new InvalidOptionError(`${this.name}: option \`timeout\` must be a number of ms > 0, got ${show(options.timeout)}`)
    }
    const breaker = options.breaker
    if (
      breaker !== undefined &&
      breaker !== false &&
      (typeof breaker !== 'object' ||
        (breaker.failures !== undefined && !(Number.isInteger(breaker.failures) && breaker.failures > 0)) ||
        (breaker.halfOpenAfter !== undefined && !(breaker.halfOpenAfter >= 0)))
    ) {
      throw new InvalidOptionError(
        `${this.name}: option \`breaker\` must be false or { failures > 0, halfOpenAfter >= 0 ms }, got ${show(breaker)}`,
      )
    }
    const missLifetime = options.missLifetime ?? 0
    if (!(typeof missLifetime === 'number' && missLifetime >= 0 && Number.isFinite(missLifetime))) {
      throw new InvalidOptionError(`${this.name}: option \`missLifetime\` must be a number of seconds >= 0, got ${show(missLifetime)}`)
    }
    for (const flag of ['serveStale', 'coherence'] as const) {
      if (options[flag] !== undefined && typeof options[flag] !== 'boolean') {
        throw new InvalidOptionError(`${this.name}: option \`${flag}\` must be a boolean, got ${show(options[flag])}`)
      }
    }
    this.#throwCacheErrors = policy === 'throw'
    this.#coherence = options.coherence ?? true
    this.#serveStale = options.serveStale ?? false
    this.#missMs = missLifetime * 1000
    this.#misses = missLifetime > 0 ? new LRUCache<string, number>({ max: 100_000 }) : undefined
    this.#now = options.clock ?? systemClock
    this.#metrics = options.meter === undefined ? undefined : new ChainMetrics(options.meter)
    this.#layers = [...layers]
    const last = layers.length - 1
    this.#guards = layers.map((layer, i) => {
      const local = i === last || layer.capabilities.inProcess
      const guard = new LayerGuard(layer, local ? { breaker: false } : { timeout: options.timeout, breaker })
      guard.onRepaired = (model, lookups) => this.#invalidateAbove(i, model, lookups)
      guard.onOverflow = (dropped) =>
        this.#report(i, 'repair', new InvalidOptionError(`${layer.name} store: ${dropped} pending repairs dropped for lack of room`))
      return guard
    })
    this.#stats = layers.map((l) => ({ name: l.name, hits: 0, misses: 0, errors: 0, skipped: 0, backfills: 0 }))
    const leases = options.leases ?? false
    if (
      typeof leases !== 'boolean' &&
      (typeof leases !== 'object' ||
        leases === null ||
        (leases.wait !== undefined && !(leases.wait >= 0)) ||
        (leases.ttl !== undefined && !(leases.ttl > 0)))
    ) {
      throw new InvalidOptionError(`${this.name}: option \`leases\` must be a boolean or { wait >= 0 ms, ttl > 0 ms }, got ${show(leases)}`)
    }
    let leaseLayer = -1
    for (let i = last - 1; i >= 1 && leases !== false; i--) {
      const candidate = layers[i] as Store & Partial<LeaseCapable>
      if (candidate.capabilities.leases) {
        if (
          typeof candidate.acquireLeases !== 'function' ||
          typeof candidate.releaseLeases !== 'function' ||
          typeof candidate.leasesHeld !== 'function'
        ) {
          throw new InvalidOptionError(
            `${this.name}: option \`layers\`[${i}] (${candidate.name}) declares leases but lacks acquireLeases, releaseLeases or leasesHeld`,
          )
        }
        leaseLayer = i
        break
      }
    }
    if (leases !== false && leaseLayer === -1) {
      throw new InvalidOptionError(
        `${this.name}: option \`leases\` needs a cache layer below the first that can hand out leases (capabilities.leases)`,
      )
    }
    this.#leaseLayer = leaseLayer
    this.#leases =
      leases === false
        ? undefined
        : { wait: (leases === true ? undefined : leases.wait) ?? 500, ttl: (leases === true ? undefined : leases.ttl) ?? 2000 }
    const tail = layers[last] as Store
    this.capabilities = capabilities({
      authoritative: tail.capabilities.authoritative,
      generatesKeys: tail.capabilities.generatesKeys,
      expires: layers.every((l) => l.capabilities.expires),
      polymorphic: layers.every((l) => l.capabilities.polymorphic),
      secondResolution: layers.some((l) => l.capabilities.secondResolution),
      scoped: layers.every((l) => l.capabilities.scoped),
      inProcess: layers.every((l) => l.capabilities.inProcess),
    })
  }

  /** The layers, fastest first. */
  get layers(): readonly Store[] {
    return this.#layers
  }

  /** A snapshot of each layer's counters, fastest first. */
  stats(): LayerStats[] {
    return this.#stats.map((s, i) => ({ ...s, pendingRepairs: (this.#guards[i] as LayerGuard).pendingRepairs }))
  }

  #report(index: number, operation: Operation, error: unknown): void {
    const stats = this.#stats[index] as LayerStats
    const layer = this.#layers[index] as Store
    if ((error as { skipped?: boolean }).skipped === true) {
      stats.skipped++
      return
    }
    stats.errors++
    this.#metrics?.error(layer.name, operation)
    if (this.events.listenerCount('cacheError') > 0) this.events.emit('cacheError', { layer: layer.name, index, operation, error })
  }

  /** Runs a call on layer `index` through its guard, timing it for metrics. */
  async #call<T>(index: number, operation: string, call: (layer: Store) => Promise<T>): Promise<T> {
    const guard = this.#guards[index] as LayerGuard
    if (this.#metrics === undefined) return guard.run(operation, call)
    const start = performance.now()
    try {
      return await guard.run(operation, call)
    } finally {
      this.#metrics.duration(guard.layer.name, operation, performance.now() - start)
    }
  }

  // ---- reads -------------------------------------------------------------------------------

  override async get<M extends Model>(model: M, lookup: Lookup<M>): Promise<Instance<M> | undefined> {
    const guard = this.#guards[0] as LayerGuard
    if (this.#misses !== undefined || this.#layers.length === 1 || !guard.layer.capabilities.inProcess || guard.pendingRepairs > 0) {
      return super.get(model, lookup)
    }
    // Fast path: an in-process first layer answers hits without the batch machinery.
    this.assertOpen('get')
    let value: Instance<M> | undefined
    try {
      value = await guard.layer.get(model, lookup)
    } catch (err) {
      if (isCallerError(err) || this.#throwCacheErrors) throw err
      // An in-process layer failing (e.g. a model it cannot decode): read below, as for any cache layer.
      this.#report(0, 'get', err)
      return super.get(model, lookup)
    }
    const stats = this.#stats[0] as LayerStats
    if (value !== undefined) {
      stats.hits++
      this.#metrics?.lookups(guard.layer.name, 'hit', 1)
      return value
    }
    stats.misses++
    this.#metrics?.lookups(guard.layer.name, 'miss', 1)
    const info = describeModel(model)
    const requests = [{ spec: keyForLookup(info, lookup, `${this.name} store get`), lookup: lookup as Record<string, unknown> }]
    const [entry] = await this.#readBelowFirst(info, requests, [0])
    return entry?.value as Instance<M> | undefined
  }

  protected async readMany(
    info: ModelInfo,
    requests: readonly LookupRequest[],
    options: GetEntriesOptions = {},
  ): Promise<(StoreEntry | undefined)[]> {
    if (options.stale === true) return this.#readStale(info, requests)
    let keys: string[] | undefined
    let out: (StoreEntry | undefined)[]
    let missing: number[]
    if (this.#misses !== undefined) {
      keys = requests.map((r) => encodeLookup(info, r.lookup, `${this.name} store get`))
      const now = this.#now.now()
      const asked = requests
        .map((_, i) => i)
        .filter((i) => ((this.#misses as LRUCache<string, number>).get(keys?.[i] as string) ?? 0) <= now)
      out = new Array(requests.length).fill(undefined)
      if (asked.length === 0) return out
      const first = await this.#ask(
        0,
        info.model,
        asked.map((i) => (requests[i] as LookupRequest).lookup),
      )
      missing = []
      asked.forEach((slot, a) => {
        const entry = first[a]
        if (entry === undefined) missing.push(slot)
        else out[slot] = entry
      })
    } else {
      out = await this.#ask(
        0,
        info.model,
        requests.map((r) => r.lookup),
      )
      missing = []
      for (let i = 0; i < out.length; i++) if (out[i] === undefined) missing.push(i)
    }
    if (missing.length === 0 || this.#layers.length === 1) return out
    const below = await this.#readBelowFirst(info, requests, missing, keys)
    missing.forEach((slot, m) => {
      out[slot] = below[m]
    })
    return out
  }

  /**
   * Reads the `missing` requests from the layers below the first, joining reads of the same key already
   * in flight (single-flight), and remembers what no layer had (negative caching).
   */
  async #readBelowFirst(
    info: ModelInfo,
    requests: readonly LookupRequest[],
    missing: readonly number[],
    allKeys?: readonly string[],
  ): Promise<(StoreEntry | undefined)[]> {
    const out: (StoreEntry | undefined)[] = new Array(missing.length).fill(undefined)
    const keys = missing.map((i) => allKeys?.[i] ?? encodeLookup(info, (requests[i] as LookupRequest).lookup, `${this.name} store get`))
    const mine: number[] = []
    const joined: [number, Promise<StoreEntry | undefined>][] = []
    keys.forEach((key, m) => {
      const flight = this.#flights.get(key)
      // Join only a read that no write has overtaken: one that began before a write may answer with
      // what the write replaced.
      if (flight === undefined || flight.seq !== this.#clock.seq) mine.push(m)
      else joined.push([m, flight.entry.then(copyEntry)])
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
      const seq = this.#clock.seq
      const batch = this.#readBelow(
        info,
        unique.map((m) => (requests[missing[m] as number] as LookupRequest).lookup),
      )
      unique.forEach((m, u) => {
        const key = keys[m] as string
        const flight = { entry: batch.then((entries) => entries[u]), seq }
        flight.entry.catch(() => {})
        this.#flights.set(key, flight)
        const done = () => {
          if (this.#flights.get(key) === flight) this.#flights.delete(key)
        }
        void batch.then(done, done)
      })
      const entries = await batch
      const used = new Set<number>()
      for (const m of mine) {
        const u = firstOf.get(keys[m] as string) as number
        const entry = entries[u]
        out[m] = used.has(u) ? copyEntry(entry) : entry
        used.add(u)
      }
    }
    for (const [m, flight] of joined) out[m] = await flight
    if (this.#misses !== undefined) {
      const until = this.#now.now() + this.#missMs
      out.forEach((entry, m) => {
        if (entry === undefined) this.#misses?.set(keys[m] as string, until)
      })
    }
    return out
  }

  /** Asks layer `index` for `lookups`; a failing cache layer answers with misses (or throws per policy). */
  async #ask(index: number, model: Model, lookups: readonly object[], options?: GetEntriesOptions): Promise<(StoreEntry | undefined)[]> {
    const guard = this.#guards[index] as LayerGuard
    const stats = this.#stats[index] as LayerStats
    const isLast = index === this.#layers.length - 1
    let entries: (StoreEntry | undefined)[]
    try {
      if (guard.pendingRepairs > 0 && !(await guard.repair())) throw Object.assign(new Error('repairs pending'), { skipped: true })
      entries = await this.#call(index, 'get', (layer) => layer.batchGetEntries(model, lookups as never, options))
    } catch (err) {
      if (isLast || this.#throwCacheErrors || isCallerError(err)) throw err
      this.#report(index, 'get', err)
      this.#metrics?.lookups(guard.layer.name, (err as { skipped?: boolean }).skipped === true ? 'skipped' : 'error', lookups.length)
      return new Array(lookups.length).fill(undefined)
    }
    let hits = 0
    for (const e of entries) if (e !== undefined) hits++
    stats.hits += hits
    stats.misses += entries.length - hits
    this.#metrics?.lookups(guard.layer.name, 'hit', hits)
    this.#metrics?.lookups(guard.layer.name, 'miss', entries.length - hits)
    return entries
  }

  /** Reads `lookups` from layers 1..n−1 and backfills the hits upward. */
  async #readBelow(info: ModelInfo, lookups: readonly object[]): Promise<(StoreEntry | undefined)[]> {
    const started = this.#clock.beginRead()
    let leased: { layer: number; lookups: object[] } | undefined
    try {
      const out: (StoreEntry | undefined)[] = new Array(lookups.length).fill(undefined)
      let pending = lookups.map((_, i) => i)
      for (let j = 1; j < this.#layers.length && pending.length > 0; j++) {
        let found: (StoreEntry | undefined)[]
        try {
          found = await this.#ask(
            j,
            info.model,
            pending.map((i) => lookups[i] as object),
          )
        } catch (err) {
          if (j !== this.#layers.length - 1 || !this.#serveStale || isCallerError(err)) throw err
          const stale = await this.#readStale(
            info,
            pending.map((i) => ({ spec: keyForLookup(info, lookups[i], 'get'), lookup: lookups[i] as Record<string, unknown> })),
          )
          if (stale.every((e) => e === undefined)) throw err
          pending.forEach((i, p) => {
            out[i] = stale[p]
          })
          return out
        }
        const hits: StoreEntry[] = []
        let still = collect(pending, found, out, hits)
        if (j === this.#leaseLayer && still.length > 0) {
          const { winners, waited } = await this.#lease(j, info, lookups, still, out, hits)
          if (winners.length > 0) leased = { layer: j, lookups: winners.map((i) => lookups[i] as object) }
          still = [...winners, ...waited]
        }
        if (hits.length > 0) await this.#backfill(j, hits, started)
        pending = still
      }
      return out
    } finally {
      this.#clock.endRead(started)
      if (leased !== undefined) {
        const { layer, lookups: held } = leased
        void this.#call(layer, 'lease', (l) => (l as unknown as LeaseCapable).releaseLeases(info.model, held as never)).catch(() => {})
      }
    }
  }

  /**
   * Cross-process single-flight at the lease layer: takes a lease on each missing lookup. Winners go on
   * to the layers below; the others poll the lease layer for the winner's backfill for up to
   * `leases.wait` ms, then go below too. Copies found while waiting are put in `out` and `hits`.
   */
  async #lease(
    j: number,
    info: ModelInfo,
    lookups: readonly object[],
    still: readonly number[],
    out: (StoreEntry | undefined)[],
    hits: StoreEntry[],
  ): Promise<{ winners: number[]; waited: number[] }> {
    const { wait, ttl } = this.#leases as { wait: number; ttl: number }
    let won: boolean[]
    try {
      won = await this.#call(j, 'lease', (l) =>
        (l as unknown as LeaseCapable).acquireLeases(info.model, still.map((i) => lookups[i]) as never, ttl),
      )
    } catch (err) {
      if (isCallerError(err)) throw err
      this.#report(j, 'get', err)
      return { winners: [...still], waited: [] }
    }
    let winners = still.filter((_, k) => won[k] === true)
    if (winners.length > 0) {
      // Another process may have backfilled and released its lease between our miss and our lease.
      const again = await this.#ask(
        j,
        info.model,
        winners.map((i) => lookups[i] as object),
      )
      const taken = winners
      winners = collect(winners, again, out, hits)
      const found = taken.filter((i) => !winners.includes(i))
      if (found.length > 0) {
        void this.#call(j, 'lease', (l) =>
          (l as unknown as LeaseCapable).releaseLeases(info.model, found.map((i) => lookups[i]) as never),
        ).catch(() => {})
      }
    }
    let waiting = still.filter((_, k) => won[k] !== true)
    const gaveUp: number[] = []
    const deadline = performance.now() + wait
    for (let delay = 5; waiting.length > 0 && performance.now() < deadline; delay = Math.min(delay * 2, 50)) {
      await new Promise((r) => setTimeout(r, delay))
      const found = await this.#ask(
        j,
        info.model,
        waiting.map((i) => lookups[i] as object),
      )
      const missed = collect(waiting, found, out, hits)
      // A released lease with no copy means the holder found nothing (or failed): stop waiting for it.
      let held: boolean[]
      try {
        held =
          missed.length === 0
            ? []
            : await this.#call(j, 'lease', (l) =>
                (l as unknown as LeaseCapable).leasesHeld(info.model, missed.map((i) => lookups[i]) as never),
              )
      } catch {
        held = missed.map(() => false)
      }
      waiting = missed.filter((_, k) => held[k] === true)
      gaveUp.push(...missed.filter((_, k) => held[k] !== true))
    }
    return { winners, waited: [...gaveUp, ...waiting] }
  }

  /** Expired copies still within the cache layers' grace, first layer first. */
  async #readStale(info: ModelInfo, requests: readonly LookupRequest[]): Promise<(StoreEntry | undefined)[]> {
    const out: (StoreEntry | undefined)[] = new Array(requests.length).fill(undefined)
    let pending = requests.map((_, i) => i)
    for (let j = 0; j < this.#layers.length - 1 && pending.length > 0; j++) {
      let found: (StoreEntry | undefined)[]
      try {
        found = await this.#call(j, 'get', (layer) =>
          layer.batchGetEntries(info.model, pending.map((i) => (requests[i] as LookupRequest).lookup) as never, { stale: true }),
        )
      } catch {
        continue
      }
      const still: number[] = []
      const now = Date.now()
      pending.forEach((i, p) => {
        const entry = found[p]
        if (entry === undefined) still.push(i)
        else {
          out[i] = entry
          if (entry.expiresAt !== undefined && entry.expiresAt < now)
            this.#metrics?.staleAge((this.#layers[j] as Store).name, now - entry.expiresAt)
        }
      })
      pending = still
    }
    return out
  }

  async #backfill(below: number, hits: StoreEntry[], started: number): Promise<void> {
    if (!this.#coherence) {
      await this.#writeBackfill(below, hits, false)
      return
    }
    const fresh: StoreEntry[] = []
    const keys: string[] = []
    for (const hit of hits) {
      const key = identityKey(hit.value)
      if (key !== undefined && this.#clock.writtenSince([key], started)) continue
      fresh.push(hit)
      if (key !== undefined) keys.push(key)
    }
    if (fresh.length === 0) return
    const work = this.#writeBackfill(below, fresh, true)
    // A write of these objects waits for this backfill to land before it updates the caches, so the
    // backfill can never land after (and over) the write.
    for (const key of keys) this.#backfilling.set(key, work)
    try {
      await work
    } finally {
      for (const key of keys) if (this.#backfilling.get(key) === work) this.#backfilling.delete(key)
    }
  }

  async #writeBackfill(below: number, fresh: StoreEntry[], guarded: boolean): Promise<void> {
    for (let i = below - 1; i >= 0; i--) {
      const guard = this.#guards[i] as LayerGuard
      if (guard.pendingRepairs > 0 && !(await guard.repair())) {
        ;(this.#stats[i] as LayerStats).skipped++
        continue
      }
      try {
        await this.#call(i, 'backfill', (layer) => layer.batchPutEntries(fresh, { backfill: guarded }))
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
      const key = identityKey(obj)
      const work = key === undefined ? undefined : this.#backfilling.get(key)
      if (work !== undefined) pending.add(work)
    }
    await Promise.allSettled(pending)
  }

  #markWritten(objs: readonly object[]): void {
    if (this.#misses !== undefined) for (const obj of objs) for (const key of objectKeys(obj)) this.#misses.delete(key)
    if (!this.#coherence) return
    this.#clock.mark(this.#clock.reading ? objs.flatMap((obj) => identityKey(obj) ?? []) : [])
  }

  // ---- writes ------------------------------------------------------------------------------

  protected async writeMany(items: readonly WriteItem[]): Promise<void> {
    const objs = items.map((i) => i.obj)
    this.#checkWritable(items)
    this.#markWritten(objs)
    const last = this.#layers.length - 1
    const entries = () => items.map((i) => ({ value: i.obj, expiresAt: i.expiresAt }))
    try {
      await (this.#layers[last] as Store).batchPutEntries(entries())
    } catch (err) {
      await this.#invalidateCaches(objs)
      throw err
    } finally {
      this.#markWritten(objs)
    }
    if (this.#coherence) await this.#settleBackfills(objs)
    await this.#eachCache('put', objs, (layer) => layer.batchPutEntries(entries()))
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
    if (this.#coherence) await this.#settleBackfills(objs)
    await this.#eachCache('delete', objs, (layer) => layer.batchDelete(objs))
  }

  /**
   * Runs `fn` in one transaction of the authoritative layer (SqlStore). `tx` is that layer's
   * transaction handle: its writes join the transaction and its reads see them, and it never touches
   * the caches. After COMMIT the cache layers are updated bottom-up with every write, in order
   * (puts stored, deletes removed); after a rollback they are left alone. Reads of other callers that
   * raced the transaction cannot backfill what it replaced.
   * @throws StockpyleError when the authoritative layer has no transactions; whatever `fn` throws (after rollback).
   */
  async transaction<R>(fn: (tx: TransactionHandle) => Promise<R>): Promise<R> {
    this.assertOpen('transaction')
    const last = this.#layers[this.#layers.length - 1] as Store & Partial<TransactionCapable>
    if (typeof last.transaction !== 'function') {
      throw new StockpyleError(`${this.name} store: its authoritative layer ${last.name} does not run transactions`)
    }
    return last.transaction(async (tx) => {
      tx.afterCommit(async (writes) => {
        for (const { operation, objects } of writes) {
          this.#markWritten(objects)
          if (this.#coherence) await this.#settleBackfills(objects)
          if (operation === 'put') {
            await this.#eachCache('put', objects, (layer) =>
              layer.batchPutEntries(objects.map((value) => ({ value, expiresAt: undefined }))),
            )
          } else {
            await this.#eachCache('delete', objects, (layer) => layer.batchDelete(objects))
          }
          this.#markWritten(objects)
        }
      })
      return fn(tx)
    })
  }

  /** Drops cached copies in every cache layer (the authoritative layer keeps its data). */
  protected override async invalidateMany(info: ModelInfo, requests: readonly LookupRequest[]): Promise<void> {
    const lookups = requests.map((r) => r.lookup)
    const keys = requests.map((r) => encodeLookup(info, r.lookup, `${this.name} store invalidate`))
    if (this.#misses !== undefined) for (const key of keys) this.#misses.delete(key)
    if (this.#coherence) this.#clock.mark(keys)
    let failure: unknown
    for (let i = this.#layers.length - 2; i >= 0; i--) {
      const guard = this.#guards[i] as LayerGuard
      const invalidate = guard.layer.batchInvalidate
      if (invalidate === undefined) continue
      try {
        await this.#call(i, 'invalidate', (layer) => invalidate.call(layer, info.model, lookups as never))
      } catch (err) {
        if (isCallerError(err)) throw err
        this.#report(i, 'invalidate', err)
        guard.rememberLookups(info.model, lookups)
        failure ??= err
      }
    }
    if (failure !== undefined && this.#throwCacheErrors) throw failure
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
      const guard = this.#guards[i] as LayerGuard
      try {
        if (guard.pendingRepairs > 0 && !(await guard.repair())) throw Object.assign(new Error('repairs pending'), { skipped: true })
        await this.#call(i, operation, write)
      } catch (err) {
        if (isCallerError(err)) throw err
        this.#report(i, operation, err)
        if (operation === 'put') await this.#invalidate(i, objs)
        else guard.remember(objs)
        failure ??= err
      }
    }
    if (failure !== undefined && this.#throwCacheErrors && (failure as { skipped?: boolean }).skipped !== true) throw failure
  }

  /** Deletes the objects from layer `index`; if that fails too, remembers them for repair. */
  async #invalidate(index: number, objs: readonly object[]): Promise<void> {
    const guard = this.#guards[index] as LayerGuard
    try {
      await this.#call(index, 'delete', (layer) => layer.batchDelete(objs))
    } catch (err) {
      this.#report(index, 'delete', err)
      guard.remember(objs)
    }
  }

  async #invalidateCaches(objs: readonly object[]): Promise<void> {
    for (let i = this.#layers.length - 2; i >= 0; i--) {
      try {
        await this.#invalidate(i, objs)
      } catch {
        // #invalidate reports and remembers; nothing else to do for a caller-input error here.
      }
    }
  }

  /**
   * After layer `index` was repaired, other processes may have copied its stale entries into their
   * upper layers meanwhile: invalidate the objects in this process's upper layers, whose memory
   * layers publish the invalidation to every other process.
   */
  async #invalidateAbove(index: number, model: Model, lookups: readonly object[]): Promise<void> {
    for (let i = index - 1; i >= 0; i--) {
      const guard = this.#guards[i] as LayerGuard
      const invalidate = guard.layer.batchInvalidate
      if (invalidate === undefined) continue
      try {
        await this.#call(i, 'invalidate', (layer) => invalidate.call(layer, model, lookups as never))
      } catch (err) {
        this.#report(i, 'invalidate', err)
        guard.rememberLookups(model, lookups)
      }
    }
  }

  protected override async release(): Promise<void> {
    for (const guard of this.#guards) guard.stop()
    const results = await Promise.allSettled(this.#layers.map((l) => l.close()))
    const failed = results.find((r) => r.status === 'rejected')
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason
  }
}

/** Puts each hit of `found` (answers for `slots`, in order) into `out` and `hits`; returns the slots that missed. */
function collect(
  slots: readonly number[],
  found: readonly (StoreEntry | undefined)[],
  out: (StoreEntry | undefined)[],
  hits: StoreEntry[],
): number[] {
  const missed: number[] = []
  slots.forEach((slot, k) => {
    const entry = found[k]
    if (entry === undefined) missed.push(slot)
    else {
      out[slot] = entry
      hits.push(entry)
    }
  })
  return missed
}

function missingOnlyPrimary(info: ModelInfo, obj: object): boolean {
  const source = obj as Record<string, unknown>
  if (!info.primary.fields.some((f) => source[f] === undefined || source[f] === null)) return false
  for (const spec of info.keys) {
    if (spec === info.primary) continue
    for (const f of spec.fields) if (source[f] === undefined || source[f] === null) return false
  }
  return true
}

/**
 * What identifies an object for the write clock and in-flight backfills: its record key (its own
 * model's primary key), the same whatever key it was read by and whatever its alternate keys became.
 * `undefined` while the database has not filled the primary key yet.
 */
function identityKey(obj: object): string | undefined {
  try {
    return keyOfObjectFor(describeModel((obj as { constructor: Model }).constructor).primary, obj)
  } catch {
    return undefined
  }
}

/** Every key of every model in an object's lineage (what negative caching must forget). */
function objectKeys(obj: object): string[] {
  try {
    const info = describeModel((obj as { constructor: Model }).constructor)
    const keys = keysOfObject(info, obj, true, 'chain')
    return [keys.record, ...keys.aliases]
  } catch {
    return []
  }
}

function copyEntry(entry: StoreEntry | undefined): StoreEntry | undefined {
  if (entry === undefined) return undefined
  const value = entry.encoded === undefined ? undefined : decodeRecord(entry.encoded)
  return {
    value: value ?? (decodeRecord(encodeRecord(entry.value, undefined)) as object),
    expiresAt: entry.expiresAt,
    encoded: entry.encoded,
  }
}
