import type { GetEntriesOptions, LookupRequest, Store, StoreEntry } from '../contracts/base-store.js'
import { requestKey } from '../contracts/key-value-reads.js'
import { isCallerError } from '../core/errors.js'
import { invalidationSequence } from '../core/invalidation-sequence.js'
import { encodeLookup, keyForLookup } from '../core/key-encoding.js'
import type { Clock } from '../core/lifetime.js'
import type { Instance, Lookup, Model } from '../core/model.js'
import { describeModelIn, type ModelInfo } from '../core/registry.js'
import type { Backfill, Hit } from './backfill.js'
import { copyEntry } from './copy-entry.js'
import { checkValue } from './layer-answer.js'
import type { LayerCalls } from './layer-calls.js'
import { collect, type Leases } from './leases.js'
import type { MissCache } from './miss-cache.js'
import { copyIntoScope } from './scope-copies.js'
import type { SingleFlight } from './single-flight.js'
import { readStale } from './stale-reads.js'

/** What the read path works with: the chain's parts. */
export interface ReadParts {
  readonly name: string
  readonly calls: LayerCalls
  readonly backfill: Backfill
  readonly flights: SingleFlight
  readonly misses: MissCache | undefined
  readonly leases: Leases | undefined
  readonly serveStale: boolean
  readonly clock: Clock
  /**
   * The first layer holds data per scope (`capabilities.scoped`: an AsyncLocalStore) and the chain
   * keeps its coherence protections: each caller that joins a read in flight (single-flight) copies
   * what it got into its own scope (see {@link copyIntoScope}). Computed once, with the chain.
   */
  readonly scopedFirst: boolean
}

/**
 * A chain's reads: the first layer, then (for what it missed) the layers below it with single-flight,
 * negative caching, leases and stale copies, and the backfill of what was found.
 */
export class ReadPath {
  readonly #p: ReadParts
  readonly #first: Store
  /** The operation named in a `get`'s errors. */
  readonly #getWhere: string

  constructor(parts: ReadParts) {
    this.#p = parts
    this.#first = parts.calls.layers[0] as Store
    this.#getWhere = `${parts.name} store get`
  }

  /** Whether `get` may take the fast path: an in-process first layer with nothing to repair, no negative caching. */
  get fast(): boolean {
    const { calls, misses } = this.#p
    const guard = calls.guards[0]
    return misses === undefined && calls.last > 0 && this.#first.capabilities.inProcess && !guard?.filtering && !guard?.fenced
  }

  /**
   * `get` through an in-process first layer: its hits skip the batch machinery, and a layer that
   * answers at once (`getNow`) is read without a promise of its own. Only when {@link fast} holds.
   */
  fastGet<M extends Model>(model: M, lookup: Lookup<M>): Promise<Instance<M> | undefined> {
    const { calls } = this.#p
    const getNow = this.#first.getNow
    if (getNow === undefined || calls.observer.metered) return this.#fastGet(model, lookup)
    let value: Instance<M> | undefined
    try {
      value = getNow.call(this.#first, model, lookup) as Instance<M> | undefined
      checkValue(value, model, this.#first.name)
    } catch (err) {
      return this.#firstFailed(model, lookup, err)
    }
    if (value === undefined) return this.#missedFirst(model, lookup, false)
    calls.observer.looked(0, 1, 1)
    return Promise.resolve(value)
  }

  async #fastGet<M extends Model>(model: M, lookup: Lookup<M>): Promise<Instance<M> | undefined> {
    const { calls } = this.#p
    let value: Instance<M> | undefined
    try {
      value = calls.observer.metered ? await calls.direct(0, 'get', (l) => l.get(model, lookup)) : await this.#first.get(model, lookup)
      checkValue(value, model, this.#first.name)
    } catch (err) {
      return this.#firstFailed(model, lookup, err)
    }
    if (value !== undefined) {
      calls.observer.looked(0, 1, 1)
      return value
    }
    return this.#missedFirst(model, lookup, false)
  }

  /**
   * The first layer's `get` failed: a caller error (or a class that is not a model) is rethrown in the
   * chain's name; any other failure is counted and reported (`cacheError`, or a rejection under
   * `onCacheError: 'throw'`), and the layers below are read, as for any cache layer.
   */
  async #firstFailed<M extends Model>(model: M, lookup: Lookup<M>, err: unknown): Promise<Instance<M> | undefined> {
    const { calls } = this.#p
    // The first layer validated the model and the lookup in its own name; the caller called the chain.
    const info = describeModelIn(model, this.#getWhere)
    if (isCallerError(err)) {
      encodeLookup(info, lookup, this.#getWhere)
      throw err
    }
    const failure = calls.fail(0, 'get', err)
    calls.observer.lookupsLost(0, 1, failure.skipped)
    calls.raise(failure)
    return this.#missedFirst(model, lookup, true)
  }

  /**
   * A `get` the first layer missed (or failed: `failed`): the layers below, as {@link readBelowFirst}
   * reads them for a batch — joined to a read of the key in flight, or read and backfilled — without
   * a batch's bookkeeping.
   */
  async #missedFirst<M extends Model>(model: M, lookup: Lookup<M>, failed: boolean): Promise<Instance<M> | undefined> {
    // (only the fast path comes here, which a chain with negative caching never takes: no miss to remember)
    const { calls, flights, backfill, name } = this.#p
    if (!failed) calls.observer.looked(0, 1, 0)
    const info = describeModelIn(model, this.#getWhere)
    const request: LookupRequest = {
      spec: keyForLookup(info, lookup, this.#getWhere),
      lookup: lookup as Record<string, unknown>,
      key: undefined,
    }
    const key = requestKey(name, info, request)
    const started = backfill.clock.seq
    const since = invalidationSequence()
    const flight = flights.begin(started, 1, since)
    const joined = flight.claim(key, 0)
    let entry: StoreEntry | undefined
    if (joined === undefined) {
      const read = this.#readBelow(info, [request], since)
      flight.start(read)
      entry = (await read)[0]
      // others joined: they copy from this entry later, so the caller gets a copy of its own
      if (flight.joined !== undefined) entry = copyEntry(entry)
    } else if (this.#p.scopedFirst) {
      // This caller's scope takes its copy; until then the write clock keeps the writes made since the
      // shared read began (it began at `started` and `since`: a read that a write or an invalidation
      // overtook is never joined).
      backfill.clock.beginRead()
      let found: StoreEntry | undefined
      try {
        found = await (joined as Promise<StoreEntry | undefined>)
      } catch (err) {
        backfill.clock.endRead(started)
        throw err
      }
      entry = (await copyIntoScope(backfill, [found], [request], started, since))[0]
    } else entry = copyEntry(await (joined as Promise<StoreEntry | undefined>))
    return entry?.value as Instance<M> | undefined
  }

  /** `batchGetEntries`: the first layer, then the layers below for what it missed. */
  async readMany(
    info: ModelInfo,
    requests: readonly LookupRequest[],
    options: GetEntriesOptions = {},
  ): Promise<(StoreEntry | undefined)[]> {
    const { calls, misses, name } = this.#p
    if (options.stale === true) return readStale(calls, this.#p.clock, info, requests)
    // Every key is computed here, so a value that cannot be a key is refused in the chain's name before
    // any layer is read; the layers reuse the keys (LookupRequest.key).
    for (let i = 0; i < requests.length; i++) requestKey(name, info, requests[i] as LookupRequest)
    let asked: number[] | undefined
    if (misses !== undefined) {
      asked = []
      for (let i = 0; i < requests.length; i++) if (!misses.has((requests[i] as LookupRequest).key as string)) asked.push(i)
    }
    const out: (StoreEntry | undefined)[] = new Array(requests.length).fill(undefined)
    if (asked?.length === 0) return out
    const slots = asked ?? requests.map((_, i) => i)
    const first = await calls.readRequests(0, info, asked === undefined ? requests : asked.map((i) => requests[i] as LookupRequest))
    // (arrays sized at once and trimmed: one grown by push reserves room for 16 more at each step)
    let missing: number[] | undefined
    let missed = 0
    for (let a = 0; a < slots.length; a++) {
      const entry = first[a]
      if (entry === undefined) (missing ??= new Array(slots.length - a))[missed++] = slots[a] as number
      else out[slots[a] as number] = entry
    }
    if (missing === undefined || calls.last === 0) return out
    missing.length = missed
    const below = await this.readBelowFirst(info, requests, missing)
    for (let m = 0; m < missing.length; m++) out[missing[m] as number] = below[m]
    return out
  }

  /**
   * Reads the `missing` requests from the layers below the first, joining reads of the same key already
   * in flight (single-flight), and remembers what no layer had (negative caching) unless a write
   * landed meanwhile.
   */
  async readBelowFirst(
    info: ModelInfo,
    requests: readonly LookupRequest[],
    missing: readonly number[],
  ): Promise<(StoreEntry | undefined)[]> {
    const { flights, backfill, misses, name } = this.#p
    const count = missing.length
    const keys: string[] = new Array(count)
    for (let m = 0; m < count; m++) {
      const i = missing[m] as number
      keys[m] = requestKey(name, info, requests[i] as LookupRequest)
    }
    // Each key is either joined to a read in flight, or read by this call (once, however often it repeats).
    const started = backfill.clock.seq
    const since = invalidationSequence()
    const flight = flights.begin(started, count, since)
    const slot: number[] = new Array(count)
    const reads: LookupRequest[] = new Array(count)
    let readCount = 0
    let joined: number[] | undefined
    let waits: Promise<StoreEntry | undefined>[] | undefined
    for (let m = 0; m < count; m++) {
      const outcome = flight.claim(keys[m] as string, readCount)
      if (outcome === undefined) {
        slot[m] = readCount
        reads[readCount++] = requests[missing[m] as number] as LookupRequest
      } else if (typeof outcome === 'number') slot[m] = outcome
      else {
        slot[m] = -1
        ;(joined ??= []).push(m)
        ;(waits ??= []).push(outcome)
      }
    }
    reads.length = readCount
    // This caller's scope takes the joined copies itself (below); until then the write clock keeps the
    // writes made since the shared reads began (at `started` and `since`: a read that a write or an
    // invalidation overtook is never joined).
    const scoped = waits !== undefined && this.#p.scopedFirst
    if (scoped) backfill.clock.beginRead()
    const read = readCount > 0 ? this.#readBelow(info, reads, since) : undefined
    if (read !== undefined) flight.start(read)
    let entries: readonly (StoreEntry | undefined)[] = []
    let shared: (StoreEntry | undefined)[] | undefined
    if (waits === undefined) entries = read === undefined ? [] : await read
    else {
      // Every read this call depends on is awaited before any outcome is looked at, so a rejection of
      // one (a failing database) never leaves the others without a handler.
      const settled = await Promise.allSettled(read === undefined ? waits : [read, ...waits])
      for (const s of settled) {
        if (s.status !== 'rejected') continue
        if (scoped) backfill.clock.endRead(started)
        throw s.reason
      }
      const values = settled.map((s) => (s as PromiseFulfilledResult<unknown>).value)
      if (read !== undefined) entries = values.shift() as (StoreEntry | undefined)[]
      shared = values as (StoreEntry | undefined)[]
    }
    const out: (StoreEntry | undefined)[] = new Array(count)
    // A copy read once for a key asked for twice: the second slot gets its own decoded copy.
    const used = reads.length + (joined?.length ?? 0) < count ? new Uint8Array(reads.length) : undefined
    for (let m = 0; m < count; m++) {
      const s = slot[m] as number
      if (s < 0) continue
      if (used === undefined) out[m] = entries[s]
      else if (used[s] === 1) out[m] = copyEntry(entries[s])
      else {
        out[m] = entries[s]
        used[s] = 1
      }
    }
    if (scoped) {
      const asked = (joined as number[]).map((m) => requests[missing[m] as number] as LookupRequest)
      const copies = await copyIntoScope(backfill, shared as (StoreEntry | undefined)[], asked, started, since)
      for (let j = 0; j < copies.length; j++) out[(joined as number[])[j] as number] = copies[j]
    } else if (joined !== undefined) for (let j = 0; j < joined.length; j++) out[joined[j] as number] = copyEntry(shared?.[j])
    // Positions of this read that others joined: they copy from these entries later, so this caller
    // gets copies of its own (a change to its objects would reach theirs).
    if (flight.joined !== undefined) {
      const others = new Set(flight.joined)
      for (let m = 0; m < count; m++) {
        const s = slot[m] as number
        if (s >= 0 && others.has(s) && out[m] === entries[s]) out[m] = copyEntry(entries[s])
      }
    }
    // A miss read before a write that has since landed may be what the write replaced: not remembered.
    if (misses !== undefined && !backfill.clock.anyWrittenSince(started)) misses.remember(keys.filter((_, m) => out[m] === undefined))
    return out
  }

  /**
   * Reads `requests` from layers 1..n−1 and backfills the hits upward, one batch per upper layer; `since`:
   * the invalidation sequence when the read began (`invalidationSequence()`, noted by the caller).
   */
  async #readBelow(info: ModelInfo, requests: readonly LookupRequest[], since: number): Promise<(StoreEntry | undefined)[]> {
    const { calls, backfill, leases, serveStale } = this.#p
    const started = backfill.clock.beginRead()
    let leased: object[] | undefined
    try {
      const out: (StoreEntry | undefined)[] = new Array(requests.length).fill(undefined)
      const hits: Hit[] = []
      let pending = requests.map((_, i) => i)
      for (let j = 1; j <= calls.last && pending.length > 0; j++) {
        let found: (StoreEntry | undefined)[]
        try {
          found = await calls.readRequests(
            j,
            info,
            // (after the first layer below, `pending` may be in another order: leases put their winners first)
            j === 1 ? requests : pending.map((i) => requests[i] as LookupRequest),
          )
        } catch (err) {
          if (j !== calls.last || !serveStale || isCallerError(err)) throw err
          const stale = await readStale(
            calls,
            this.#p.clock,
            info,
            pending.map((i) => requests[i] as LookupRequest),
          )
          // Every lookup the database did not answer needs a stale copy: one without would be a miss the
          // database never confirmed (and negative caching would remember it).
          const served = stale.filter((e) => e !== undefined).length
          if (served < stale.length) throw err
          calls.observer.staleServed(served, err)
          pending.forEach((i, p) => {
            out[i] = stale[p]
          })
          break
        }
        let still = collect(j, pending, found, out, hits, requests)
        if (leases !== undefined && j === leases.layer && still.length > 0) {
          const { winners, waited } = await leases.take(
            info.model,
            requests.map((r) => r.lookup),
            still,
            out,
            hits,
          )
          if (winners.length > 0) leased = winners.map((i) => (requests[i] as LookupRequest).lookup)
          still = [...winners, ...waited]
        }
        pending = still
      }
      if (hits.length > 0) {
        const copying = backfill.copy(hits, started, since)
        if (copying !== undefined) await copying
      }
      return out
    } finally {
      backfill.clock.endRead(started)
      if (leased !== undefined) leases?.release(info.model, leased)
    }
  }
}
