import type { LookupRequest, StoreEntry } from '../contracts/base-store.js'
import { type Backfill, Hit } from './backfill.js'
import { copyEntry } from './copy-entry.js'

/**
 * What a caller of a chain whose first layer holds data per scope (`capabilities.scoped`: an
 * AsyncLocalStore) got from reads of other callers it joined (single-flight): `found`, answers for
 * `requests`, read by reads that began at write clock `started` and invalidation sequence `since`.
 * The reader that led each read copied what it found into its own scope only (the backfill runs in its
 * async context); this caller's copies go into its own scope here, in its async context, under the
 * shared read's checks: a write or invalidation of an object since that read began drops its copy.
 * (A stale copy served when the last layer failed is past its expiry, which no layer takes.)
 *
 * The caller began a read of the write clock when it joined (`backfill.clock.beginRead()`, at
 * `started`), so that the writes made since stay stamped until this check; it is ended here, whatever
 * happens.
 * @returns the caller's own copies of `found` (`undefined` where it is), once its scope took them.
 * @throws what `Backfill.copy` rejects with (a layer failure, only under `onCacheError: 'throw'`).
 */
export async function copyIntoScope(
  backfill: Backfill,
  found: readonly (StoreEntry | undefined)[],
  requests: readonly LookupRequest[],
  started: number,
  since: number,
): Promise<(StoreEntry | undefined)[]> {
  try {
    const copies = found.map(copyEntry)
    let hits: Hit[] | undefined
    for (let i = 0; i < copies.length; i++) {
      const copy = copies[i]
      // (a hit "found in layer 1" is copied into layer 0 only: the layers between are shared, and the
      // read that found it filled them)
      if (copy !== undefined) (hits ??= []).push(new Hit(1, copy, requests[i]))
    }
    if (hits !== undefined) await backfill.copy(hits, started, since)
    return copies
  } finally {
    backfill.clock.endRead(started)
  }
}
