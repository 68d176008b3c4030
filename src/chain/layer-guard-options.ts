import type { Model } from '../core/model.js'

/** Circuit breaker settings of a cache layer. */
export interface BreakerOptions {
  /** Consecutive failures that open the circuit. Default 1: a frozen server costs callers the timeout once. */
  failures?: number | undefined
  /** Milliseconds an open circuit skips the layer before one call probes it again. Default 1000. */
  halfOpenAfter?: number | undefined
}

/** The breaker's settings when none are given (see {@link BreakerOptions}). */
export const DEFAULT_BREAKER = { failures: 1, halfOpenAfter: 1000 } as const

/**
 * The most repairs remembered per layer by default. Past it the layer is fenced: its reads are skipped
 * and the layer is cleared (its `clear()`) instead of being repaired key by key.
 */
export const MAX_PENDING_REPAIRS = 100_000

/**
 * Milliseconds `close()` gives each layer's last drain of its pending repairs when the chain has no
 * `timeout` (with one, that is the bound). A layer that does not answer within it keeps them.
 */
export const CLOSE_REPAIR_MS = 1000

/** Repairs sent to the layer per call while draining: the cost of a drain step never grows with the backlog. */
export const REPAIR_BATCH = 1000

/** One object or lookup whose copy in the layer may be stale. */
export interface Repair {
  readonly model: Model
  readonly lookup: Record<string, unknown>
  /** Kept only for a layer without `batchInvalidate` (repaired by `batchDelete`). */
  readonly obj: object | undefined
  /** The canonical keys whose reads this repair blocks. */
  readonly blocks: readonly string[]
  /** When it was remembered (a counter): a clear that started later covers it. */
  readonly seq: number
  /** When it was remembered, ms since the epoch: the store's tombstone need not outlast its lifetime from then. */
  readonly at: number
}

/** Options of {@link LayerGuard}. */
export interface LayerGuardOptions {
  /** Milliseconds a call may take; none by default. */
  timeout?: number | undefined
  /** The layer's circuit breaker; `false` for none. */
  breaker?: BreakerOptions | false | undefined
  /** Most repairs remembered before the layer is fenced and cleared. Default {@link MAX_PENDING_REPAIRS}. */
  maxPendingRepairs?: number | undefined
}
