import type { PutEntriesOptions, StoreEntry } from '../contracts/base-store.js'
import { isStockpyleError } from '../core/errors.js'
import type { LayerCalls, LayerFailure } from './layer-calls.js'

/**
 * {@link LayerCalls.write} of `entries` into cache layer `index` (`batchPutEntries`: a put's new values, or a
 * backfill's copies with `options`). A layer that refuses some values as too large and names them
 * (`ValueTooLargeError.failed`: nothing was written) is called again with the others: one value it
 * cannot hold does not keep the rest of the batch out. The failure then names only the positions
 * of `entries` that did not land — the refused ones, and those of the second call's failure — for
 * the caller's clean-up.
 */
export async function putEntries(
  calls: LayerCalls,
  index: number,
  operation: 'put' | 'backfill',
  entries: readonly StoreEntry[],
  options?: PutEntriesOptions,
): Promise<LayerFailure | undefined> {
  const first = await calls.write(index, operation, (layer) => layer.batchPutEntries(entries, options))
  return putRest(calls, index, operation, entries, first, options)
}

/**
 * The rest of {@link putEntries} after its first call, whose outcome is `first` (a failure, already
 * counted, or `undefined`): the entries the layer did not refuse, written again when it refused some.
 */
export async function putRest(
  calls: LayerCalls,
  index: number,
  operation: 'put' | 'backfill',
  entries: readonly StoreEntry[],
  first: LayerFailure | undefined,
  options?: PutEntriesOptions,
): Promise<LayerFailure | undefined> {
  const refused = first?.refused === true ? refusedPositions(first.error, entries.length) : undefined
  if (first === undefined || refused === undefined) return first
  const rest: StoreEntry[] = []
  const restAt: number[] = []
  for (let k = 0, r = 0; k < entries.length; k++) {
    if (refused[r] === k) r++
    else {
      rest.push(entries[k] as StoreEntry)
      restAt.push(k)
    }
  }
  const second = await calls.write(index, operation, (layer) => layer.batchPutEntries(rest, options))
  if (second === undefined) return { ...first, failed: refused }
  const lost = second.failed ?? (second.refused ? refusedPositions(second.error, rest.length) : undefined)
  if (lost === undefined) return second
  const failed = [...refused, ...lost.map((k) => restAt[k] as number)].sort((a, b) => a - b)
  return { ...second, failed }
}

/**
 * The positions a `ValueTooLargeError` (also of another copy of the package) names as refused, when
 * they are some but not all of a call's `count` inputs, ascending and distinct; else `undefined`.
 */
function refusedPositions(error: unknown, count: number): readonly number[] | undefined {
  if (!isStockpyleError(error, 'E_VALUE_TOO_LARGE')) return undefined
  const failed: unknown = (error as { failed?: unknown }).failed
  if (!Array.isArray(failed) || failed.length === 0 || failed.length >= count) return undefined
  for (let k = 0; k < failed.length; k++) {
    const at = failed[k]
    if (!Number.isInteger(at) || at < 0 || at >= count || (k > 0 && at <= failed[k - 1])) return undefined
  }
  return failed as readonly number[]
}
