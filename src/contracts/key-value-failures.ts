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
