import { CorruptEntryError, show } from '../core/errors.js'
import type { KeyValueBackend } from './key-value-backend.js'
import type { CorruptEntry } from './key-value-reads.js'
import type { StoreEntry } from './store.js'
import { writeTombstones } from './write-tombstones.js'

/**
 * Removes entries a read found not to be valid envelopes the way a delete removes a record, then
 * rejects with a {@link CorruptEntryError} naming them and carrying the lookups they failed (`failed`)
 * and what the read found for the others (`results`): a chain reports it, keeps those answers and
 * reads only the failed lookups from the layer below.
 *
 * With `tombstoneMs` > 0 each key is replaced by a tombstone ending `tombstoneMs` after `now`: like a
 * delete's, it refuses add-only backfills until then, so the key is refilled only after it ends. A
 * plain delete could remove a tombstone another process's delete wrote between the corrupt read and
 * the removal, and let a copy read from the database before that delete land (review). With
 * `tombstoneMs` 0 (deletes are plain) the keys are deleted.
 * @param store The store's name and `model` the model's, for the message.
 * @param now The store's clock, ms since the epoch.
 * @param tombstoneMs The store's tombstone lifetime in ms; 0 = plain deletes.
 * @param failed The positions of the read's lookups the entries failed, ascending.
 * @param results One answer per lookup of the read, `undefined` at the failed positions.
 * @throws CorruptEntryError always: naming the first key (and how many more), why it is corrupt, and
 *   whether the removal succeeded (when it failed, its error's message); with `failed` and `results`.
 */
export async function dropCorrupt(
  store: string,
  model: string,
  backend: KeyValueBackend,
  bad: readonly CorruptEntry[],
  now: number,
  tombstoneMs: number,
  failed: readonly number[],
  results: readonly (StoreEntry | undefined)[],
): Promise<never> {
  const keys = bad.map((b) => b.key)
  let outcome = tombstoneMs > 0 ? `it was replaced by a tombstone for ${tombstoneMs} ms` : 'it was removed'
  try {
    if (tombstoneMs > 0) await writeTombstones(backend, keys, now + tombstoneMs)
    else await backend.deleteMany(keys)
  } catch (err) {
    outcome = `${tombstoneMs > 0 ? 'replacing it by a tombstone' : 'removing it'} failed too (${(err as Error)?.message ?? show(err)})`
  }
  const first = bad[0] as CorruptEntry
  const more = bad.length > 1 ? ` (and ${bad.length - 1} more)` : ''
  throw new CorruptEntryError(
    `${store} store get of model \`${model}\`: the entry under ${show(first.key)}${more} is corrupt: ${first.reason}; ${outcome}`,
    { failed, results },
  )
}
