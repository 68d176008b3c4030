import type { StoreEntry } from '../contracts/base-store.js'
import type { LayerCalls, LayerFailure } from './layer-calls.js'
import type { LayerGuard } from './layer-guard.js'
import { putEntries, putRest } from './put-entries.js'

/**
 * A cache layer's put made at once ({@link putAtOnce}): its failure (already counted), or its end
 * (`Store.putNow`'s answer), to call at the layer's turn.
 */
export interface EarlyPut {
  readonly failure: LayerFailure | undefined
  end: (() => Promise<void>) | undefined
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
    return { failure: undefined, end: layer.putNow(entries) }
  } catch (err) {
    return { failure: calls.fail(index, 'put', err), end: undefined }
  }
}

/**
 * Cache layer `index`'s put of `entries` at its turn (the layers below written): the rest of an
 * `early` one — what it failed or refused (the entries it did not refuse are put again, as
 * {@link putEntries} does), or its end under the layer's guard — or the whole put. Resolves to the
 * failure (already counted), `undefined` when the put landed.
 */
export async function finishPut(
  calls: LayerCalls,
  index: number,
  entries: readonly StoreEntry[],
  early: EarlyPut | undefined,
): Promise<LayerFailure | undefined> {
  if (early === undefined) return putEntries(calls, index, 'put', entries)
  if (early.failure !== undefined) return putRest(calls, index, 'put', entries, early.failure)
  const end = early.end as () => Promise<void>
  early.end = undefined
  return calls.write(index, 'put', () => end())
}

/**
 * Ends an early put of cache layer `index` the chain's writes left before the layer's turn (a caller
 * error thrown on the way): its end must be called once all the same, so that what it holds back is
 * released. If the end fails (its bus did not take the keys), the failure is counted and reported and
 * `objs` are kept as the layer's repairs, as a failed put's are: never a silent miss elsewhere.
 */
export function abandonPut(calls: LayerCalls, index: number, early: EarlyPut | undefined, objs: readonly object[]): void {
  const end = early?.end
  if (end === undefined) return
  ;(early as EarlyPut).end = undefined
  end().catch((err: unknown) => {
    try {
      calls.fail(index, 'put', err)
    } catch {}
    ;(calls.guards[index] as LayerGuard).remember(objs)
  })
}
