import { isStockpyleError, StockpyleError, show } from '../core/errors.js'
import { isPartialFailure, PartialFailureError } from '../core/partial-failure.js'
import type { StoreEntry } from './store.js'

/** Sorts numbers ascending (for `Array.prototype.sort`). */
export const ascending = (a: number, b: number): number => a - b

/** One PartialFailureError for a store call from the backend's (their `failed` already mapped to the call's positions). */
export function partialFailure(
  operation: string,
  failures: readonly PartialFailureError[],
  failed: number[],
  results?: (StoreEntry | undefined)[],
): PartialFailureError {
  const nodes = [...new Set(failures.flatMap((f) => f.nodes))]
  return new PartialFailureError(`${operation}: ${failed.length} item(s) on failed node(s) ${nodes.join(', ')}: ${failures[0]?.message}`, {
    failed,
    results,
    nodes,
    cause: failures.length === 1 ? failures[0] : new AggregateError(failures, `${operation} failures`),
  })
}

/**
 * The partial failures among the settled phases of a call and the items they failed: position `i` of
 * phase `p` belongs to item `owners[p][i]` (`-1` = none). Other rejections are left to the caller.
 */
export function settledFailures(
  settled: readonly PromiseSettledResult<unknown>[],
  owners: readonly (readonly number[])[],
): { failures: PartialFailureError[]; failed: Set<number> } {
  const failures: PartialFailureError[] = []
  const failed = new Set<number>()
  settled.forEach((result, phase) => {
    if (result.status === 'fulfilled') return
    if (!isPartialFailure(result.reason)) return
    failures.push(result.reason)
    for (const i of result.reason.failed) {
      const owner = owners[phase]?.[i] as number
      if (owner >= 0) failed.add(owner)
    }
  })
  return { failures, failed }
}

/**
 * What a key-value store rejects with when its backend failed: a stockpyle error as it is (also one of
 * another copy of the package), anything else (a custom backend's own error) wrapped in a
 * {@link StockpyleError} naming the store and the operation, the backend's error as its cause.
 */
export function backendError(store: string, operation: string, err: unknown): unknown {
  if (isStockpyleError(err)) return err
  return new StockpyleError(`${store} store ${operation} failed in its backend: ${(err as Error)?.message ?? show(err)}`, { cause: err })
}
