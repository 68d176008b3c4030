import type { LRUCache } from 'lru-cache'
import type { WriteItem } from '../../contracts/base-store.js'
import { envelopeExpiry } from '../../core/codec.js'
import type { ObjectKeys } from '../../core/key-encoding.js'
import type { Clock } from '../../core/lifetime.js'
import type { InvalidationLog } from './invalidation-log.js'
import type { Slab } from './record-arena.js'

// What V8 and lru-cache hold per record and per alias beyond the bytes we can count (object headers,
// Map and index slots, the Buffer view, the alias Map entry and array slot). Calibrated on Node 20 x64
// by benchmark S7 (src/cli/bench/memory-bound.ts: `npx stockpyle bench --stores memory --scenarios S7`):
// 1,000,000 small objects into maxSize 16/32/48/64/96 MiB grew heap + external by 416–468 bytes per
// record without aliases and 725–782 with one alias (Map hash tables grow by doubling, so the cost per
// entry depends on how full they are); these values cover the worst case with ~3–5% to spare. Payloads
// are counted rounded up to 8 bytes, as the store cuts them from its slabs (RecordArena).
const RECORD_OVERHEAD = 408
export const ALIAS_OVERHEAD = 256

/**
 * What the store holds under a record key. Kept small, as every entry costs the garbage collector:
 * one alias is held as a string (no array), and a record's expiry is read from its envelope header
 * (no number object per entry).
 *
 * A class, not an object literal: V8 tracks the survival of objects made by a literal and, once most
 * of a literal's objects outlive a young-generation GC (as a cache's records do), allocates the next
 * ones directly in the old generation. A record there that is dropped soon after (a cleared or
 * evicted copy) keeps its young bytes and keys alive through every young GC until the next full GC:
 * measured in a loop of batch reads that backfill memory, ~0.8 MB promoted per young GC instead of
 * ~0.1 MB. Objects made by a constructor are not pretenured that way.
 */
export class MemoryRecord {
  constructor(
    /**
     * The record envelope, cut from the store's RecordArena (which may move it to another slab); `undefined`
     * for a tombstone: the object was deleted here; reads miss and backfills may not land.
     */
    public bytes: Buffer | undefined,
    /** The alias keys pointing to this record: none, one, or several (set when its index catches up, see AliasIndex). */
    public aliases: string | readonly string[] | undefined,
    /** A tombstone's expiry (ms since the epoch); a record's is in its envelope header. */
    readonly tombstoneUntil: number | undefined,
    /**
     * A backfilled copy's alternate-key values not indexed yet (one value, or one per alternate key):
     * `undefined` once its aliases are made, and for every other record (see AliasIndex).
     */
    public captured: unknown = undefined,
    /** The arena slab its bytes are held in while the store holds it (`undefined`: none, or a buffer of its own). */
    public slab: Slab | undefined = undefined,
    /** The bytes it holds in that slab (see RecordArena). */
    public held = 0,
  ) {}
}

/** The aliases of a record as it holds them. */
export function holdAliases(aliases: readonly string[]): MemoryRecord['aliases'] {
  return aliases.length === 0 ? undefined : aliases.length === 1 ? aliases[0] : aliases
}

/** Calls `fn` with each alias a record holds. */
export function eachAlias(aliases: MemoryRecord['aliases'], fn: (alias: string) => void): void {
  if (aliases === undefined) return
  if (typeof aliases === 'string') fn(aliases)
  else for (const alias of aliases) fn(alias)
}

/** When a held record or tombstone expires (ms since the epoch), `undefined` = never. */
export function expiryOfRecord(record: MemoryRecord): number | undefined {
  return record.bytes === undefined ? record.tombstoneUntil : envelopeExpiry(record.bytes)
}

/** Whether `held` (what a store holds under a key, if anything) is a record or tombstone still live at `now` (ms). */
export function isLive(held: MemoryRecord | undefined, now: number): boolean {
  if (held === undefined) return false
  const until = expiryOfRecord(held)
  return until === undefined || until > now
}

/**
 * The bytes a held record or tombstone counts against `maxSize`, its aliases apart ({@link sizeOfAliases}:
 * the alias table counts them, see AliasIndex). lru-cache asks on every set: no closure here.
 */
export function sizeOf(record: MemoryRecord, key: string): number {
  return (((record.bytes?.length ?? 0) + 7) & ~7) + key.length + RECORD_OVERHEAD
}

/** The bytes a record's aliases count against `maxSize`: each key's text and its entry in the alias table. */
export function sizeOfAliases(aliases: MemoryRecord['aliases']): number {
  if (aliases === undefined) return 0
  if (typeof aliases === 'string') return aliases.length + ALIAS_OVERHEAD
  let size = 0
  for (const alias of aliases) size += alias.length + ALIAS_OVERHEAD
  return size
}

/** One item of a write, checked: its keys, expiry (`null`: already over) and, for a put, its bytes. */
export interface PreparedWrite {
  readonly item: WriteItem
  readonly keys: ObjectKeys
  readonly expiresAt: number | undefined | null
  readonly bytes: Buffer | undefined
}

/**
 * Leaves a tombstone under each of `recordKeys` in `records` until `changedAt` (ms since the epoch;
 * default now, never later) + `tombstoneMs`, and notes the invalidation in `log` (`aliases`: some keys
 * may be alternate keys, see InvalidationLog). A repair (`changedAt`) never cuts short a tombstone a
 * later delete left; with tombstones off (`tombstoneMs` 0) the keys are only dropped and nothing is noted.
 */
export function placeTombstones(
  records: LRUCache<string, MemoryRecord>,
  log: InvalidationLog,
  settings: { readonly tombstoneMs: number; readonly clock: Clock },
  recordKeys: readonly string[],
  changedAt: number | undefined,
  aliases: boolean,
): void {
  const { tombstoneMs, clock } = settings
  const now = clock.now()
  const expiresAt = Math.min(changedAt ?? now, now) + tombstoneMs
  if (tombstoneMs !== 0) log.invalidated(recordKeys, aliases)
  for (const key of recordKeys) {
    if (changedAt !== undefined && (records.peek(key)?.tombstoneUntil ?? 0) >= expiresAt) continue
    if (tombstoneMs === 0 || expiresAt <= now) records.delete(key)
    else records.set(key, new MemoryRecord(undefined, undefined, expiresAt))
  }
}

/**
 * The keys of `held` (record key, record a put stored; `undefined` where it stored none: too big, or
 * not to be cached) under which `records` does not hold that record: whatever is there now came after.
 */
export function replaced(records: LRUCache<string, MemoryRecord>, held: readonly [string, MemoryRecord | undefined][]): string[] {
  const out: string[] = []
  for (const [key, record] of held) if (record === undefined || records.peek(key) !== record) out.push(key)
  return out
}
