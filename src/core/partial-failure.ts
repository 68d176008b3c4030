import { StoreUnavailableError } from './errors.js'

/** What a {@link PartialFailureError} carries besides its message. */
export interface PartialFailureDetails<R> {
  /** Indices into the call's input (keys, lookups, objects or entries) that the failed nodes own; ascending, distinct. */
  readonly failed: readonly number[]
  /** One answer per input position for a read (`undefined` at failed positions and at misses); absent for writes. */
  readonly results?: readonly R[] | undefined
  /** The nodes that failed, as the store names them (`host:port`). */
  readonly nodes: readonly string[]
  /** The nodes' own errors. */
  readonly cause?: unknown
}

/**
 * Part of a batch failed: one or more nodes of a store that spreads keys over several servers (a
 * memcached pool, the masters of a Redis Cluster) did not answer, and the others did. `failed` names
 * the input positions the failed nodes own; every other position was served (reads: `results`) or
 * written. A chain treats the failed positions of a read as misses, and repairs only the failed
 * positions of a write — the rest of the layer keeps serving. Its `code` is `E_STORE_UNAVAILABLE`,
 * so code that handles an unavailable store handles this too.
 *
 * Stores with a single node never throw it: there, a failure is the whole store's.
 */
export class PartialFailureError<R = unknown> extends StoreUnavailableError {
  readonly failed: readonly number[]
  readonly results: readonly R[] | undefined
  readonly nodes: readonly string[]

  constructor(message: string, details: PartialFailureDetails<R>) {
    super(message, details.cause === undefined ? {} : { cause: details.cause })
    this.failed = details.failed
    this.results = details.results
    this.nodes = details.nodes
  }
}

/** True for a {@link PartialFailureError} (also one from another copy of the package). */
export function isPartialFailure(err: unknown): err is PartialFailureError {
  return (
    err instanceof PartialFailureError ||
    (err instanceof Error && err.name === 'PartialFailureError' && Array.isArray((err as { failed?: unknown }).failed))
  )
}
