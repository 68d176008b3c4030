import { isStockpyleError, StockpyleError, StoreUnavailableError, show } from '../core/errors.js'
import { isPartialFailure, PartialFailureError } from '../core/partial-failure.js'
import { primaryLookup } from '../core/primary-lookup.js'
import type { ModelInfo } from '../core/registry.js'
import type { LookupRequest, StoreEntry, WriteItem } from './store.js'

/** Sorts numbers ascending (for `Array.prototype.sort`). */
export const ascending = (a: number, b: number): number => a - b

/**
 * One PartialFailureError for a store call from the backend's (their `failed` already mapped to the
 * call's positions, given in any order). `operation` starts the message: text, or made of the failed
 * positions, ascending (a {@link readCall} or {@link writeCall} naming the first).
 */
export function partialFailure(
  operation: string | ((failed: readonly number[]) => string),
  failures: readonly PartialFailureError[],
  positions: Iterable<number>,
  results?: (StoreEntry | undefined)[],
  corrupt?: Error,
): PartialFailureError {
  const failed = [...positions].sort(ascending)
  const nodes = [...new Set(failures.flatMap((f) => f.nodes))]
  const what = typeof operation === 'string' ? operation : operation(failed)
  const causes: Error[] = corrupt === undefined ? [...failures] : [...failures, corrupt]
  const also = corrupt === undefined ? '' : `; and ${corrupt.message}`
  return new PartialFailureError(
    `${what}: ${failed.length} item(s) on failed node(s) ${nodes.join(', ')}: ${failures[0]?.message}${also}`,
    {
      failed,
      results,
      nodes,
      cause: causes.length === 1 ? causes[0] : new AggregateError(causes, `${what} failures`),
    },
  )
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

/** ` (and 2 more)` after the first of `count` things a message names; nothing for one. */
function more(count: number): string {
  return count > 1 ? ` (and ${count - 1} more)` : ''
}

/**
 * What the failure of a read (or an invalidation) of `info`'s model names: the operation, the model and
 * the first lookup of `positions` (default: every request), with how many more —
 * ``get of model `User` by `{id:7}` (and 1 more)``. Built only when the call failed.
 */
export function readCall(operation: string, info: ModelInfo, requests: readonly LookupRequest[], positions?: readonly number[]): string {
  const first = requests[positions === undefined ? 0 : (positions[0] as number)]
  return `${operation} of model \`${info.name}\` by ${show(first?.lookup)}${more(positions?.length ?? requests.length)}`
}

/**
 * What the failure of a write names: the operation, the model and the primary key of the first object of
 * `positions` (default: every item), with how many more — ``put of model `User` `{id:7}` (and 2 more)``.
 * Built only when the call failed.
 */
export function writeCall(operation: string, items: readonly WriteItem[], positions?: readonly number[]): string {
  const item = items[positions === undefined ? 0 : (positions[0] as number)]
  if (item === undefined) return operation
  return `${operation} of model \`${item.info.name}\` ${show(primaryLookup(item.info, item.obj))}${more(positions?.length ?? items.length)}`
}

/**
 * What a key-value store `store` rejects with when its backend failed a `call` (a {@link readCall} or
 * {@link writeCall}), naming the model and the key the backend does not know:
 * - a custom backend's own error → a {@link StockpyleError} ``<store> store <call> failed in its backend: <message>``, the error as `cause`;
 * - a `StoreUnavailableError` (a server down, a timeout) → a new one worded as the store's call (its
 *   leading ``<store> store <op>`` replaced by ``<store> store <call>``), with the same `cause`;
 * - any other stockpyle error (a partial failure the store words itself, a corrupt entry naming its
 *   model, …; also one of another copy of the package) as it is.
 */
export function backendError(store: string, call: string, err: unknown): unknown {
  if (!isStockpyleError(err)) {
    return new StockpyleError(`${store} store ${call} failed in its backend: ${(err as Error)?.message ?? show(err)}`, { cause: err })
  }
  if (err.code !== StoreUnavailableError.code || isPartialFailure(err)) return err
  return new StoreUnavailableError(restated(store, call, err.message), err.cause === undefined ? {} : { cause: err.cause })
}

/**
 * A backend's `message` about a call worded as the store's: a leading ``<store> store <op>``,
 * ``<store> <op>`` (followed by `:`, ` failed` or ` on`) or ``<store>`` (followed by `:`) becomes
 * ``<store> store <call>``; any other message follows ``<store> store <call>: ``.
 */
function restated(store: string, call: string, message: string): string {
  const head = `${store} store ${call}`
  if (message.startsWith(`${store}:`)) return head + message.slice(store.length)
  if (message.startsWith(`${store} `)) {
    const op = /^(?:store )?[\w.-]+(?=:| failed\b| on\b)/.exec(message.slice(store.length + 1))
    if (op !== null) return head + message.slice(store.length + 1 + op[0].length)
  }
  return `${head}: ${message}`
}
