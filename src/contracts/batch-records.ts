import type { KeyInfo, ModelInfo } from '../core/registry.js'
import type { KeyValueBackfill, KeyValueEntry } from './key-value-backend.js'
import type { LookupRequest, StoreEntry, WriteItem } from './store.js'

// Why classes, not object literals, for what a batch makes per object: V8 tracks how many of the
// objects made by each literal (its allocation site) survive a young-generation GC, and once most do
// (a chain holds a batch's entries and requests across its awaits on Redis and SQL), it allocates that
// literal's next objects directly in the old generation. A store's entry made there points to the
// object just read, which is young: dropped soon after, the entry still keeps that object, its rows
// and strings alive through every young GC until the next full GC (the old generation is a root of
// young GCs). Measured on SqlStore.batchGet of 1,000 next to a chain: in about a third of processes
// ~0.5 MB promoted per batch and 10x the young-GC time, the store at 0.56–0.63x of its floor instead
// of 0.84x (bench/RESULTS.md, round 11). Objects made by a constructor are not pretenured that way.

/**
 * A {@link StoreEntry} as stores hand them out: `value` (the object), `expiresAt` (ms since the epoch,
 * `undefined` = never) and `encoded` (its record envelope, when known). A custom store reading many
 * objects per call should return these rather than object literals: V8 may allocate a literal's
 * objects in the old generation once most of them outlive a young GC, and such an entry keeps the
 * object it points to alive until the next full GC (see docs/writing-a-store.md).
 */
export class Entry<T extends object = object> implements StoreEntry<T> {
  constructor(
    readonly value: T,
    readonly expiresAt: number | undefined,
    readonly encoded: Uint8Array | undefined = undefined,
  ) {}
}

/** A {@link LookupRequest} as `BaseStore` makes them. */
export class KeyRequest implements LookupRequest {
  key: string | undefined = undefined
  constructor(
    readonly spec: KeyInfo,
    readonly lookup: Readonly<Record<string, unknown>>,
  ) {}
}

/** A {@link WriteItem} as `BaseStore` makes them. */
export class Item implements WriteItem {
  constructor(
    readonly obj: object,
    readonly info: ModelInfo,
    readonly expiresAt: number | undefined,
    readonly backfill: boolean,
    readonly since: number | undefined,
    readonly encoded: Uint8Array | undefined,
  ) {}
}

/** A {@link KeyValueEntry} as `KeyValueStore` hands them to its backend. */
export class ValueEntry implements KeyValueEntry {
  constructor(
    readonly key: string,
    readonly value: Uint8Array,
    readonly expiresAt: number | undefined,
  ) {}
}

/** A {@link KeyValueBackfill} with the index of its object among the write's items. */
export class PreparedBackfill implements KeyValueBackfill {
  constructor(
    readonly record: KeyValueEntry,
    readonly aliases: KeyValueEntry[],
    readonly item: number,
  ) {}
}
