/** Attributes attached to a measurement. */
export type MetricAttributes = Record<string, string | number | boolean>

/**
 * The part of an OpenTelemetry `Meter` (`@opentelemetry/api`) that stockpyle uses, typed structurally so
 * no OpenTelemetry package is required: pass `metrics.getMeter('stockpyle')`.
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
 * - `stockpyle.stale.age` (histogram, ms): how far past its expiry a copy served stale was.
 */
export class ChainMetrics {
  readonly #lookups
  readonly #duration
  readonly #errors
  readonly #staleAge

  constructor(meter: MeterLike) {
    this.#lookups = meter.createCounter('stockpyle.layer.lookups', { description: 'lookups answered or missed per layer' })
    this.#duration = meter.createHistogram('stockpyle.layer.duration', { description: 'duration of layer calls', unit: 'ms' })
    this.#errors = meter.createCounter('stockpyle.layer.errors', { description: 'failed layer calls' })
    this.#staleAge = meter.createHistogram('stockpyle.stale.age', { description: 'age past expiry of copies served stale', unit: 'ms' })
  }

  lookups(layer: string, result: 'hit' | 'miss' | 'error' | 'skipped', count: number): void {
    if (count > 0) this.#lookups.add(count, { layer, result })
  }
  duration(layer: string, operation: string, ms: number): void {
    this.#duration.record(ms, { layer, operation })
  }
  error(layer: string, operation: string): void {
    this.#errors.add(1, { layer, operation })
  }
  staleAge(layer: string, ms: number): void {
    this.#staleAge.record(ms, { layer })
  }
}
