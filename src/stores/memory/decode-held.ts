import type { LRUCache } from 'lru-cache'
import type { StoreEntry } from '../../contracts/base-store.js'
import { decodeRecord } from '../../core/codec.js'
import { CorruptEntryError, show } from '../../core/errors.js'
import type { MemoryRecord } from './memory-record.js'

/** The record key and reason of each CorruptEntryError {@link decodeHeld} threw (read by {@link corruptBatch} only). */
const corruptRecords = new WeakMap<object, { key: string; reason: string }>()

/** The message of a corrupt record of `model` held under `key` found by `store`'s get (and `more` others). */
function corruptMessage(store: string, model: string, key: string, reason: string, more: number): string {
  const others = more > 0 ? ` (and ${more} more)` : ''
  return `${store} store get of model \`${model}\`: the entry under ${show(key)}${others} is corrupt (${reason}); it was removed`
}

/**
 * The object `bytes` (the record held under `recordKey`) decode to; a corrupt record is removed from
 * `records` and reported. `store` and `model`: the names the error gives (a string is built only then).
 * @throws CorruptEntryError naming the key.
 */
export function decodeHeld(
  records: LRUCache<string, MemoryRecord>,
  recordKey: string,
  bytes: Uint8Array,
  store: string,
  model: string,
): object | undefined {
  try {
    return decodeRecord(bytes)
  } catch (err) {
    if (!(err instanceof CorruptEntryError)) throw err
    records.delete(recordKey)
    const error = new CorruptEntryError(corruptMessage(store, model, recordKey, err.message, 0), { cause: err })
    corruptRecords.set(error, { key: recordKey, reason: err.message })
    throw error
  }
}

/**
 * What a batch read of `out.length` lookups rejects with when reading lookup `first` threw `err`: any
 * error but a corrupt record (from {@link decodeHeld}) as it is; for a corrupt record, the lookups
 * after `first` are read on (`read(at)`, into `out`), each corrupt one failing alone, and the error
 * names the first key (and how many more) with `failed` (the corrupt lookups, ascending) and `results`
 * (`out`, `undefined` at each of them). Only reached once a record was corrupt: the read of a batch
 * that holds none costs nothing more.
 */
export function corruptBatch(
  err: unknown,
  first: number,
  out: (StoreEntry | undefined)[],
  store: string,
  model: string,
  read: (at: number) => StoreEntry | undefined,
): unknown {
  const held = corruptRecords.get(err as object)
  if (held === undefined) return err
  const failed = [first]
  out[first] = undefined
  for (let at = first + 1; at < out.length; at++) {
    try {
      out[at] = read(at)
    } catch (other) {
      if (!corruptRecords.has(other as object)) return other
      failed.push(at)
      out[at] = undefined
    }
  }
  const message = corruptMessage(store, model, held.key, held.reason, failed.length - 1)
  return new CorruptEntryError<StoreEntry>(message, { cause: (err as Error).cause, failed, results: out })
}
