import { encodeAlias, encodeRecord, restampRecord } from '../core/codec.js'
import { show, ValueTooLargeError } from '../core/errors.js'
import { supersededCopies } from '../core/key-claims.js'
import { keysOfObject, type ObjectKeys } from '../core/key-encoding.js'
import { expiryOf, type Lifetime } from '../core/lifetime.js'
import { PreparedBackfill, ValueEntry } from './batch-records.js'
import type { KeyValueEntry } from './key-value-backend.js'
import type { WriteItem } from './store.js'

/** The entries to set and keys to delete for a batch of writes, all validated and encoded. */
export interface PreparedWrites {
  /** Entries to set unconditionally (puts). */
  readonly sets: KeyValueEntry[]
  /**
   * The index (into the items) of the object each record entry of `sets` belongs to; `-1` for an
   * alias, whose failed write can leave no stale answer (an alias is checked against its record).
   */
  readonly setItems: number[]
  /** Backfills: the record entry to add only where absent, and the aliases to set if it was added. */
  readonly backfills: PreparedBackfill[]
  /**
   * The primary record keys of objects put with a lifetime already over, to tombstone as a delete does
   * (with `tombstoneMs` 0 they are in `deletes`): a copy read before the put must not land after it.
   * `undefined` when there are none (the common case: no array made).
   */
  readonly tombstones: string[] | undefined
  /** The index (into the items) of the object each of `tombstones` belongs to; `undefined` with them. */
  readonly tombstoneItems: number[] | undefined
  readonly deletes: string[]
  /** Like `setItems`, for `deletes`. */
  readonly deleteItems: number[]
}

/**
 * Computes keys, expiry and envelopes for a batch of objects — every check (keys, serialization, size)
 * runs before the caller writes anything. An object put with a lifetime already over is deleted
 * instead, as a delete does it: its record key tombstoned for `tombstoneMs` (ms; 0 or `undefined`: deleted
 * plainly), its other keys deleted (a backfill with such a lifetime is dropped); an object put twice is
 * written once, as its last copy (see `supersededCopies`). `now`: the store's clock, ms since the epoch;
 * `maxValueBytes`: the backend's limit on an envelope (`undefined`: none).
 * @throws KeyConflictError when two objects put (not backfilled) claim one alternate key, naming it
 *   and both; ValueTooLargeError naming, in `failed`, the position of every object whose envelope is
 *   over `maxValueBytes` (puts and backfills alike: the caller writes nothing of the batch); the
 *   errors of `keysOfObject`, `expiryOf` and `encodeRecord`.
 */
export function prepareWrites(
  store: string,
  items: readonly WriteItem[],
  settings: {
    readonly lifetime: Lifetime | undefined
    readonly polymorphic: boolean
    readonly prefix: string
    /** ms an entry is kept past its expiry for stale reads. */
    readonly graceMs?: number
    readonly jitter?: number
    /** ms a tombstone lasts. */
    readonly tombstoneMs?: number
  },
  now: number,
  maxValueBytes?: number,
): PreparedWrites {
  const sets: KeyValueEntry[] = []
  const setItems: number[] = []
  const backfills: PreparedWrites['backfills'] = []
  let tombstones: string[] | undefined
  let tombstoneItems: number[] | undefined
  const deletes: string[] = []
  const deleteItems: number[] = []
  const { prefix } = settings
  let refused: number[] | undefined
  let firstRefusal = ''
  const allKeys = items.map((item) => keysOfObject(item.info, item.obj, settings.polymorphic, `${store} store put`, item.backfill === true))
  const superseded = supersededCopies(`${store} store put`, items, allKeys)
  for (let index = 0; index < items.length; index++) {
    const item = items[index] as WriteItem
    const keys = allKeys[index] as ObjectKeys
    const expiresAt = expiryOf(settings.lifetime, item.obj, now, item.expiresAt, settings.jitter ?? 0, `${store} store put`, item.info.name)
    if (superseded?.has(index) === true) {
      // a later copy of the same object replaces this one: checked, not written (one over the size
      // limit is refused with the others, so that a chain does not send it again on its own)
      if (expiresAt === null) continue
      const size = item.encoded?.length ?? encodeRecord(item.obj, expiresAt, `${store} store put`).length
      if (maxValueBytes !== undefined && size > maxValueBytes) {
        if (refused === undefined) {
          refused = []
          firstRefusal = `model \`${item.info.name}\` ${show(keys.record)}: the encoded object is ${size} bytes`
        }
        refused.push(index)
      }
      continue
    }
    const recordKey = prefix + keys.record
    if (expiresAt === null) {
      if (item.backfill !== true) {
        // Not cached, but invalidated as a delete does (review: a plain delete let a copy read before
        // the put land after it, in another process or another chain over the layer).
        if (settings.tombstoneMs) {
          tombstones ??= []
          tombstoneItems ??= []
          tombstones.push(recordKey)
          tombstoneItems.push(index)
        } else {
          deletes.push(recordKey)
          deleteItems.push(index)
        }
        for (const alias of keys.aliases) {
          deletes.push(prefix + alias)
          deleteItems.push(-1)
        }
      }
      continue
    }
    const value =
      (item.encoded !== undefined ? restampRecord(item.encoded, expiresAt) : undefined) ??
      encodeRecord(item.obj, expiresAt, `${store} store put`)
    if (maxValueBytes !== undefined && value.length > maxValueBytes) {
      // every item is still checked: the error names each one refused, so a chain can write the others
      if (refused === undefined) {
        refused = []
        firstRefusal = `model \`${item.info.name}\` ${show(keys.record)}: the encoded object is ${value.length} bytes`
      }
      refused.push(index)
      continue
    }
    // The backend keeps the entry through the grace period; the envelope holds the real expiry.
    const kept = expiresAt === undefined || !settings.graceMs ? expiresAt : expiresAt + settings.graceMs
    const record = new ValueEntry(recordKey, value, kept)
    const aliases = keys.aliases.map((alias) => new ValueEntry(prefix + alias, encodeAlias(recordKey, expiresAt), kept))
    if (item.backfill === true) backfills.push(new PreparedBackfill(record, aliases, index))
    else {
      sets.push(record, ...aliases)
      setItems.push(index)
      for (let k = 0; k < aliases.length; k++) setItems.push(-1)
    }
  }
  if (refused !== undefined) {
    const more = refused.length > 1 ? ` (and ${refused.length - 1} more)` : ''
    throw new ValueTooLargeError(
      `${store} store put of ${firstRefusal}${more}, over the backend's limit of ${maxValueBytes}; nothing was written`,
      { failed: refused },
    )
  }
  return { sets, setItems, backfills, tombstones, tombstoneItems, deletes, deleteItems }
}

/** Every key (record and aliases) of each object, prefixed. */
export function keysToDelete(store: string, items: readonly WriteItem[], polymorphic: boolean, prefix: string): string[] {
  const out: string[] = []
  for (const item of items) {
    const keys = keysOfObject(item.info, item.obj, polymorphic, `${store} store delete`)
    out.push(prefix + keys.record)
    for (const alias of keys.aliases) out.push(prefix + alias)
  }
  return out
}

/** The keys a delete removes, split into tombstoned records and plain deletes, each with its object's index. */
export interface SplitDeletes {
  /** Each object's primary record key (once), to tombstone; empty when `tombstoneMs` is 0. */
  readonly records: string[]
  /** The index (into the items) of the object each of `records` belongs to. */
  readonly recordItems: number[]
  /** The other keys with the index of their object (`-1` for an alias), none of them in `records`. */
  readonly plain: (readonly [string, number])[]
}

/** Splits every key of each object into the records to tombstone and the keys to delete plainly. */
export function splitDeletes(
  store: string,
  items: readonly WriteItem[],
  polymorphic: boolean,
  prefix: string,
  tombstoneMs: number,
): SplitDeletes {
  const records: string[] = []
  const recordItems: number[] = []
  const others: string[] = []
  const otherItems: number[] = []
  const seen = new Set<string>()
  items.forEach((item, index) => {
    const keys = keysOfObject(item.info, item.obj, polymorphic, `${store} store delete`)
    const record = prefix + keysOfObject(item.info, item.obj, false, `${store} store delete`).record
    for (const key of [prefix + keys.record, ...keys.aliases.map((a) => prefix + a)]) {
      if (tombstoneMs !== 0 && key === record) {
        if (!seen.has(key)) {
          seen.add(key)
          records.push(key)
          recordItems.push(index)
        }
      } else {
        // A failed alias delete leaves no stale answer (aliases are checked against their record).
        others.push(key)
        otherItems.push(key === record ? index : -1)
      }
    }
  })
  const recordSet = new Set(records)
  const plain = others.map((k, i) => [k, otherItems[i] as number] as const).filter(([k]) => !recordSet.has(k))
  return { records, recordItems, plain }
}
