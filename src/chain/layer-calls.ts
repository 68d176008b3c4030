import { type GetEntriesOptions, type LookupRequest, readRequests, type Store, type StoreEntry } from '../contracts/base-store.js'
import { isCallerError, isStockpyleError, LayerSkippedError, StoreUnavailableError } from '../core/errors.js'
import type { Model } from '../core/model.js'
import { isPartialFailure } from '../core/partial-failure.js'
import type { ModelInfo } from '../core/registry.js'
import { messageOf } from '../core/unavailable-unless-ours.js'
import type { ResolvedChainOptions } from './chain-options.js'
import { type AnsweredPart, answeredPart, asLayerError, checkAnswer } from './layer-answer.js'
import { CLOSE_REPAIR_MS, LayerGuard, type RepairsLeft } from './layer-guard.js'
import type { LayerObserver, LayerOperation } from './layer-observer.js'
import { BLAMED, namedCopy } from './named-copy.js'

/** The options of a cache layer's read without options of its own: it reports partial failures. */
const PARTIAL: GetEntriesOptions = Object.freeze({ partial: true })

/** A layer call that did not succeed, after the failure policy was applied. */
export interface LayerFailure {
  readonly index: number
  readonly operation: LayerOperation
  readonly error: unknown
  /** The call was not sent (circuit open or the layer fenced): no error of the layer itself. */
  readonly skipped: boolean
  /**
   * A backfill or a cache layer's put the layer refused for the values it was given (a value it cannot
   * store: the errors {@link isCallerError} names). A refused backfill has nothing to clean up (answered
   * before anything could land late); a refused put's old copy is invalidated like any failed put's.
   */
  readonly refused: boolean
  /**
   * For a partial failure (some nodes of the layer failed, see `PartialFailureError`): the positions
   * of the call's input the failed nodes own — only those need clean-up; for a write of entries some
   * of which the layer refused as too large (`putEntries` of ./put-entries.ts), those too. `undefined`:
   * all of them.
   */
  readonly failed: readonly number[] | undefined
}

/**
 * The one place where a chain calls its layers and decides what a failure means. Every call goes
 * through the layer's guard (timeout, circuit breaker, pending repairs) and is timed; every outcome is
 * classified as one of:
 * - an answer;
 * - a caller error ({@link isCallerError}: a bad lookup or value) — rethrown at once, never counted
 *   against the layer;
 * - a skip ({@link LayerSkippedError}: circuit open, repairs pending) — counted as `skipped`;
 * - a layer failure — counted as an error, measured, emitted as `cacheError` (cache layers).
 * Failures of cache layers are then absorbed (reads miss, writes are cleaned up by the caller of
 * {@link LayerCalls.write}) and raised to the caller only under `onCacheError: 'throw'` via
 * {@link LayerCalls.raise}; failures of the authoritative layer always reject the call.
 */
export class LayerCalls {
  readonly layers: readonly Store[]
  readonly guards: readonly LayerGuard[]
  readonly observer: LayerObserver
  /** Index of the authoritative (last) layer. */
  readonly last: number
  /**
   * The last layer when it is itself a chain (it has caches of its own: `clearCaches`), also behind a
   * decorator: invalidations, clears and stale reads reach its caches. `undefined` otherwise.
   */
  readonly nestedTail: (Store & { clearCaches(): Promise<void> }) | undefined
  /**
   * The copies this chain made of each layer error it named (see {@link blame}), by layer and operation
   * (`"2 put"`): one error met again by the same operation of the same layer is one copy.
   */
  readonly #copies = new WeakMap<object, Map<string, Error>>()
  readonly #throw: boolean
  readonly #name: string
  /** Milliseconds `close()` gives each layer's last drain of its repairs: the chain's `timeout`, else {@link CLOSE_REPAIR_MS}. */
  readonly #closeMs: number

  constructor(layers: readonly Store[], options: ResolvedChainOptions, observer: LayerObserver) {
    this.layers = layers
    this.observer = observer
    this.last = layers.length - 1
    const tail = layers[this.last] as Store & { clearCaches?: unknown }
    this.nestedTail = typeof tail.clearCaches === 'function' ? (tail as Store & { clearCaches(): Promise<void> }) : undefined
    this.#throw = options.throwCacheErrors
    this.#name = options.name
    this.#closeMs = options.timeout ?? CLOSE_REPAIR_MS
    this.guards = layers.map((layer, i) => {
      const local = i === this.last || layer.capabilities.inProcess
      const maxPendingRepairs = options.maxPendingRepairs
      const guard = new LayerGuard(
        layer,
        local ? { breaker: false, maxPendingRepairs } : { timeout: options.timeout, breaker: options.breaker, maxPendingRepairs },
      )
      guard.onFailure = (err) => {
        if (!isCallerError(err)) this.fail(i, 'repair', err)
      }
      if (observer.metered) guard.onRepairTimed = (ms) => observer.duration(i, 'repair', ms)
      return guard
    })
  }

  /** Runs `call` on layer `index` under its guard, timing it for metrics. Rejects with whatever failed. */
  run<T>(index: number, operation: LayerOperation, call: (layer: Store) => Promise<T>): Promise<T> {
    const guard = this.guards[index] as LayerGuard
    if (!this.observer.metered) return guard.run(operation, call)
    return this.#timed(index, operation, () => guard.run(operation, call))
  }

  /** Times `call` as a call of layer `index` (for calls that bypass the guard, like the fast path). */
  async #timed<T>(index: number, operation: string, call: () => Promise<T>): Promise<T> {
    const start = performance.now()
    try {
      return await call()
    } finally {
      this.observer.duration(index, operation, performance.now() - start)
    }
  }

  /** Like {@link run} without the guard: for in-process and authoritative calls that need only timing. */
  direct<T>(index: number, operation: LayerOperation, call: (layer: Store) => Promise<T>): Promise<T> {
    const layer = this.layers[index] as Store
    if (!this.observer.metered) return call(layer)
    return this.#timed(index, operation, () => call(layer))
  }

  /**
   * Rejects with LayerSkippedError while layer `index` is fenced (more repairs were pending than it
   * keeps, and its clear has not succeeded yet): it must not be read. Pending repairs of single keys
   * never stop a call: their keys' hits are dropped by {@link read}.
   */
  ready(index: number, operation: LayerOperation): void {
    const guard = this.guards[index] as LayerGuard
    if (guard.fenced) {
      throw new LayerSkippedError(
        `${guard.layer.name} store is skipped: more repairs were pending than it keeps, and it is being cleared (${operation})`,
        'repairs-pending',
      )
    }
  }

  /**
   * Applies the failure policy to `error` from layer `index`: a caller error is rethrown; anything
   * else is counted (skip or failure) and returned for clean-up and {@link raise}.
   */
  fail(index: number, operation: LayerOperation, thrown: unknown): LayerFailure {
    const error = asLayerError(thrown, (this.layers[index] as Store).name, operation)
    // A backfill's values come from the layer below, not from the caller: a cache layer that cannot
    // store one (a driver's object, a value too large for it) fails that copy, not the caller's read.
    // A cache layer refusing a put's value comes after the database took it (keys and encodability
    // were checked before): that copy fails, as a backfill's would, and is cleaned up like one.
    const refused = isCallerError(error)
    if (refused && operation !== 'backfill' && !(operation === 'put' && index < this.last)) throw this.blame(error, index, operation)
    const skipped = error instanceof LayerSkippedError
    if (skipped) this.observer.skipped(index)
    else this.observer.failed(index, operation, error)
    return { index, operation, error, skipped, refused, failed: isPartialFailure(error) ? error.failed : undefined }
  }

  /** Rejects with a cache layer's failure when the chain's policy is `onCacheError: 'throw'` (never for a skip). */
  raise(failure: LayerFailure | undefined): void {
    if (failure !== undefined && this.#throw && !failure.skipped) throw this.blame(failure.error, failure.index, failure.operation)
  }

  /**
   * The failure of the last (authoritative) layer, which fails the chain's call: counted in its
   * `errors` unless the caller caused it, and returned named after the chain and the layer (see
   * {@link blame}) for the caller to throw.
   */
  lastFailed(thrown: unknown, operation: LayerOperation): unknown {
    if (!isCallerError(thrown)) this.observer.failed(this.last, operation, thrown)
    return this.blame(thrown, this.last, operation)
  }

  /**
   * Names a stockpyle error that a layer raised and that goes on to the chain's caller after the chain
   * (the store the caller called) and the layer where it arose: a copy of it (same class, code, cause
   * and other fields) whose message is completed, once per chain. The layer's error itself is never
   * changed: a store may give one error object to several callers at once (a read joined by others, a
   * connection that failed to open), callers of other chains or of the store itself among them. An
   * error a nested chain named already (its layer was that chain) gets this chain's name in front:
   * `outer store get: inner store get: … (raised by its layer \`db\`)`. Other errors pass unchanged.
   */
  blame(thrown: unknown, index: number, operation: string): unknown {
    const error = asLayerError(thrown, (this.layers[index] as Store).name, operation)
    if (!isStockpyleError(error)) return error
    const named = Object.hasOwn(error, BLAMED) ? (error as unknown as Record<symbol, unknown>)[BLAMED] : undefined
    if (named !== undefined && (!Array.isArray(named) || named.includes(this))) return error
    // the same error met again by this chain in the same place (a doomed transaction's, every later
    // call's) is the same copy; one a store gave to calls of several operations (a connection that
    // failed to open) is one copy per operation, each naming its own
    let copies = this.#copies.get(error)
    const where = `${index} ${operation}`
    const copied = copies?.get(where)
    if (copied !== undefined) return copied
    const before = error.message
    // V8 formats `stack` when it is first read: read now, it holds the message the copy replaces.
    const stack = error.stack
    const layer = named === undefined ? ` (raised by its layer \`${(this.layers[index] as Store).name}\`)` : ''
    const copy = namedCopy(error, `${this.#name} store ${operation}: ${before}${layer}`, stack, [...(named ?? []), this])
    if (copies === undefined) this.#copies.set(error, (copies = new Map()))
    copies.set(where, copy)
    return copy
  }

  /**
   * Asks layer `index` for `lookups`. A cache layer that fails or is skipped answers with misses (or
   * rejects under `onCacheError: 'throw'`); when only some of its nodes failed, or some of its entries
   * were corrupt (a `CorruptEntryError` with `failed` and `results`), their lookups miss and the others'
   * answers stand. Hits on keys awaiting repair in the layer are dropped (misses). The
   * authoritative layer's failure rejects.
   */
  read(index: number, model: Model, lookups: readonly object[], options?: GetEntriesOptions): Promise<(StoreEntry | undefined)[]> {
    return this.#read(index, lookups.length, model, undefined, lookups, options)
  }

  /** {@link read} of requests the chain validated (see `readRequests`): the layer does not validate them again. */
  readRequests(
    index: number,
    info: ModelInfo,
    requests: readonly LookupRequest[],
    options?: GetEntriesOptions,
  ): Promise<(StoreEntry | undefined)[]> {
    return this.#read(index, requests.length, info.model, info, requests, options)
  }

  /** Reads `asked` (requests of `info`'s model when `info` is given, else lookups of `model`) from layer `index`. */
  async #read(
    index: number,
    count: number,
    model: Model,
    info: ModelInfo | undefined,
    asked: readonly object[],
    options: GetEntriesOptions | undefined,
  ): Promise<(StoreEntry | undefined)[]> {
    let entries: (StoreEntry | undefined)[]
    const guard = this.guards[index] as LayerGuard
    const started = guard.readStarted()
    let lost = 0
    try {
      let o = options
      if (index !== this.last) {
        this.ready(index, 'get')
        o = options === undefined ? PARTIAL : { ...options, partial: true }
      }
      // (a layer called as it is needs no closure: this runs for every layer a read reaches)
      entries = await (guard.direct && !this.observer.metered
        ? ask(guard.layer, model, info, asked, o)
        : this.run(index, 'get', (layer) => ask(layer, model, info, asked, o)))
      checkAnswer(entries, count, model, guard.layer.name)
    } catch (thrown) {
      if (index === this.last) {
        // (a caller error is no failure of the layer: its lookups were not lost to one)
        if (!isCallerError(thrown)) this.observer.lookupsLost(index, count, false)
        throw this.lastFailed(thrown, 'get')
      }
      // Some nodes failed, or some entries were corrupt: their lookups miss, the other answers stand —
      // if they are answers a store may give; otherwise the whole layer failed
      let err = thrown
      let partial: AnsweredPart | undefined
      try {
        partial = answeredPart(thrown, count, model, guard.layer.name)
      } catch (wrong) {
        err = wrong
      }
      const failure = this.fail(index, 'get', err)
      // (recorded before raise: under onCacheError 'throw' the call rejects, and the lookups were lost all the same)
      if (partial === undefined) {
        this.observer.lookupsLost(index, count, failure.skipped)
        this.raise(failure)
        return new Array(count).fill(undefined)
      }
      entries = partial.entries
      lost = partial.lost
      this.observer.lookupsLost(index, lost, false)
      if (this.#throw) {
        // the call rejects: what the other nodes answered is counted as answered first
        let hits = 0
        for (const e of entries) if (e !== undefined) hits++
        this.observer.looked(index, count - lost, hits)
        this.raise(failure)
      }
    }
    const blocked = guard.filter(entries, started)
    if (blocked > 0) {
      this.observer.skipped(index)
      this.observer.lookupsLost(index, blocked, true)
    }
    let hits = 0
    for (const e of entries) if (e !== undefined) hits++
    this.observer.looked(index, entries.length - lost - blocked, hits)
    return entries
  }

  /**
   * Runs a write (`put`, `delete`, `backfill`, `invalidate`) on cache layer `index` (also while repairs
   * are pending there: a write is never older than what they remove). Resolves to the failure (already
   * counted), or `undefined` when the write landed; a caller error rejects.
   */
  async write(index: number, operation: LayerOperation, call: (layer: Store) => Promise<void>): Promise<LayerFailure | undefined> {
    try {
      await this.run(index, operation, call)
      return undefined
    } catch (err) {
      return this.fail(index, operation, err)
    }
  }

  /**
   * A backfill of cache layer `index` done at once, for a layer that offers `backfillNow` and whose
   * guard would call it directly, with metrics off: the failure (already counted), or `undefined` when
   * the copies landed. `false`: the layer cannot be written at once; use {@link write}. A caller error
   * is thrown.
   */
  backfillNow(
    index: number,
    entries: readonly StoreEntry[],
    since: number | undefined,
    requests?: readonly (LookupRequest | undefined)[],
  ): LayerFailure | undefined | false {
    const layer = this.layers[index] as Store
    if (layer.backfillNow === undefined || this.observer.metered || !(this.guards[index] as LayerGuard).direct) return false
    try {
      layer.backfillNow(entries, since, requests)
      return undefined
    } catch (err) {
      return this.fail(index, 'backfill', err)
    }
  }

  /**
   * The chain is closing: every layer's pending repairs get one last drain, all layers at once, each
   * within the chain's `timeout` (default {@link CLOSE_REPAIR_MS}) — see `LayerGuard.drainBeforeClose`.
   * A layer left with repairs (or fenced) is reported as a failure of operation `repair` naming how
   * many, never silently dropped: the copies they were to remove stay until their lifetime ends.
   * Resolves, at once when nothing is pending, to the first such failure (for {@link raise}); never rejects.
   */
  async drainBeforeClose(): Promise<LayerFailure | undefined> {
    const left = await Promise.all(this.guards.map((guard) => guard.drainBeforeClose(this.#closeMs)))
    let first: LayerFailure | undefined
    this.guards.forEach((guard, i) => {
      // (counted again: an upper layer's repairs may have been added by a lower layer's last repairs)
      const still: RepairsLeft = { ...(left[i] as RepairsLeft), pending: guard.pendingRepairs, fenced: guard.fenced }
      if (still.pending > 0 || still.fenced) first ??= this.fail(i, 'repair', this.#abandoned(guard, still))
    })
    return first
  }

  /** The error naming what `close()` could not repair in a layer. */
  #abandoned(guard: LayerGuard, left: RepairsLeft): StoreUnavailableError {
    const what = [
      left.pending > 0 ? `${left.pending} ${left.pending === 1 ? 'repair was' : 'repairs were'} still pending` : '',
      left.fenced ? 'it was fenced (more repairs were pending than it keeps) and not yet cleared' : '',
    ]
    const why = left.error === undefined ? 'no time was left' : messageOf(left.error)
    return new StoreUnavailableError(
      `${guard.layer.name} store: ${what.filter((w) => w !== '').join(', and ')} when chain \`${this.#name}\` closed, and could not be applied within ${this.#closeMs} ms (${why}); the copies they were to remove stay in that layer until their lifetime ends`,
      left.error === undefined ? {} : { cause: left.error },
    )
  }

  /** Stops background repairs (the chain is closing). */
  stop(): void {
    for (const guard of this.guards) guard.stop()
  }
}

/** One read of a layer: validated requests (`info` given) or lookups. */
function ask(
  layer: Store,
  model: Model,
  info: ModelInfo | undefined,
  asked: readonly object[],
  options: GetEntriesOptions | undefined,
): Promise<(StoreEntry | undefined)[]> {
  return info === undefined
    ? layer.batchGetEntries(model, asked as never, options)
    : readRequests(layer, info, asked as LookupRequest[], options)
}
