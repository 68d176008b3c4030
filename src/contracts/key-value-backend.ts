/**
 * The byte-level contract of a cache backend. Implement these four methods and wrap the backend in a
 * `KeyValueStore`: keys, alternate keys, lifetimes, polymorphism and the codec come with it.
 *
 * Keys are ASCII strings of at most 250 bytes with no spaces or control characters (the store's
 * prefix included). Values are opaque bytes. Every method rejects on failure; a backend never turns
 * an error into a miss — the chain decides what a failing cache layer means. A backend over several
 * nodes rejects a write that only some nodes failed with a `PartialFailureError` naming the failed
 * positions (keys or entries), so that only those need repair.
 */
export interface KeyValueBackend {
  /** A short name for messages, e.g. `memcache(127.0.0.1:11211)`. */
  readonly name?: string
  /** Largest value in bytes the backend accepts; larger ones fail with `ValueTooLargeError` before sending. */
  readonly maxValueBytes?: number
  /**
   * `true` when the backend's expiry has whole-second resolution (it must round up): it then keeps an
   * entry past its expiry, so the store also backfills over expired records and tombstones and takes
   * over expired leases through {@link refillMany} (where the backend has it), grace or not.
   */
  readonly secondResolution?: boolean
  /**
   * One value per key, same order, `undefined` at a miss. Keys may repeat; `[]` gives `[]`. With
   * `partial: true`, a backend spreading keys over several nodes rejects a read that some nodes failed
   * with a `PartialFailureError` whose `results` hold the other nodes' answers and whose `failed` lists
   * the positions it could not read (a single-node backend ignores the option). With `routeKeys`, each
   * key is read where {@link KeyValueEntry.routeKey} placed it.
   */
  getMany(keys: readonly string[], options?: BackendReadOptions): Promise<(Uint8Array | undefined)[]>
  /**
   * Stores every entry. `expiresAt` is absolute, in ms since the epoch (`undefined` = never); the
   * backend must not expire an entry before it (round up). Later entries for the same key win.
   */
  setMany(entries: readonly KeyValueEntry[]): Promise<void>
  /**
   * Optional: stores each entry only where its key holds nothing (memcached `add`, Redis `SET NX`),
   * atomically per key; resolves to whether each entry was stored. Backfills use it so that a copy
   * read before a write can never replace what the write stored (or the tombstone a delete left).
   * Without it, backfills fall back to `setMany` and that protection is lost across processes.
   */
  addMany?(entries: readonly KeyValueEntry[]): Promise<boolean[]>
  /**
   * Optional, with `addMany`: stores each backfill's record only where its key holds nothing and none
   * of its alias keys holds a live tombstone (an invalidation by that alternate key; live: header expiry
   * 0 or after the backend's clock) — an alias to another record is overwritten —, and its aliases only where the
   * record was stored — checked and written atomically, in one round trip (Redis: a Lua script); the
   * store otherwise reads the alias keys, `addMany`s the records and adds the aliases, tombstoning a
   * record whose alias add was refused. Resolves to whether each record was stored.
   * @param expiredBy Given only to a backend that has {@link refillMany} (by a store with `grace`, or
   *   over a backend with {@link secondResolution}): a record then also lands where `refillMany` would
   *   store it — over an expired record or tombstone.
   */
  addWithAliases?(backfills: readonly KeyValueBackfill[], expiredBy?: number): Promise<boolean[]>
  /**
   * Optional, with `addMany`: stores each entry where its key holds nothing **or an expired record or
   * tombstone** — a record or tombstone envelope (kind byte 1 or 3; a lease is a tombstone too) whose
   * header expiry (bytes 2–9, float64 big-endian) is not 0 and at or before `expiredBy` (ms since the
   * epoch, the store's clock) — and nowhere else: never over a live or never-expiring record or
   * tombstone, an alias or bytes that are not an envelope. Atomic per key: what the key holds is checked and replaced in
   * one step on the server (Redis: a Lua script; memcached: `gets` then `cas`, `add` where it held
   * nothing, read again where the key changed in between), so a put or delete another process lands
   * between the check and the write is never overwritten. Resolves to whether each entry was stored;
   * of entries repeating a key only the first can be.
   *
   * A store with `grace` keeps each expired record until its grace ends, for stale reads, and a backend
   * with {@link secondResolution} keeps every entry up to its rounding past its expiry; such a store's
   * backfills use this, so a chain refills the layer as soon as a copy (or tombstone) expired, and its
   * `acquireLeases` takes over a lease whose ttl has passed. Without it they stay add-only: the expired
   * entry refuses them until the backend drops it, and every read meanwhile goes below.
   * @throws PartialFailureError with positions of `entries` (and `results`) when only some nodes failed.
   */
  refillMany?(entries: readonly KeyValueEntry[], expiredBy: number): Promise<boolean[]>
  /**
   * Optional: repairs `keys` after a change that failed, each in one atomic step on the server: what
   * `repairAction` (the store's rule for every repair) decides from what the key holds — a tombstone
   * envelope expiring at `until` (ms since the epoch) where the key holds nothing, a copy (a record,
   * an alias, anything not a tombstone) or a tombstone ending sooner; the copy deleted once `until` has
   * passed by the store's clock; a tombstone ending at or after `until` (or never) kept. Without it the
   * store reads the keys, then adds, sets or deletes: a tombstone another process writes between the
   * two steps can then be replaced by the repair's shorter one.
   * @throws PartialFailureError with positions of `keys` when only some nodes failed.
   */
  repairMany?(keys: readonly string[], until: number): Promise<void>
  /**
   * Removes the keys; absent keys are a no-op. With `routeKeys`, each key is removed where
   * {@link KeyValueEntry.routeKey} placed it.
   */
  deleteMany(keys: readonly string[], options?: BackendRouteOptions): Promise<void>
  /**
   * Optional: removes every key that starts with `prefix` (the store's `<prefix>:`), and nothing else,
   * in bounded batches. Without it the store's `clear()` rejects with `UnsupportedOperationError` and
   * its `capabilities.clearable` is `false`: a backend that cannot clear as configured leaves it out
   * (a chain's `clearCaches()` checks the capability before clearing any layer).
   */
  clear?(prefix: string): Promise<void>
  /** Releases connections; called once. */
  close(): Promise<void>
}

/**
 * Where keys live, for a backend that spreads keys over nodes itself; see {@link KeyValueEntry.routeKey}.
 * Options of {@link KeyValueBackend.deleteMany}.
 */
export interface BackendRouteOptions {
  /**
   * One per key, same order: the key by which each key was placed (its entry's `routeKey`), read and
   * removed on that key's node. `undefined` (or a missing element) = the key itself.
   */
  readonly routeKeys?: readonly (string | undefined)[] | undefined
}

/** Options of {@link KeyValueBackend.getMany}. */
export interface BackendReadOptions extends BackendRouteOptions {
  /** The caller handles a `PartialFailureError` (see {@link KeyValueBackend.getMany}). Default `false`. */
  readonly partial?: boolean | undefined
}

/** One entry of {@link KeyValueBackend.setMany}. */
export interface KeyValueEntry {
  readonly key: string
  readonly value: Uint8Array
  /** Absolute expiry in ms since the epoch; `undefined` = never. */
  readonly expiresAt: number | undefined
  /**
   * Optional: the key whose node this entry belongs on; `undefined` = `key` itself. `KeyValueStore`
   * gives it to the entries of `addMany` and `refillMany` that are leases (`<prefix>lease:<key>` is
   * placed by `<prefix><key>`, its record's key), and passes the same keys as `routeKeys` to `getMany`
   * and `deleteMany` of leases: a lease then lives on its record's node, and a failing node fails only
   * its own keys' leases. A backend that picks each key's node itself (client-side hashing:
   * MemcacheBackend) must place, read and delete the entry on the node of `routeKey`; one with a
   * single node, or whose servers decide where a key lives (Redis Cluster: by the key's hash slot),
   * ignores it. `setMany`, `addWithAliases` and `repairMany` are never given one.
   */
  readonly routeKey?: string | undefined
}

/** One backfill of {@link KeyValueBackend.addWithAliases}: a record to add, and the aliases to set if it was. */
export interface KeyValueBackfill {
  readonly record: KeyValueEntry
  readonly aliases: readonly KeyValueEntry[]
}
