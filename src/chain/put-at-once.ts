import type { StoreEntry } from '../contracts/base-store.js'
import type { LayerCalls, LayerFailure } from './layer-calls.js'
import type { LayerGuard } from './layer-guard.js'
import { putEntries, putRest } from './put-entries.js'

/**
 * A cache layer's put made at once ({@link putAtOnce}): its failure (already counted), or what is left
 * to tell other processes (`Store.putNow`'s answer; `undefined`: nothing).
 */
export interface EarlyPut {
  readonly failure: LayerFailure | undefined
  readonly tell: (() => Promise<void>) | undefined
}

/**
 * Cache layer `index`'s put of `entries` made at once (`Store.putNow`), for a layer that offers it and
 * whose guard would call it directly, with metrics off (as `LayerCalls.backfillNow`); `undefined` when
 * it cannot be (the put is then made at the layer's turn, by {@link finishPut}). `index` must be a
 * cache layer's: a value it refuses is its failure, never the caller's error.
 */
export function putAtOnce(calls: LayerCalls, index: number, entries: readonly StoreEntry[]): EarlyPut | undefined {
  const layer = calls.layers[index]
  if (layer?.putNow === undefined || calls.observer.metered || !(calls.guards[index] as LayerGuard).direct) return undefined
  try {
    return { failure: undefined, tell: layer.putNow(entries) }
  } catch (err) {
    return { failure: calls.fail(index, 'put', err), tell: undefined }
  }
}

/**
 * Cache layer `index`'s put of `entries` at its turn (the layers below written): the rest of an
 * `early` one — what it failed or refused (the entries it did not refuse are put again, as
 * {@link putEntries} does), or its telling of other processes under the layer's guard — or the whole
 * put. Resolves to the failure (already counted), `undefined` when the put landed.
 */
export async function finishPut(
  calls: LayerCalls,
  index: number,
  entries: readonly StoreEntry[],
  early: EarlyPut | undefined,
): Promise<LayerFailure | undefined> {
  if (early === undefined) return putEntries(calls, index, 'put', entries)
  if (early.failure !== undefined) return putRest(calls, index, 'put', entries, early.failure)
  const tell = early.tell
  return tell === undefined ? undefined : calls.write(index, 'put', () => tell())
}
