import { type CircuitBreakerPolicy, ConsecutiveBreaker, circuitBreaker, handleWhen, isBrokenCircuitError } from 'cockatiel'
import type { Store } from '../contracts/base-store.js'
import { detach } from '../core/detach.js'
import { isCallerError, LayerSkippedError, StoreUnavailableError } from '../core/errors.js'
import type { Model } from '../core/model.js'
import { describeObject } from '../core/registry.js'
import { withTimeout } from '../core/with-timeout.js'

/** Circuit breaker settings of a cache layer. */
export interface BreakerOptions {
  /** Consecutive failures that open the circuit. Default 1: a frozen server costs callers the timeout once. */
  failures?: number
  /** Milliseconds an open circuit skips the layer before one call probes it again. Default 1000. */
  halfOpenAfter?: number
}

/** The most objects remembered per layer for repair; beyond it the oldest are dropped (reported). */
export const MAX_PENDING_REPAIRS = 100_000

/**
 * Guards one cache layer of a chain: a per-call timeout and a circuit breaker (cockatiel's), and a
 * repair list of objects whose copy in this layer may be stale because a write or an invalidation of
 * them failed or was skipped. While repairs are pending the layer is not read; each use first replays
 * them (as invalidations) and only a clean layer answers.
 */
export class LayerGuard {
  readonly layer: Store
  readonly #breaker: CircuitBreakerPolicy | undefined
  readonly #timeoutMs: number | undefined
  readonly #pending = new Map<string, { model: Model; lookup: Record<string, unknown>; obj: object | undefined }>()
  /** Called when repairs are dropped for lack of room. */
  onOverflow: (dropped: number) => void = () => {}
  /** Called after repairs of these lookups were applied to the layer (the layers above may hold copies read from it meanwhile). */
  onRepaired: (model: Model, lookups: readonly object[]) => Promise<void> = async () => {}
  /** Called with each failure of a repair attempt (the repairs stay pending and are retried). */
  onFailure: (err: unknown) => void = () => {}
  /** Called with the duration in ms of each repair call (set by a metered chain). */
  onRepairTimed: ((ms: number) => void) | undefined
  #timer: NodeJS.Timeout | undefined
  readonly #retryMs: number

  constructor(layer: Store, options: { timeout?: number | undefined; breaker?: BreakerOptions | false | undefined }) {
    this.layer = layer
    this.#timeoutMs = options.timeout
    this.#retryMs = options.breaker === false ? 1000 : (options.breaker?.halfOpenAfter ?? 1000)
    if (options.breaker !== false) {
      const b = options.breaker ?? {}
      this.#breaker = circuitBreaker(
        handleWhen((err) => !isCallerError(err)),
        { halfOpenAfter: b.halfOpenAfter ?? 1000, breaker: new ConsecutiveBreaker(b.failures ?? 1) },
      )
    }
  }

  /** Whether the breaker currently skips the layer. */
  get open(): boolean {
    return this.#breaker !== undefined && this.#breaker.state !== 0 && this.#breaker.state !== 2
  }

  /** Objects awaiting repair in this layer. */
  get pendingRepairs(): number {
    return this.#pending.size
  }

  /**
   * Runs `call` against the layer under the timeout and breaker. Rejects with the layer's error, or a
   * StoreUnavailableError for a timeout, or a LayerSkippedError while the circuit is open.
   */
  async run<T>(operation: string, call: (layer: Store) => Promise<T>): Promise<T> {
    const timed = this.#timeoutMs === undefined ? () => call(this.layer) : () => this.#timed(operation, call)
    if (this.#breaker === undefined) return timed()
    try {
      return await this.#breaker.execute(timed)
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

  /** Remembers objects whose copy in this layer may be stale. */
  remember(objs: readonly object[]): void {
    for (const obj of objs) this.#add(obj, undefined, undefined)
  }

  /** Remembers lookups whose copy in this layer may be stale. */
  rememberLookups(model: Model, lookups: readonly object[]): void {
    for (const lookup of lookups) this.#add(undefined, model, lookup as Record<string, unknown>)
  }

  #add(obj: object | undefined, model: Model | undefined, lookup: Record<string, unknown> | undefined): void {
    let m = model
    let l = lookup
    if (obj !== undefined) {
      try {
        const info = describeObject(obj)
        m = info.model
        l = Object.fromEntries(info.primary.fields.map((f) => [f, (obj as Record<string, unknown>)[f]]))
      } catch {
        return
      }
    }
    if (m === undefined || l === undefined) return
    const key = `${(m as { name?: string }).name}\u0000${JSON.stringify(l, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))}`
    this.#pending.delete(key)
    this.#pending.set(key, { model: m, lookup: l, obj })
    this.#schedule()
    if (this.#pending.size > MAX_PENDING_REPAIRS) {
      let dropped = 0
      for (const k of this.#pending.keys()) {
        if (this.#pending.size <= MAX_PENDING_REPAIRS) break
        this.#pending.delete(k)
        dropped++
      }
      this.onOverflow(dropped)
    }
  }

  /**
   * Replays pending repairs. Resolves `true` when the layer is clean (nothing pending), `false` when the
   * repairs could not be applied yet (the layer must then not be read).
   */
  async repair(): Promise<boolean> {
    if (this.#pending.size === 0) return true
    if (this.#repairing !== undefined) return this.#repairing
    this.#repairing = this.#repair()
    try {
      return await this.#repairing
    } finally {
      this.#repairing = undefined
    }
  }

  #repairing: Promise<boolean> | undefined

  /** Retries pending repairs in the background until none is left, so a layer no caller touches is repaired too. */
  #schedule(): void {
    if (this.#timer !== undefined) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      // Fire-and-forget on purpose: nobody waits for a background repair; failures are reported.
      detach(
        this.repair().then((clean) => {
          if (!clean) this.#schedule()
        }),
        (err) => this.onFailure(err),
      )
    }, this.#retryMs)
    this.#timer.unref()
  }

  /** Stops background repairs (the chain is closing). */
  stop(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#pending.clear()
  }

  async #repair(): Promise<boolean> {
    const batch = [...this.#pending.entries()]
    const byModel = new Map<Model, typeof batch>()
    for (const entry of batch) {
      const list = byModel.get(entry[1].model)
      if (list === undefined) byModel.set(entry[1].model, [entry])
      else list.push(entry)
    }
    try {
      for (const [model, entries] of byModel) {
        const invalidate = this.layer.batchInvalidate
        const started = this.onRepairTimed === undefined ? 0 : performance.now()
        try {
          if (invalidate !== undefined) {
            await this.run('repair', (l) => invalidate.call(l, model, entries.map((e) => e[1].lookup) as never))
          } else {
            const objs = entries.flatMap((e) => (e[1].obj === undefined ? [] : [e[1].obj]))
            await this.run('repair', (l) => l.batchDelete(objs))
          }
        } finally {
          this.onRepairTimed?.(performance.now() - started)
        }
        for (const [key, value] of entries) if (this.#pending.get(key) === value) this.#pending.delete(key)
        await this.onRepaired(
          model,
          entries.map((e) => e[1].lookup),
        ).catch((err: unknown) => this.onFailure(err))
      }
    } catch (err) {
      this.onFailure(err)
      return false
    }
    return this.#pending.size === 0
  }
}
