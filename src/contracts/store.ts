import type { invalidationSequence } from '../core/invalidation-sequence.js'
import type { Instance, Lookup, Model } from '../core/model.js'
import type { KeyInfo, ModelInfo } from '../core/registry.js'

/** An object as a layer holds it, with its absolute expiry (ms since the epoch; `undefined` = never). */
export interface StoreEntry<T extends object = object> {
  readonly value: T
  readonly expiresAt: number | undefined
  /**
   * Optional: the record envelope `value` was decoded from, or that a chain encoded it into for its
   * cache layers (its header's expiry may differ). A store receiving the entry (a backfill or a put)
   * may copy these bytes instead of encoding `value` again.
   * Read-only: they may be the very bytes the store holds (ProcessMemoryStore hands out its own, to
   * spare a copy per read); copy them before changing anything.
   */
  readonly encoded?: Uint8Array | undefined
}

/** Options of {@link Store.batchGetEntries}. */
export interface GetEntriesOptions {
  /**
   * Also return copies past their expiry that the store keeps within its `grace` (only for a chain that
   * serves stale copies while its database fails). Default `false`.
   */
  readonly stale?: boolean | undefined
  /**
   * The caller handles partial failures: a store spreading keys over several nodes (a memcached pool, a
   * Redis Cluster) rejects a read that some of its nodes failed with a `PartialFailureError` whose
   * `results` are the entries the other nodes answered (`undefined` at misses and failed lookups) and
   * whose `failed` lists the lookups it could not read. Without it such a store applies its own policy.
   * Default `false`.
   */
  readonly partial?: boolean | undefined
}

/** One lookup of a batch, validated: the declared key it addresses and the lookup object itself. */
export interface LookupRequest {
  readonly spec: KeyInfo
  readonly lookup: Readonly<Record<string, unknown>>
  /**
   * The lookup's canonical key (without any store's prefix) once a store has computed it
   * (`requestKey`), `undefined` until then: the layers of a chain read the same requests, and each
   * reuses the key the first one computed.
   */
  key?: string | undefined
}

/** One object of a write batch with its model and an optional expiry cap (ms since the epoch). */
export interface WriteItem {
  readonly obj: object
  readonly info: ModelInfo
  /** The entry must not outlive this instant (a backfill from a layer whose copy expires then). */
  readonly expiresAt?: number | undefined
  /** A copy read from a layer below: store it only where the key holds nothing (no newer value, no tombstone). */
  readonly backfill?: boolean
  /** For a backfill: the {@link invalidationSequence} when the read began (see {@link PutEntriesOptions.since}). */
  readonly since?: number | undefined
  /** The record envelope of `obj` as read from a layer below or encoded by a chain, when known (see {@link StoreEntry.encoded}). */
  readonly encoded?: Uint8Array | undefined
}

/** Options of {@link Store.batchInvalidate}. */
export interface InvalidateOptions {
  /**
   * When the objects changed (ms since the epoch on the store's clock), if that was earlier than now:
   * a store that leaves tombstones fences backfills for its tombstone lifetime from then, not from now,
   * so a late repair does not keep fresh copies out longer than a timely invalidation would have.
   * Given, the invalidation is a repair: it never shortens or removes a tombstone the key already holds
   * (another process's later delete may have left it), so a store may read the keys first.
   * Default: now.
   */
  readonly changedAt?: number | undefined
}

/** Options of {@link Store.batchPutEntries}. */
export interface PutEntriesOptions {
  /**
   * The entries are copies read from a layer below (a chain's backfill): a store that can should write
   * them only where the key holds nothing — no newer value, no tombstone of a recent delete.
   */
  readonly backfill?: boolean | undefined
  /**
   * For a backfill: the process-wide {@link invalidationSequence} when the read that found the copies
   * began. An in-process store refuses copies of keys it invalidated after that point (however long
   * ago), so a slow read never brings back what an invalidation removed. Stores that cannot tell
   * ignore it.
   */
  readonly since?: number | undefined
}

/** What a store is, declared so that chains and the conformance suite never test store names. */
export interface StoreCapabilities {
  /** Owns the truth (a database); a chain's last layer. Default `false`. */
  readonly authoritative: boolean
  /** Fills missing primary keys (database-generated ids). Default `false`. */
  readonly generatesKeys: boolean
  /** Honours `lifetime` (cache layers). Default `true`. */
  readonly expires: boolean
  /** Objects are also indexed under each ancestor model. */
  readonly polymorphic: boolean
  /** Whole-second expiry resolution (memcached): lifetimes are rounded up, never cut short. Default `false`. */
  readonly secondResolution: boolean
  /** Holds data only inside a scope (AsyncLocalStore). Default `false`. */
  readonly scoped: boolean
  /** Lives in this process and cannot fail for I/O reasons: a chain puts no timeout or breaker on it. Default `false`. */
  readonly inProcess: boolean
  /** Offers `acquireLeases`/`releaseLeases` ({@link LeaseCapable}), shared by every process using the same server. Default `false`. */
  readonly leases: boolean
  /**
   * Whether `clear()` can empty this store: `false` for a store whose `clear()` would be refused
   * (memcached without `ownsServers`, a backend that cannot list keys). Unset: whether it has `clear()`.
   * A chain's `clearCaches()` checks it on every cache layer before clearing any.
   */
  readonly clearable?: boolean
  /**
   * `batchPutEntries(entries, { backfill: true })` stores an entry only where its key holds no live
   * value, so a copy read from below never replaces a newer write (memcached `add`, Redis `SET NX`).
   * Default `false`: backfills are written like puts.
   */
  readonly addOnlyBackfills: boolean
  /**
   * A delete, an invalidation or a put whose lifetime is already over (not cached) leaves a tombstone
   * under the object's key for a while (the stores' `tombstoneLifetime`) over which no backfill lands,
   * so a copy read before the write cannot bring the old object back. Implies {@link addOnlyBackfills}.
   * Default `false`.
   */
  readonly tombstones: boolean
  /**
   * Keeps expired copies for a while (the stores' `grace`) and returns them to
   * `batchGetEntries(model, lookups, { stale: true })` — never to other reads, and never after a delete
   * or invalidation. Default `false`.
   */
  readonly staleReads: boolean
  /**
   * With {@link staleReads}: a backfill also lands where the key holds only an expired copy kept for
   * `grace` — never over a live copy or a live tombstone, and atomically against other processes' writes —
   * so a chain refills the layer as soon as its copy expired, not once the grace is over. Default
   * `false`: an add-only backfill is refused by the expired copy until its grace ends.
   */
  readonly refillsExpired: boolean
  /**
   * Refuses every put (`put`, `batchPut`, `batchPutEntries`) with `UnsupportedOperationError`, always,
   * before anything is written (a `LoaderStore` without `save`). A chain whose last layer declares it
   * refuses puts the same way before touching any layer: no cache copy is invalidated and no error is
   * counted. A store that may refuse only some puts declares `false`. Default `false`.
   */
  readonly refusesPuts: boolean
  /**
   * Refuses every delete (`delete`, `batchDelete`, by object or by key) with `UnsupportedOperationError`,
   * always, before anything is read or removed (a `LoaderStore` without `remove`). A chain whose last
   * layer declares it refuses deletes the same way before touching any layer. Default `false`.
   */
  readonly refusesDeletes: boolean
}

/** One write made in a transaction: the objects of one put/batchPut (as written back) or delete/batchDelete. */
export interface TransactionWrite {
  readonly operation: 'put' | 'delete'
  readonly objects: readonly object[]
}

/** The handle a transactional store passes to its callback: a store whose calls join one transaction. */
export interface TransactionHandle extends Store {
  /** Runs `fn` once, after COMMIT, with every write of the transaction in order (never after a rollback). */
  afterCommit(fn: (writes: readonly TransactionWrite[]) => void | Promise<void>): void
  /**
   * Runs `fn` once when the COMMIT was sent and failed, with every write of the transaction in order:
   * its outcome is unknown (a reply lost with the connection may hide a COMMIT that took effect), so
   * a cache in front must drop what the writes touched. The transaction still rejects.
   */
  afterCommitFailed?(fn: (writes: readonly TransactionWrite[]) => void | Promise<void>): void
}

/** A store that runs several calls in one transaction (SqlStore). */
export interface TransactionCapable {
  transaction<R>(fn: (tx: TransactionHandle) => Promise<R>): Promise<R>
}

/**
 * A store that can hand out short leases on lookups, shared across processes (memcached `add`, Redis
 * `SET NX`): a chain uses them so that, when many processes miss the same object at once, one reads
 * the database and the others wait briefly for its copy.
 */
export interface LeaseCapable {
  /**
   * Tries to take a lease on each lookup for `ttlMs` milliseconds; resolves to whether each was taken
   * (a lease held by anyone else, or an entry already there, means `false`).
   * @param ttlMs a number of ms > 0 and < 2^31.
   * @throws InvalidArgumentError for any other `ttlMs`, before anything is taken.
   */
  acquireLeases<M extends Model>(model: M, lookups: readonly Lookup<M>[], ttlMs: number): Promise<boolean[]>
  /** Gives the leases back (idempotent). */
  releaseLeases<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<void>
  /** Whether a lease on each lookup is currently held (by anyone). */
  leasesHeld<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<boolean[]>
}

/** The contract every store implements, ChainedStore included. */
export interface Store extends AsyncDisposable {
  /** A short name for messages, events and stats. */
  readonly name: string
  readonly capabilities: StoreCapabilities
  /** Inserts or replaces `obj` under every key of its model. */
  put(obj: object): Promise<void>
  /** The object with this key, a fresh copy, or `undefined` on a miss. */
  get<M extends Model>(model: M, lookup: Lookup<M>): Promise<Instance<M> | undefined>
  /**
   * Optional, for stores in this process's memory: `get` answered at once, without a promise — the
   * object (a fresh copy) or `undefined` on a miss; it throws what `get` would reject with. A chain
   * serves hits of its first layer through it. A wrapper (`StoreDecorator`) does not forward it, so
   * every call of a wrapped store passes through the wrapper.
   */
  getNow?<M extends Model>(model: M, lookup: Lookup<M>): Instance<M> | undefined
  /** Removes `obj` under every key it was stored under; absent objects are a no-op. */
  delete(obj: object): Promise<void>
  /**
   * Delete by key: removes the object this lookup finds (typed like `get`) under every key it has;
   * an absent object is a no-op. @throws UnknownKeyError / InvalidKeyError for a bad lookup.
   */
  delete<M extends Model>(model: M, lookup: Lookup<M>): Promise<void>
  /** `put` for many objects. */
  batchPut(objs: readonly object[]): Promise<void>
  /** One result per lookup, same order and length, `undefined` at each miss; duplicates allowed; `[]` gives `[]`. */
  batchGet<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<(Instance<M> | undefined)[]>
  /** `delete` for many objects. */
  batchDelete(objs: readonly object[]): Promise<void>
  /** Delete by key for many lookups (duplicates allowed); absent objects are a no-op. */
  batchDelete<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<void>
  /**
   * The entry-level form of delete by key, what a chain uses: removes the objects these lookups find,
   * under every key each has, and resolves to them — one slot per lookup, in order, `undefined` where
   * nothing was found — so that the layers above can remove the same objects under all their keys.
   * SQL finds and removes in one statement (`DELETE … RETURNING`); a cache resolves alternate keys to
   * the record first. Optional for custom stores: a chain falls back to `batchGetEntries` + `batchDelete`.
   */
  batchDeleteByKey?<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<(Instance<M> | undefined)[]>
  /**
   * Cache stores: removes every entry under the store's prefix and nothing else (see each store for how).
   * Absent on authoritative stores. @throws UnsupportedOperationError where the backend cannot tell its
   * entries apart (memcached without `ownsServers`).
   */
  clear?(): Promise<void>
  /** Like `batchGet`, with each hit's expiry: what ChainedStore uses to backfill without outliving the source. */
  batchGetEntries<M extends Model>(
    model: M,
    lookups: readonly Lookup<M>[],
    options?: GetEntriesOptions,
  ): Promise<(StoreEntry<Instance<M>> | undefined)[]>
  /** Like `batchPut`, each object capped at its `expiresAt` (a backfill never outlives its source). */
  batchPutEntries(entries: readonly StoreEntry[], options?: PutEntriesOptions): Promise<void>
  /**
   * Optional, for stores in this process's memory whose backfills reach nothing outside the process:
   * a chain's backfill, `batchPutEntries(entries, { backfill: true, since })`, done at once (add-only,
   * capped at each entry's `expiresAt`, refused for keys invalidated after `since`); it throws what
   * that call would reject with. A chain backfills its in-process layers through it. A wrapper
   * (`StoreDecorator`) does not forward it, so every call of a wrapped store passes through the wrapper.
   * `requests[i]`, when given, is the request that found entry `i` below: a store may take its
   * canonical `key` as the entry's record key where it checks that the request is by the entry's own
   * model's primary key and holds the entry's key values (the key is then made once per read).
   */
  backfillNow?(entries: readonly StoreEntry[], since: number | undefined, requests?: readonly (LookupRequest | undefined)[]): void
  /**
   * Optional, for stores in this process's memory: a chain's put, `batchPutEntries(entries)`, done at
   * once in this process, so that a chain makes it while the layers below take the same values. It
   * returns the put's end, which the chain calls once every layer below holds the values (or failed
   * to), exactly once: it drops a copy that took a put's place meanwhile (the put's copy pushed out,
   * then a backfill of what a layer below still held), and tells other processes (an invalidation
   * bus's publish), so that none reads a layer below before the values land there. It throws what
   * `batchPutEntries` would reject with; the end rejects as that call's telling would. A wrapper
   * (`StoreDecorator`) does not forward it.
   */
  putNow?(entries: readonly StoreEntry[]): () => Promise<void>
  /**
   * Drops the copies this store holds for these lookups, leaving tombstones where the store keeps
   * them, because the objects changed elsewhere (another process, another service writing the
   * database). A no-op for a store that owns the truth. Optional for custom stores.
   */
  batchInvalidate?<M extends Model>(model: M, lookups: readonly Lookup<M>[], options?: InvalidateOptions): Promise<void>
  /**
   * Optional, for a store kept coherent with other processes (an invalidation bus): calls `listener`
   * each time objects may have changed elsewhere — the store dropped copies another process
   * invalidated (`coherent` true), or lost its bus (`coherent` false: until it is back, changes
   * elsewhere go unheard) or got it back (true) — so that a chain drops what it remembers beside its
   * layers (negative caching) too; called at once with `false` while the bus is down. Returns the
   * function that stops the calls.
   */
  onRemoteChange?(listener: (coherent: boolean) => void): () => void
  /** Releases connections. Idempotent; every call afterwards rejects with `StoreClosedError`. */
  close(): Promise<void>
}

/** The capabilities of a store that declares none (see {@link capabilities}). */
export const defaultCapabilities: StoreCapabilities = {
  authoritative: false,
  generatesKeys: false,
  expires: true,
  polymorphic: false,
  secondResolution: false,
  scoped: false,
  inProcess: false,
  leases: false,
  addOnlyBackfills: false,
  tombstones: false,
  staleReads: false,
  refillsExpired: false,
  refusesPuts: false,
  refusesDeletes: false,
}

/** Builds a capabilities object from the defaults. */
export function capabilities(overrides: Partial<StoreCapabilities>): StoreCapabilities {
  return Object.freeze({ ...defaultCapabilities, ...overrides })
}
