import type { LookupRequest, StoreEntry, WriteItem } from '../../contracts/base-store.js'
import type { checkCacheOptions } from '../../contracts/cache-store-options.js'
import { encodeRecord } from '../../core/codec.js'
import { supersededCopies } from '../../core/key-claims.js'
import { keysOfObject } from '../../core/key-encoding.js'
import { expiryOf } from '../../core/lifetime.js'
import type { ModelInfo } from '../../core/registry.js'
import { aliasKeysOfCopy, type CopyKeys, keysOfCopy } from './copy-keys.js'
import type { InvalidationLog } from './invalidation-log.js'
import type { PreparedWrite } from './memory-record.js'
import type { RecordArena } from './record-arena.js'

/** The checked cache options of a memory store (what `checkCacheOptions` returns). */
type Settings = ReturnType<typeof checkCacheOptions>

/**
 * Checks and encodes every item of a write before anything is stored, so a bad object leaves the
 * store as it was: each item's keys, expiry (`null`: already over) and, for a put, its envelope cut
 * from `arena`. Backfills are encoded only where they land (most are skipped when the layer holds the
 * key). `now`: ms since the epoch; `where` names the call in errors.
 * An object put twice is stored once, as its last copy (see `supersededCopies`).
 * @throws KeyConflictError when two objects put (not backfilled) claim one alternate key; what
 *   `keysOfObject`, `keysOfCopy`, `expiryOf` and `encodeRecord` throw (InvalidKeyError, SerializationError, …).
 */
export function prepareWrites(
  items: readonly WriteItem[],
  settings: Settings,
  now: number,
  where: string,
  arena: RecordArena,
): PreparedWrite[] {
  const { lifetime, polymorphic, jitter } = settings
  const keys = items.map((item) =>
    item.backfill === true ? keysOfCopy(item.info, item.obj, polymorphic, where) : keysOfObject(item.info, item.obj, polymorphic, where),
  )
  const superseded = supersededCopies(where, items, keys)
  const writes: PreparedWrite[] = []
  for (let i = 0; i < items.length; i++) {
    const item = items[i] as WriteItem
    const backfill = item.backfill === true
    const expiresAt = expiryOf(lifetime, item.obj, now, item.expiresAt, jitter, where, item.info.name)
    if (superseded?.has(i) === true) {
      // a later copy of the same object replaces this one: checked (encoded and dropped), not stored
      if (expiresAt !== null && item.encoded === undefined) encodeRecord(item.obj, expiresAt, where)
      continue
    }
    const bytes = backfill || expiresAt === null ? undefined : arena.envelope(item.obj, expiresAt, item.encoded, where)
    writes.push({ item, keys: keys[i] as PreparedWrite['keys'], expiresAt, bytes })
  }
  return writes
}

/**
 * Checks every copy of a backfill before any lands, as in a put: its keys (`requests[i]`, the read that
 * found it, serves as its record key where it matches) and expiry (`null`: already over). `describe`
 * gives a copy's model (it throws for an unknown one).
 * @throws UnknownModelError, InvalidKeyError, SerializationError and the errors of `expiryOf`.
 */
export function prepareCopies(
  entries: readonly StoreEntry[],
  requests: readonly (LookupRequest | undefined)[] | undefined,
  settings: Settings,
  now: number,
  where: string,
  describe: (obj: object) => ModelInfo,
): { keys: CopyKeys[]; expiries: (number | undefined | null)[] } {
  const { lifetime, polymorphic, jitter } = settings
  const keys: CopyKeys[] = new Array(entries.length)
  const expiries: (number | undefined | null)[] = new Array(entries.length)
  for (let i = 0; i < entries.length; i++) {
    const { value, expiresAt } = entries[i] as StoreEntry
    const info = describe(value)
    keys[i] = keysOfCopy(info, value, polymorphic, where, requests?.[i])
    expiries[i] = expiryOf(lifetime, value, now, expiresAt, jitter, where, info.name)
  }
  return { keys, expiries }
}

/**
 * Whether `log` refuses a copy (`keys`) read when the invalidation sequence was at `since`: its record
 * key was invalidated after that, or one of its alternate keys was, filed as it was invalidated when
 * the store did not hold the object. Its alternate keys are made for that only when such an
 * invalidation came after `since` (a backfill with none around costs one comparison more).
 */
export function invalidatedSince(log: InvalidationLog, keys: CopyKeys, since: number): boolean {
  if (log.invalidatedAt(keys.record) > since) return true
  return log.aliasesInvalidatedAt > since && log.invalidatedAfter(aliasKeysOfCopy(keys), since)
}
