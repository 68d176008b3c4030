import type { LRUCache } from 'lru-cache'
import { expiryOfRecord, type MemoryRecord } from './memory-record.js'

/** Whether `records` holds a live entry (a copy or a tombstone not yet expired at `now`, ms) under `key`. */
export function holdsLive(records: LRUCache<string, MemoryRecord>, key: string, now: number): boolean {
  const held = records.peek(key)
  if (held === undefined) return false
  const heldUntil = expiryOfRecord(held)
  return heldUntil === undefined || heldUntil > now
}

/** The keys of `held` (record key, record a put stored) under which `records` no longer holds that record. */
export function replaced(records: LRUCache<string, MemoryRecord>, held: readonly [string, MemoryRecord][]): string[] {
  const out: string[] = []
  for (const [key, record] of held) if (records.peek(key) !== record) out.push(key)
  return out
}
