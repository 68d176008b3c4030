import { type CircuitBreakerPolicy, ConsecutiveBreaker, circuitBreaker, handleWhen, isBrokenCircuitError } from 'cockatiel'
import type { Store, StoreEntry } from '../contracts/base-store.js'
import { detach } from '../core/detach.js'
import { isCallerError, isStockpyleError, LayerSkippedError, StoreUnavailableError } from '../core/errors.js'
import type { Model } from '../core/model.js'
import { isPartialFailure } from '../core/partial-failure.js'
import { withTimeout } from '../core/with-timeout.js'

import { DEFAULT_BREAKER, type LayerGuardOptions, MAX_PENDING_REPAIRS, REPAIR_BATCH, type Repair } from './layer-guard-options.js'
import { RepairList } from './repair-list.js'

export { type BreakerOptions, CLOSE_REPAIR_MS, type LayerGuardOptions, MAX_PENDING_REPAIRS, REPAIR_BATCH } from './layer-guard-options.js'

/** What {@link LayerGuard.drainBeforeClose} left: repairs still pending, a fence not cleared, and the last failure. */
export interface RepairsLeft {
  readonly pending: number
  readonly fenced: boolean
  readonly error: unknown
}

/**
 * Guards one cache layer of a chain.
 *
 * - **Timeout and breaker** (cockatiel) for the whole layer. A `PartialFailureError` — some nodes of a
 *   memcached pool or Redis Cluster failed, the others answered — is not the layer's failure: the
 *   store keeps each node's health itself, and the breaker only counts failures of the whole layer.
 *   Nor is a `CorruptEntryError`: the layer answered, with bytes that are not an entry (another
 *   program's value under the prefix), which its store replaced by a tombstone.
 * - **Repairs, per key.** An object or lookup whose copy in the layer may be stale (a write or
 *   invalidation of it failed or was skipped) is remembered; until it is repaired, hits on any of
 *   its keys are dropped ({@link filter}), and every other key is served as usual.
 * - **Draining in the background**, {@link REPAIR_BATCH} repairs per call, next batch as soon as one
 *   succeeds, back off after a failure. No caller waits for it, so the cost of an operation does not
 *   grow with the backlog. Failed positions of a partial failure stay pending (moved to the back).
 * - **Bounded.** Past `maxPendingRepairs` the individual repairs are dropped and the layer is fenced:
 *   its reads are skipped until `clear()` of the layer succeeded (retried in the background); repairs
 *   remembered after the clear began stay pending one by one. A layer without `clear()` stays fenced.
 * - **Closing** ({@link drainBeforeClose}): one last drain, bounded in time, before the layer closes.
 */
export class LayerGuard {
  readonly layer: Store
  readonly #breaker: CircuitBreakerPolicy | undefined
  readonly #timeoutMs: number | undefined
  readonly #max: number
  readonly #list: RepairList
  /** Bumped each time repairs were applied (or the layer cleared): see {@link readStarted}. */
  #repairs = 0
  #fenced = false
  #timer: NodeJS.Timeout | undefined
  #draining: Promise<boolean> | undefined
  #stopped = false
  /** While the chain closes: the last drain's last failure. */
  #closing: { error: unknown } | undefined
  readonly #retryMs: number
  /** Called when the bound was passed and the layer fenced (`dropped` repairs replaced by a clear). */
  onOverflow: (dropped: number) => void = () => {}
  /** Called with each failure of a repair attempt or a clear (the repairs stay pending and are retried). */
  onFailure: (err: unknown) => void = () => {}
  /** Called after repairs of these lookups were applied to the layer (the layers above may hold copies read from it meanwhile). */
  onRepaired: (model: Model, lookups: readonly object[]) => Promise<void> = async () => {}
  /** Called with the duration in ms of each repair call (set by a metered chain). */
  onRepairTimed: ((ms: number) => void) | undefined

  constructor(layer: Store, options: LayerGuardOptions) {
    this.layer = layer
    this.#timeoutMs = options.timeout
    this.#max = options.maxPendingRepairs ?? MAX_PENDING_REPAIRS
    this.#list = new RepairList(layer.batchInvalidate === undefined)
    this.#retryMs =
      options.breaker === false ? DEFAULT_BREAKER.halfOpenAfter : (options.breaker?.halfOpenAfter ?? DEFAULT_BREAKER.halfOpenAfter)
    if (options.breaker !== false) {
      const b = options.breaker ?? {}
      this.#breaker = circuitBreaker(
        handleWhen((err) => !isCallerError(err) && !isPartialFailure(err) && !isStockpyleError(err, 'E_CORRUPT_ENTRY')),
        {
          halfOpenAfter: b.halfOpenAfter ?? DEFAULT_BREAKER.halfOpenAfter,
          breaker: new ConsecutiveBreaker(b.failures ?? DEFAULT_BREAKER.failures),
        },
      )
    }
  }

  /** Whether the breaker currently skips the layer. */
  get open(): boolean {
    return this.#breaker !== undefined && this.#breaker.state !== 0 && this.#breaker.state !== 2
  }

  /** Objects and lookups awaiting repair in this layer. */
  get pendingRepairs(): number {
    return this.#list.size
  }

  /** True while the layer is fenced after too many repairs: it must not be read until its clear succeeded. */
  get fenced(): boolean {
    return this.#fenced
  }

  /** True when hits may need {@link filter}ing: some keys await repair. */
  get filtering(): boolean {
    return this.#list.blocking
  }

  /**
   * A token to take before reading the layer and hand to {@link filter} with the answer. A read sent
   * before a repair landed may answer with the copy the repair removed after its key was unblocked;
   * the token tells `filter` that repairs landed meanwhile.
   */
  readStarted(): number {
    return this.#repairs
  }

  /**
   * True when {@link run} would call the layer as it is: no timeout, no breaker, and no repair waiting
   * for the layer to answer again. A call may then be made without the guard, even synchronously.
   */
  get direct(): boolean {
    return this.#breaker === undefined && this.#timeoutMs === undefined && !(this.#waiting && this.#layerFailed)
  }

  /**
   * Runs `call` against the layer under the timeout and breaker. Rejects with the layer's error, or a
   * StoreUnavailableError for a timeout, or a LayerSkippedError while the circuit is open.
   */
  run<T>(operation: string, call: (layer: Store) => Promise<T>): Promise<T> {
    // No timeout, no breaker and no repair waiting for the layer to answer again (an in-process
    // layer, usually): the call itself, without a promise of the guard's own.
    if (this.direct) {
      try {
        return call(this.layer)
      } catch (err) {
        return Promise.reject(err)
      }
    }
    return this.#run(operation, call)
  }

  async #run<T>(operation: string, call: (layer: Store) => Promise<T>): Promise<T> {
    const timed = this.#timeoutMs === undefined ? () => call(this.layer) : () => this.#timed(operation, call)
    try {
      const result = this.#breaker === undefined ? await timed() : await this.#breaker.execute(timed)
      // The layer answers again: drain now rather than at the next retry.
      if (this.#waiting && this.#layerFailed && operation !== 'repair' && operation !== 'clear') this.#nudge()
      return result
    } catch (err) {
      if (isBrokenCircuitError(err)) {
        throw new LayerSkippedError(
          `${this.layer.name} store is skipped: its circuit is open after failures (${operation})`,
          'circuit-open',
          { cause: err },
        )
      }
      throw err
    }
  }

  /** The call, or a StoreUnavailableError once the timeout passes (the call itself is left to finish). */
  #timed<T>(operation: string, call: (layer: Store) => Promise<T>): Promise<T> {
    return withTimeout(
      call(this.layer),
      this.#timeoutMs as number,
      () => new StoreUnavailableError(`${this.layer.name} store did not answer ${operation} within ${this.#timeoutMs} ms`),
    )
  }

  /**
   * Drops, in place, the hits of `entries` that a pending repair concerns (any key of the object is
   * blocked) — all of them when repairs landed while the read was in flight (`started`, from
   * {@link readStarted}, is then out of date); returns how many were dropped. Costs nothing while no
   * repair is pending or landing.
   */
  filter(entries: (StoreEntry | undefined)[], started: number): number {
    const raced = started !== this.#repairs
    if (!raced && !this.#list.blocking) return 0
    let dropped = 0
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]
      if (entry !== undefined && (raced || this.#list.blocks(entry.value))) {
        entries[i] = undefined
        dropped++
      }
    }
    return dropped
  }

  /** Remembers objects whose copy in this layer may be stale. */
  remember(objs: readonly object[]): void {
    this.#list.addObjects(objs)
    this.#afterAdd()
  }

  /** Remembers lookups whose copy in this layer may be stale (each blocks reads of its own key only). */
  rememberLookups(model: Model, lookups: readonly object[]): void {
    this.#list.addLookups(model, lookups)
    this.#afterAdd()
  }

  #afterAdd(): void {
    if (this.#list.size > this.#max) {
      const dropped = this.#list.size
      this.#list.clear()
      this.#fenced = true
      this.onOverflow(dropped)
    }
    this.#schedule(0)
  }

  /**
   * Runs one drain step now (or joins the one running). Resolves `true` when the layer is clean —
   * nothing pending, not fenced.
   */
  async repair(): Promise<boolean> {
    if (this.#list.size === 0 && !this.#fenced) return true
    await this.#drainStep()
    return this.#list.size === 0 && !this.#fenced
  }

  /** The drain step running, or a new one: resolves whether it made progress. */
  #drainStep(): Promise<boolean> {
    this.#draining ??= this.#step().finally(() => {
      this.#draining = undefined
    })
    return this.#draining
  }

  /** Drains in the background: the next step at once after progress, after `retryMs` after a failure. */
  #schedule(delay: number): void {
    if (this.#timer !== undefined || this.#stopped) return
    this.#waiting = delay > 0
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#waiting = false
      // Fire-and-forget on purpose (failures are reported); rescheduled also after a report that threw.
      const again = () => this.#schedule(this.#progressed ? 0 : this.#retryMs)
      detach(
        this.repair().finally(() => (this.#list.size > 0 || this.#fenced) && again()),
        (err) => this.onFailure(err),
      )
    }, delay)
    this.#timer.unref()
  }

  #progressed = false
  /** The last drain step failed for the whole layer (not only some nodes): a call that succeeds means it is back. */
  #layerFailed = false
  /** The next drain step waits out a retry delay after a failure. */
  #waiting = false

  #nudge(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#schedule(0)
  }

  /**
   * The chain is closing: stops the background drain, then makes one last attempt, within `ms`
   * milliseconds in all, to apply what is pending — the clear of a fenced layer, then batches of
   * repairs one after another while they succeed; the first failure ends it. Its calls go to the layer
   * past the breaker and the chain's timeout (a circuit opened by an outage may hide a layer that is
   * back); a step already running is waited for. Whatever is unfinished after `ms` is given up. Its failures are not reported here:
   * the caller reports what is left. Resolves at once when nothing is pending; never rejects.
   */
  async drainBeforeClose(ms: number): Promise<RepairsLeft> {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    if (this.#list.size === 0 && !this.#fenced) return { pending: 0, fenced: false, error: undefined }
    const closing: { error: unknown } = { error: undefined }
    this.#closing = closing
    let timer: NodeJS.Timeout | undefined
    let expired = false
    // (one turn late, as every deadline: a reply that came in while the event loop was blocked wins)
    const deadline = new Promise<false>((resolve) => {
      timer = setTimeout(() => {
        setImmediate(() => {
          expired = true
          resolve(false)
        })
      }, ms)
    })
    try {
      // (#drainStep never rejects; a step cut short by the deadline is left to finish)
      while ((this.#list.size > 0 || this.#fenced) && !expired && (await Promise.race([this.#drainStep(), deadline]))) {}
    } finally {
      clearTimeout(timer)
    }
    if (expired) closing.error = new StoreUnavailableError(`${this.layer.name} store did not finish its last repairs in time`)
    return { pending: this.#list.size, fenced: this.#fenced, error: closing.error }
  }

  /** Stops background repairs and forgets them (the chain is closing). */
  stop(): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#list.clear()
  }

  /** A repair or clear failed: reported, or, while the chain closes, kept for {@link drainBeforeClose}'s report. */
  #failed(err: unknown): void {
    if (this.#closing === undefined) this.onFailure(err)
    else this.#closing.error = err
  }

  /** A repair or clear call: under the guard, or while the chain closes straight to the layer (see {@link drainBeforeClose}). */
  #send(operation: string, call: (layer: Store) => Promise<unknown>): Promise<unknown> {
    if (this.#closing === undefined) return this.run(operation, call)
    try {
      return call(this.layer)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** One step: the clear of a fenced layer, else up to REPAIR_BATCH repairs. Never rejects. */
  async #step(): Promise<boolean> {
    this.#progressed = false
    this.#layerFailed = false
    try {
      if (this.#fenced) await this.#clear()
      else await this.#repairBatch()
    } catch (err) {
      this.#layerFailed = !isPartialFailure(err)
      this.#failed(err)
    }
    return this.#progressed
  }

  async #clear(): Promise<void> {
    const clear = (this.layer as { clear?: () => unknown }).clear
    if (typeof clear !== 'function') return
    const started = this.#list.seq
    await this.#send('clear', async (layer) => {
      await clear.call(layer)
    })
    // Repairs remembered before the clear began are covered by it.
    this.#list.dropUpTo(started)
    this.#repairs++
    this.#fenced = false
    this.#progressed = true
  }

  async #repairBatch(): Promise<void> {
    const batch = this.#list.first(REPAIR_BATCH)
    const byModel = new Map<Model, [string, Repair][]>()
    for (const entry of batch) {
      const list = byModel.get(entry[1].model)
      if (list === undefined) byModel.set(entry[1].model, [entry])
      else list.push(entry)
    }
    for (const [model, entries] of byModel) {
      let failed = new Set<number>()
      try {
        const invalidate = this.layer.batchInvalidate
        const started = this.onRepairTimed === undefined ? 0 : performance.now()
        try {
          if (invalidate !== undefined) {
            let changedAt = 0
            for (const [, repair] of entries) changedAt = Math.max(changedAt, repair.at)
            const lookups = entries.map((e) => e[1].lookup)
            await this.#send('repair', (l) => invalidate.call(l, model, lookups as never, { changedAt }))
          } else {
            const objs = entries.flatMap((e) => (e[1].obj === undefined ? [] : [e[1].obj]))
            await this.#send('repair', (l) => l.batchDelete(objs))
          }
        } finally {
          this.onRepairTimed?.(performance.now() - started)
        }
      } catch (err) {
        if (!isPartialFailure(err) || this.layer.batchInvalidate === undefined) {
          // Nothing known to be applied: try the others later, these first.
          throw err
        }
        failed = new Set(err.failed)
        this.#failed(err)
      }
      const done: Record<string, unknown>[] = []
      if (failed.size < entries.length) this.#repairs++
      entries.forEach(([id, repair], i) => {
        // A failed one stays pending, but behind the others, so that one dead node does not stall the whole drain.
        if (this.#list.settle(id, repair, !failed.has(i)) && !failed.has(i)) done.push(repair.lookup)
      })
      if (done.length > 0) {
        this.#progressed = true
        await this.onRepaired(model, done).catch((err: unknown) => this.#failed(err))
      }
    }
  }
}
