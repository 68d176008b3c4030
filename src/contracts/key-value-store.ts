import { decodeAlias, encodeTombstone, envelopeExpiry, envelopeKind, KIND_ALIAS } from '../core/codec.js'
import type { CorruptEntryError } from '../core/errors.js'
import { InvalidArgumentError, InvalidOptionError, isStockpyleError, show, UnsupportedOperationError } from '../core/errors.js'
import type { Lookup, Model } from '../core/model.js'
import { MAX_TIMER_MS, nameOption } from '../core/option-values.js'
import { checkOptionNames } from '../core/options.js'
import { isPartialFailure, type PartialFailureError } from '../core/partial-failure.js'
import type { ModelInfo } from '../core/registry.js'
import { BaseStore } from './base-store.js'
import { CACHE_OPTION_NAMES, checkCacheOptions, type KeyValueStoreOptions } from './cache-store-options.js'
import { dropCorrupt } from './drop-corrupt.js'
import type { KeyValueBackend } from './key-value-backend.js'
import { backendError, partialFailure, readCall, settledFailures, writeCall } from './key-value-failures.js'
import { type CorruptEntry, requestKeys, resolveEnvelopes } from './key-value-reads.js'
import { repairKeys } from './key-value-repairs.js'
import { prepareWrites, splitDeletes } from './key-value-writes.js'
import { leaseKeys } from './lease-keys.js'
import { sendBackfills } from './send-backfills.js'
import {
  capabilities,
  type GetEntriesOptions,
  type InvalidateOptions,
  type LookupRequest,
  type StoreCapabilities,
  type StoreEntry,
  type WriteItem,
} from './store.js'
import { writeTombstones } from './write-tombstones.js'

export {
  CACHE_OPTION_NAMES,
  type CacheStoreOptions,
  checkCacheOptions,
  DEFAULT_TOMBSTONE_LIFETIME,
  type KeyValueStoreOptions,
  pickCacheOptions,
} from './cache-store-options.js'
export { type CorruptEntry, requestKey, requestKeys, resolveEnvelopes } from './key-value-reads.js'
export { keysToDelete, type PreparedWrites, prepareWrites } from './key-value-writes.js'

const KEY_VALUE_STORE_OPTIONS = [...CACHE_OPTION_NAMES, 'name']

/**
 * A cache store over any byte-level {@link KeyValueBackend}: memcached, Redis, Keyv or your own.
 *
 * Each object is stored once, as a record under its primary key; every alternate key (and, when
 * `polymorphic`, every ancestor model's key) holds a small alias pointing to the record. A get by an
 * alternate key costs two backend round trips and returns a miss when the record no longer has that
 * key value — so a changed alternate key misses, and a delete of the record removes the object under
 * every key it was ever stored under.
 */
export class KeyValueStore extends BaseStore {
  readonly name: string
  override readonly capabilities: StoreCapabilities
  readonly #backend: KeyValueBackend
  readonly #settings: ReturnType<typeof checkCacheOptions>
  /**
   * The backend keeps entries past their expiry (whole-second resolution, memcached: up to ~2 s) and
   * can replace them atomically (`refillMany`): backfills and leases then go through `refillMany`.
   */
  readonly #keepsExpired: boolean

  /**
   * @throws InvalidOptionError for a bad or unknown option, a `name` (option, or the backend's) that is
   *   not a non-empty string, or a backend lacking a method.
   */
  constructor(backend: KeyValueBackend, options: KeyValueStoreOptions = {}) {
    super()
    const backendName = (backend as Partial<KeyValueBackend> | null | undefined)?.name
    if (backendName !== undefined && (typeof backendName !== 'string' || backendName === '')) {
      throw new InvalidOptionError(`KeyValueStore: the backend's \`name\` must be a non-empty string, got ${show(backendName)}`)
    }
    const given = (options as KeyValueStoreOptions | null | undefined)?.name
    checkOptionNames(typeof given === 'string' && given !== '' ? given : (backendName ?? 'KeyValueStore'), options, KEY_VALUE_STORE_OPTIONS)
    const name = nameOption(backendName ?? 'KeyValueStore', given, backendName ?? 'key-value')
    if (typeof backend?.getMany !== 'function' || typeof backend.setMany !== 'function' || typeof backend.deleteMany !== 'function') {
      throw new InvalidOptionError(`${name}: \`backend\` must implement getMany, setMany, deleteMany and close`)
    }
    this.name = name
    this.#backend = backend
    this.#settings = checkCacheOptions(name, options)
    this.#keepsExpired =
      backend.secondResolution === true && typeof backend.addMany === 'function' && typeof backend.refillMany === 'function'
    this.capabilities = capabilities({
      polymorphic: this.#settings.polymorphic,
      secondResolution: backend.secondResolution === true,
      leases: typeof backend.addMany === 'function',
      clearable: typeof backend.clear === 'function',
      // Without addMany a backfill is a plain set: it may replace a newer value or a tombstone.
      addOnlyBackfills: typeof backend.addMany === 'function',
      tombstones: typeof backend.addMany === 'function' && this.#settings.tombstoneMs > 0,
      staleReads: this.#settings.graceMs > 0,
      // An add-only backfill lands over an expired copy kept for grace only through refillMany. A
      // backend without addMany replaces expired copies too, but with plain sets that also replace live
      // copies and tombstones: not what the capability promises.
      refillsExpired: typeof backend.addMany === 'function' && typeof backend.refillMany === 'function',
    })
  }

  /** The backend this store writes to. */
  get backend(): KeyValueBackend {
    return this.#backend
  }

  /** What every key of this store starts with in its backend: `<prefix>:` (`''` for the prefix `''`). */
  get keyPrefix(): string {
    return this.#settings.prefix
  }

  protected async readMany(
    info: ModelInfo,
    requests: readonly LookupRequest[],
    options: GetEntriesOptions = {},
  ): Promise<(StoreEntry | undefined)[]> {
    const { prefix, clock, graceMs } = this.#settings
    const keys = requestKeys(this.name, info, requests, prefix)
    const grace = options.stale === true ? graceMs : 0
    try {
      if (options.partial !== true) {
        const found = await this.#backend.getMany(keys)
        const fetch = (targets: string[]) => this.#backend.getMany(targets)
        return await resolveEnvelopes(this.name, info, requests, keys, found, clock.now(), prefix, fetch, grace, (bad, failed, results) =>
          this.#dropCorrupt(info, bad, failed, results),
        )
      }
      return await this.#readPartial(info, requests, keys, grace)
    } catch (err) {
      throw backendError(this.name, readCall('get', info, requests), err)
    }
  }

  /**
   * Replaces entries that are not valid envelopes as a delete does, then reports them with the lookups they
   * `failed` and the other lookups' `results`: see {@link dropCorrupt}.
   */
  #dropCorrupt(info: ModelInfo, bad: readonly CorruptEntry[], failed: number[], results: (StoreEntry | undefined)[]): Promise<never> {
    return dropCorrupt(this.name, info.name, this.#backend, bad, this.#settings.clock.now(), this.#settings.tombstoneMs, failed, results)
  }

  /** `readMany` for a caller that handles partial failures: the lookups of failed nodes are reported, the rest answered. */
  async #readPartial(
    info: ModelInfo,
    requests: readonly LookupRequest[],
    keys: readonly string[],
    grace: number,
  ): Promise<(StoreEntry | undefined)[]> {
    const partial = { partial: true }
    const failures: PartialFailureError[] = []
    let found: readonly (Uint8Array | undefined)[]
    try {
      found = await this.#backend.getMany(keys, partial)
    } catch (err) {
      if (!isPartialFailure(err)) throw err
      failures.push(err)
      found = (err.results ?? new Array(keys.length)) as (Uint8Array | undefined)[]
    }
    const failedTargets = new Set<string>()
    let corrupt: CorruptEntryError | undefined
    const entries = await resolveEnvelopes(
      this.name,
      info,
      requests,
      keys,
      found,
      this.#settings.clock.now(),
      this.#settings.prefix,
      async (targets) => {
        try {
          return await this.#backend.getMany(targets, partial)
        } catch (err) {
          if (!isPartialFailure(err)) throw err
          failures.push(err)
          for (const t of err.failed) failedTargets.add(targets[t] as string)
          return (err.results ?? new Array(targets.length)) as (Uint8Array | undefined)[]
        }
      },
      grace,
      (bad, failed, results) => this.#dropCorrupt(info, bad, failed, results),
    ).catch((err: unknown) => {
      // Nodes failed too: one PartialFailureError names both, with every lost lookup (review: it hid them)
      if (failures.length === 0 || !isStockpyleError(err, 'E_CORRUPT_ENTRY') || (err as CorruptEntryError).results === undefined) throw err
      corrupt = err as CorruptEntryError
      return [...(corrupt.results as (StoreEntry | undefined)[])]
    })
    if (failures.length === 0) return entries
    const failed = new Set([...(failures[0]?.failed ?? []), ...(corrupt?.failed ?? [])])
    if (failedTargets.size > 0)
      found.forEach((bytes, i) => {
        if (bytes !== undefined && envelopeKind(bytes) === KIND_ALIAS && failedTargets.has(decodeAlias(bytes))) failed.add(i)
      })
    for (const i of failed) entries[i] = undefined
    throw partialFailure((p) => `${this.name} store ${readCall('get', info, requests, p)}`, failures, failed, entries, corrupt)
  }

  protected async writeMany(items: readonly WriteItem[]): Promise<void> {
    const settings = this.#settings
    const now = settings.clock.now()
    const prepared = prepareWrites(this.name, items, settings, now, this.#backend.maxValueBytes)
    try {
      // With a grace, backfills also replace records expired by now (kept only for stale reads); over a
      // backend that keeps entries past their expiry, also without one (and tombstones expired by now).
      // An exact backend without grace holds nothing expired: it keeps its plain adds.
      await this.#writePrepared(items, prepared, settings.graceMs > 0 || this.#keepsExpired ? now : undefined)
    } catch (err) {
      throw backendError(this.name, writeCall('put', items), err)
    }
  }

  /**
   * Sends prepared writes: backfills (add-only where the backend can; with `expiredBy`, through
   * `refillMany`, also over records expired by then), sets, tombstones (of puts not cached), deletes;
   * partial failures gathered (and named after `items`).
   */
  async #writePrepared(
    items: readonly WriteItem[],
    prepared: ReturnType<typeof prepareWrites>,
    expiredBy: number | undefined,
  ): Promise<void> {
    const { sets, setItems, backfills, tombstones, tombstoneItems, deletes, deleteItems } = prepared
    const failures: PartialFailureError[] = []
    const failed = new Set<number>()
    const partially = async (owners: readonly number[], call: () => Promise<unknown>): Promise<void> => {
      try {
        await call()
      } catch (err) {
        if (!isPartialFailure(err)) throw err
        failures.push(err)
        for (const i of err.failed) if ((owners[i] as number) >= 0) failed.add(owners[i] as number)
      }
    }
    if (backfills.length > 0) await sendBackfills(this.#backend, backfills, expiredBy, sets, setItems, partially, this.#settings, this.name)
    if (sets.length > 0) await partially(setItems, () => this.#backend.setMany(sets))
    if (tombstones !== undefined) await partially(tombstoneItems as number[], () => this.#tombstone(tombstones))
    if (deletes.length > 0) await partially(deleteItems, () => this.#backend.deleteMany(deletes))
    if (failures.length > 0) throw partialFailure((p) => `${this.name} store ${writeCall('put', items, p)}`, failures, failed)
  }

  protected async removeMany(items: readonly WriteItem[]): Promise<void> {
    const { polymorphic, prefix, tombstoneMs } = this.#settings
    const { records, recordItems, plain } = splitDeletes(this.name, items, polymorphic, prefix, tombstoneMs)
    const settled = await Promise.allSettled([
      records.length === 0 ? undefined : this.#tombstone(records),
      plain.length === 0 ? undefined : this.#backend.deleteMany(plain.map(([k]) => k)),
    ])
    const raw = settled.find((r) => r.status === 'rejected' && !isStockpyleError(r.reason)) as PromiseRejectedResult | undefined
    if (raw !== undefined) throw backendError(this.name, writeCall('delete', items), raw.reason)
    const owners = [recordItems, plain.map(([, i]) => i)]
    const { failures, failed } = settledFailures(settled, owners)
    const hard = settled.find((r) => r.status === 'rejected' && !isPartialFailure(r.reason)) as PromiseRejectedResult | undefined
    if (hard !== undefined) throw backendError(this.name, writeCall('delete', items), hard.reason)
    if (failures.length > 0) throw partialFailure((p) => `${this.name} store ${writeCall('delete', items, p)}`, failures, failed)
  }

  /** Replaces each key's entry by a tombstone (reads miss, backfills cannot land until it expires). */
  async #tombstone(keys: readonly string[], until?: number): Promise<void> {
    await writeTombstones(this.#backend, keys, until ?? this.#settings.clock.now() + this.#settings.tombstoneMs)
  }

  /**
   * Takes a lease on each lookup for `ttlMs` (see {@link LeaseCapable}); needs a backend with `addMany`.
   * A lease is a tombstone envelope under `<prefix>lease:<key>`, placed by its record's key `<prefix><key>`
   * (`KeyValueEntry.routeKey`: on a memcached pool, the record's server), added where it holds nothing; over
   * a backend that keeps entries past their expiry (memcached) also where it holds a lease whose ttl
   * has passed by this store's clock (`refillMany`), so a dead holder's lease blocks no one past its ttl.
   * @param ttlMs how long the lease lasts unless released, in ms: a number > 0 and < 2^31.
   * @throws InvalidArgumentError for any other `ttlMs`, before anything is sent; UnsupportedOperationError
   *   when the backend cannot add atomically; StoreUnavailableError.
   */
  async acquireLeases<M extends Model>(model: M, lookups: readonly Lookup<M>[], ttlMs: number): Promise<boolean[]> {
    this.assertOpen('acquireLeases')
    const addMany = this.#backend.addMany
    if (addMany === undefined) throw new UnsupportedOperationError(`${this.name} store cannot hand out leases: its backend has no addMany`)
    if (typeof ttlMs !== 'number' || !(ttlMs > 0 && ttlMs <= MAX_TIMER_MS)) {
      throw new InvalidArgumentError(`${this.name} store: acquireLeases takes a ttlMs in ms, > 0 and < 2^31, got ${show(ttlMs)}`)
    }
    const { info, requests } = this.requests(model, lookups, 'acquireLeases')
    const now = this.#settings.clock.now()
    const expiresAt = now + ttlMs
    const value = encodeTombstone(expiresAt)
    const { keys, routeKeys } = leaseKeys(this.name, info, requests, this.#settings.prefix)
    const entries = keys.map((key, i) => ({ key, value, expiresAt, routeKey: routeKeys[i] }))
    const refillMany = this.#backend.refillMany
    if (this.#keepsExpired && refillMany !== undefined) return refillMany.call(this.#backend, entries, now)
    return addMany.call(this.#backend, entries)
  }

  /** Gives leases back (idempotent). */
  async releaseLeases<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<void> {
    this.assertOpen('releaseLeases')
    const { info, requests } = this.requests(model, lookups, 'releaseLeases')
    const { keys, routeKeys } = leaseKeys(this.name, info, requests, this.#settings.prefix)
    await this.#backend.deleteMany(keys, { routeKeys })
  }

  /**
   * Whether a lease on each lookup is currently held (by anyone): its key holds a lease whose ttl has not
   * passed by this store's clock (the holder's clock set the end: clocks must agree, see docs/chaining.md).
   */
  async leasesHeld<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<boolean[]> {
    this.assertOpen('leasesHeld')
    const { info, requests } = this.requests(model, lookups, 'leasesHeld')
    const now = this.#settings.clock.now()
    const { keys, routeKeys } = leaseKeys(this.name, info, requests, this.#settings.prefix)
    const found = await this.#backend.getMany(keys, { routeKeys })
    return found.map((bytes) => bytes !== undefined && (envelopeExpiry(bytes) ?? Number.POSITIVE_INFINITY) > now)
  }

  protected override async invalidateMany(
    info: ModelInfo,
    requests: readonly LookupRequest[],
    options: InvalidateOptions = {},
  ): Promise<void> {
    const { prefix, polymorphic, tombstoneMs, clock } = this.#settings
    const keys = requestKeys(this.name, info, requests, prefix)
    const failed = new Set<number>()
    const failures: PartialFailureError[] = []
    let whole: unknown
    /** Runs a step; a partial failure's positions are mapped to request positions and collected. */
    const step = async (run: () => Promise<unknown>, requestOf: (position: number) => number): Promise<void> => {
      try {
        await run()
      } catch (err) {
        if (!isPartialFailure(err)) {
          whole ??= err
          return
        }
        for (const i of err.failed) failed.add(requestOf(i))
        failures.push(err)
      }
    }
    // An alternate key (or, when polymorphic, an ancestor model's key) holds an alias: the record it
    // points to must go too, or a get by the primary key would still find the copy.
    const records: { key: string; request: number }[] = []
    if (polymorphic || requests.some((r) => r.spec !== info.primary)) {
      let found: readonly (Uint8Array | undefined)[] = []
      await step(
        async () => {
          try {
            found = await this.#backend.getMany(keys)
          } catch (err) {
            // A partial read still resolves the aliases the other nodes hold; its failed positions stay failed.
            if (isPartialFailure(err) && err.results !== undefined) found = err.results as readonly (Uint8Array | undefined)[]
            throw err
          }
        },
        (i) => i,
      )
      found.forEach((bytes, i) => {
        if (bytes !== undefined && envelopeKind(bytes) === KIND_ALIAS) records.push({ key: decodeAlias(bytes), request: i })
      })
    }
    const now = clock.now()
    const until = Math.min(options.changedAt ?? now, now) + tombstoneMs
    // A repair (of a change made at `changedAt`) reads first, so that it never cuts short a tombstone
    // another process's later delete left; an invalidation made now always writes the longest one.
    const drop = (ks: readonly string[]): Promise<void> =>
      tombstoneMs === 0
        ? this.#backend.deleteMany(ks)
        : options.changedAt === undefined
          ? this.#tombstone(ks, until)
          : repairKeys(this.#backend, `${this.name} store repair`, ks, until, clock)
    // Failed positions of the keys are positions of the requests (one key each).
    await step(
      () => drop(keys),
      (i) => i,
    )
    if (records.length > 0)
      await step(
        () => drop(records.map((r) => r.key)),
        (i) => (records[i] as { request: number }).request,
      )
    if (whole !== undefined) throw backendError(this.name, readCall('invalidate', info, requests), whole)
    if (failures.length > 0)
      throw partialFailure((p) => `${this.name} store ${readCall('invalidate', info, requests, p)}`, failures, failed)
  }

  /**
   * Removes every entry under this store's prefix — records, aliases, tombstones and leases — through
   * the backend's `clear(prefix)`; entries of other prefixes on the same server stay.
   * @throws UnsupportedOperationError when the backend cannot remove keys by prefix; StoreUnavailableError.
   */
  async clear(): Promise<void> {
    this.assertOpen('clear')
    const clear = this.#backend.clear
    if (clear === undefined) {
      throw new UnsupportedOperationError(
        `${this.name} store cannot clear(): ${this.#settings.prefix === '' ? 'it has no prefix, and removing every key of its backend is refused' : 'its backend cannot remove keys by prefix'} (the backend has no clear(prefix))`,
      )
    }
    await clear.call(this.#backend, this.#settings.prefix)
  }

  protected override async release(): Promise<void> {
    await this.#backend.close()
  }
}
