import { settleHook } from '../core/call-hook.js'
import { InvalidOptionError, show } from '../core/errors.js'
import { messageOf } from '../core/unavailable-unless-ours.js'

/** Attributes attached to a measurement. */
export type MetricAttributes = Record<string, string | number | boolean>

/**
 * The part of an OpenTelemetry `Meter` (`@opentelemetry/api`) that stockpyle uses, typed structurally so
 * no OpenTelemetry package is required: pass `metrics.getMeter('stockpyle')`. Instruments whose `add` or
 * `record` throw, or return a promise that rejects (an `async` wrapper), never fail a call: the chain
 * warns once (`STOCKPYLE_METER`) and drops the measurement.
 */
export interface MeterLike {
  createCounter(
    name: string,
    options?: { description?: string; unit?: string },
  ): { add(value: number, attributes?: MetricAttributes): void }
  createHistogram(
    name: string,
    options?: { description?: string; unit?: string },
  ): { record(value: number, attributes?: MetricAttributes): void }
}

/**
 * Instruments a chain records into a {@link MeterLike}:
 * - `stockpyle.layer.lookups` (counter): lookups per layer, attribute `result` = `hit` | `miss` | `error` | `skipped`;
 * - `stockpyle.layer.duration` (histogram, ms): each layer call, attribute `operation`;
 * - `stockpyle.layer.errors` (counter): failed layer calls, attribute `operation`;
 * - `stockpyle.stale.age` (histogram, ms): how far past its expiry a copy served stale was;
 * - `stockpyle.stale.served` (counter): lookups answered from stale copies because the authoritative
 *   layer failed, attribute `error` = the failure's `code` (or its name).
 *
 * Every measurement carries `chain` = the chain's `name`, and `layer` = the layer's `name` (except
 * `stockpyle.stale.served`, which concerns the whole chain).
 */
export class ChainMetrics {
  readonly #lookups
  readonly #duration
  readonly #errors
  readonly #staleAge
  readonly #staleServed
  readonly #chain: string
  #warned = false
  /** Where a measurement's rejection goes (made once: measuring allocates no handler per call). */
  readonly #rejected = (err: unknown): void => this.#failed(err)

  /** @throws InvalidOptionError naming option `meter`, with the meter's error as `cause`, when it cannot create an instrument. */
  constructor(meter: MeterLike, chain: string) {
    this.#chain = chain
    const counter = (name: string, options: { description: string; unit?: string }) =>
      create(chain, 'createCounter', 'add', () => meter.createCounter(name, options))
    const histogram = (name: string, options: { description: string; unit?: string }) =>
      create(chain, 'createHistogram', 'record', () => meter.createHistogram(name, options))
    this.#lookups = counter('stockpyle.layer.lookups', { description: 'lookups answered or missed per layer' })
    this.#duration = histogram('stockpyle.layer.duration', { description: 'duration of layer calls', unit: 'ms' })
    this.#errors = counter('stockpyle.layer.errors', { description: 'failed layer calls' })
    this.#staleAge = histogram('stockpyle.stale.age', { description: 'age past expiry of copies served stale', unit: 'ms' })
    this.#staleServed = counter('stockpyle.stale.served', {
      description: 'lookups answered from stale copies because the authoritative layer failed',
    })
  }

  lookups(layer: string, result: 'hit' | 'miss' | 'error' | 'skipped', count: number): void {
    if (count === 0) return
    try {
      settleHook(this.#lookups.add(count, { chain: this.#chain, layer, result }), this.#rejected)
    } catch (err) {
      this.#failed(err)
    }
  }
  duration(layer: string, operation: string, ms: number): void {
    try {
      settleHook(this.#duration.record(ms, { chain: this.#chain, layer, operation }), this.#rejected)
    } catch (err) {
      this.#failed(err)
    }
  }
  error(layer: string, operation: string): void {
    try {
      settleHook(this.#errors.add(1, { chain: this.#chain, layer, operation }), this.#rejected)
    } catch (err) {
      this.#failed(err)
    }
  }
  staleAge(layer: string, ms: number): void {
    try {
      settleHook(this.#staleAge.record(ms, { chain: this.#chain, layer }), this.#rejected)
    } catch (err) {
      this.#failed(err)
    }
  }
  staleServed(count: number, error: unknown): void {
    const code = (error as { code?: unknown } | null)?.code
    const name = typeof code === 'string' ? code : error instanceof Error ? error.name : 'unknown'
    if (count === 0) return
    try {
      settleHook(this.#staleServed.add(count, { chain: this.#chain, error: name }), this.#rejected)
    } catch (err) {
      this.#failed(err)
    }
  }

  /** A measurement threw or its promise rejected: warned about once; it never fails the chain's call. */
  #failed(err: unknown): void {
    if (this.#warned) return
    this.#warned = true
    try {
      process.emitWarning(
        `stockpyle chain "${this.#chain}": its meter threw or rejected (such measurements are dropped): ${messageOf(err)}`,
        {
          type: 'StockpyleWarning',
          code: 'STOCKPYLE_METER',
        },
      )
    } catch {}
  }
}

/**
 * `make()`, an instrument the meter creates, checked to have `method` (`add` or `record`).
 * @throws InvalidOptionError naming option `meter` when the meter throws or returns no such instrument.
 */
function create<T extends object>(chain: string, factory: 'createCounter' | 'createHistogram', method: 'add' | 'record', make: () => T): T {
  let instrument: T
  try {
    instrument = make()
  } catch (err) {
    throw new InvalidOptionError(`${chain}: option \`meter\` could not create its instruments (${factory} threw): ${messageOf(err)}`, {
      cause: err,
    })
  }
  if (typeof (instrument as Record<string, unknown> | undefined)?.[method] !== 'function') {
    throw new InvalidOptionError(`${chain}: option \`meter\`'s ${factory} returned ${show(instrument)}, which has no ${method}() method`)
  }
  return instrument
}
