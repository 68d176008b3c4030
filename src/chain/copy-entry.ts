import type { StoreEntry } from '../contracts/base-store.js'
import { Entry } from '../contracts/batch-records.js'
import { decodeRecord, encodeRecord } from '../core/codec.js'

/** A copy of an entry for another caller: decoded again from its envelope (or re-encoded). */
export function copyEntry(entry: StoreEntry | undefined): StoreEntry | undefined {
  if (entry === undefined) return undefined
  const value = entry.encoded === undefined ? undefined : decodeRecord(entry.encoded)
  return new Entry(value ?? (decodeRecord(encodeRecord(entry.value, undefined)) as object), entry.expiresAt, entry.encoded)
}
