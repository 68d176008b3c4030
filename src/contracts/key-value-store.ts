import {
  decodeAlias,
  decodeRecord,
  encodeAlias,
  encodeRecord,
  encodeTombstone,
  envelopeExpiry,
  envelopeKind,
  envelopeProblem,
  KIND_ALIAS,
  KIND_RECORD,
  restampRecord,
} from '../core/codec.js'
import { CorruptEntryError, InvalidOptionError, show, UnsupportedOperationError, ValueTooLargeError } from '../core/errors.js'
import { encodeLookup, keyOfObjectFor, keysOfObject } from '../core/key-encoding.js'
import { type Clock, checkLifetime, expiryOf, type Lifetime, systemClock } from '../core/lifetime.js'
import type { Lookup, Model } from '../core/model.js'
import { checkOptionNames } from '../core/options.js'
import { isPartialFailure, PartialFailureError } from '../core/partial-failure.js'
import type { ModelInfo } from '../core/registry.js'
import {
  BaseStore,
  capabilities,
  type GetEntriesOptions,
  type InvalidateOptions,
  type LookupRequest,
  type StoreCapabilities,
  type StoreEntry,
  type WriteItem,
} from './base-store.js'
import type { KeyValueBackend, KeyValueEntry } from './key-value-backend.js'

/** Options shared by every cache store. */
export interface CacheStoreOptions {
  /**
   * Seconds (> 0), an absolute `Date` (every object expires then; a `Date` already past is refused), or a
   * callback per object; default: entries never expire. See {@link Lifetime}.
   */
  lifetime?: Lifetime
  /** Also index each object under every ancestor model's keys, so `get(Vehicle, …)` finds a `Car`. Default `false`. */
  polymorphic?: boolean
  /** Prepended to every key as `<prefix>:`; isolates applications sharing a server. Default `'stockpyle'`. */
  prefix?: string
  /** Time source for expiry (ms since the epoch). Default: `Date.now`. */
  clock?: Clock
  /**
   * Seconds a delete leaves a tombstone under the object's primary key, during which backfills of
   * copies read before the delete cannot land (reads miss as usual; a put replaces it at once).
   * `0` makes deletes plain. Default {@link DEFAULT_TOMBSTONE_LIFETIME}.
   */
  tombstoneLifetime?: number
  /**
   * Seconds an expired copy is kept past its lifetime for a chain that serves stale copies while its
   * database fails (`ChainedStore` option `serveStale`). Normal reads never return it. Default 0.
   */
  grace?: number
  /**
   * Spreads expiries so that objects written together do not expire together: each lifetime is
   * lengthened by a random fraction of itself up to this (0–1). Never shortens a lifetime. Default 0.
   */
  lifetimeJitter?: number
}

/** The names of {@link CacheStoreOptions}: every cache store accepts these. */
export const CACHE_OPTION_NAMES: readonly string[] = [
  'lifetime',
  'polymorphic',
  'prefix',
  'clock',
  'tombstoneLifetime',
  'grace',
  'lifetimeJitter',
]

/** The {@link CacheStoreOptions} (and `name`) among a store's options, for handing to {@link KeyValueStore}. */
export function pickCacheOptions(options: KeyValueStoreOptions): KeyValueStoreOptions {
  const out: Record<string, unknown> = {}
  for (const name of [...CACHE_OPTION_NAMES, 'name']) {
    if (Object.hasOwn(options, name)) out[name] = (options as Record<string, unknown>)[name]
  }
  return out as KeyValueStoreOptions
}

/** Seconds a delete's tombstone lasts by default: longer than any read should take. */
export const DEFAULT_TOMBSTONE_LIFETIME = 2

/** Options of {@link KeyValueStore}. */
export interface KeyValueStoreOptions extends CacheStoreOptions {
  /** Name used in messages and stats; default: the backend's name. */
  name?: string
}

/** Checks the options every cache store shares. @throws InvalidOptionError naming the option. */
export function checkCacheOptions(
  store: string,
  options: CacheStoreOptions,
): Required<Pick<CacheStoreOptions, 'polymorphic' | 'clock'>> & {
  lifetime: Lifetime | undefined
  prefix: string
  /** Tombstone lifetime in ms; 0 = plain deletes. */
  tombstoneMs: number
  /** ms */
  graceMs: number
  jitter: number
} {
  if (typeof options !== 'object' || options === null)
    throw new InvalidOptionError(`${store}: options must be an object, got ${show(options)}`)
  const prefix = options.prefix ?? 'stockpyle'
  if (typeof prefix !== 'string' || !/^[A-Za-z0-9_.~:-]{0,40}$/.test(prefix)) {
    throw new InvalidOptionError(`${store}: option \`prefix\` must be at most 40 characters of [A-Za-z0-9_.~:-], got ${show(prefix)}`)
  }
  if (options.polymorphic !== undefined && typeof options.polymorphic !== 'boolean') {
    throw new InvalidOptionError(`${store}: option \`polymorphic\` must be a boolean, got ${show(options.polymorphic)}`)
  }
  const clock = options.clock ?? systemClock
  if (typeof clock?.now !== 'function') throw new InvalidOptionError(`${store}: option \`clock\` must have a now() method`)
  const tombstone = options.tombstoneLifetime ?? DEFAULT_TOMBSTONE_LIFETIME
  if (typeof tombstone !== 'number' || !(tombstone >= 0) || !Number.isFinite(tombstone)) {
    throw new InvalidOptionError(`${store}: option \`tombstoneLifetime\` must be a number of seconds >= 0, got ${show(tombstone)}`)
  }
  const grace = options.grace ?? 0
  if (typeof grace !== 'number' || !(grace >= 0) || !Number.isFinite(grace)) {
    throw new InvalidOptionError(`${store}: option \`grace\` must be a number of seconds >= 0, got ${show(grace)}`)
  }
  const jitter = options.lifetimeJitter ?? 0
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) {
    throw new InvalidOptionError(`${store}: option \`lifetimeJitter\` must be a fraction from 0 to 1, got ${show(jitter)}`)
  }
  return {
    lifetime: checkLifetime(store, options.lifetime, clock.now()),
    polymorphic: options.polymorphic ?? false,
    prefix: prefix === '' ? '' : `${prefix}:`,
    clock,
    tombstoneMs: Math.ceil(tombstone * 1000),
    graceMs: Math.ceil(grace * 1000),
    jitter,
  }
}

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
  readonly backfills: { readonly record: KeyValueEntry; readonly aliases: KeyValueEntry[]; readonly item: number }[]
  readonly deletes: string[]
  /** Like `setItems`, for `deletes`. */
  readonly deleteItems: number[]
}

/**
 * Computes keys, expiry and envelopes for a batch of objects — every check (keys, serialization, size)
 * runs before the caller writes anything. An object whose lifetime is already over is deleted instead.
 */
export function prepareWrites(
  store: string,
  items: readonly WriteItem[],
  settings: {
    lifetime: Lifetime | undefined
    polymorphic: boolean
    prefix: string
    now: number
    maxValueBytes?: number | undefined
    graceMs?: number
    jitter?: number
  },
): PreparedWrites {
  const sets: KeyValueEntry[] = []
  const setItems: number[] = []
  const backfills: PreparedWrites['backfills'] = []
  const deletes: string[] = []
  const deleteItems: number[] = []
  const { prefix, now } = settings
  for (let index = 0; index < items.length; index++) {
    const item = items[index] as WriteItem
    const keys = keysOfObject(item.info, item.obj, settings.polymorphic, `${store} store put`)
    const expiresAt = expiryOf(settings.lifetime, item.obj, now, item.expiresAt, settings.jitter)
    const recordKey = prefix + keys.record
    if (expiresAt === null) {
      if (item.backfill !== true) {
        deletes.push(recordKey, ...keys.aliases.map((a) => prefix + a))
        deleteItems.push(index)
        for (let k = 0; k < keys.aliases.length; k++) deleteItems.push(-1)
      }
      continue
    }
    const value =
      (item.backfill === true && item.encoded !== undefined ? restampRecord(item.encoded, expiresAt) : undefined) ??
      encodeRecord(item.obj, expiresAt, `${store} store put`)
    if (settings.maxValueBytes !== undefined && value.length > settings.maxValueBytes) {
      throw new ValueTooLargeError(
        `${store} store put of model \`${item.info.name}\` ${show(keys.record)}: the encoded object is ${value.length} bytes, over the backend's limit of ${settings.maxValueBytes}`,
      )
    }
    // The backend keeps the entry through the grace period; the envelope holds the real expiry.
    const kept = expiresAt === undefined || !settings.graceMs ? expiresAt : expiresAt + settings.graceMs
    const record = { key: recordKey, value, expiresAt: kept }
    const aliases = keys.aliases.map((alias) => ({ key: prefix + alias, value: encodeAlias(recordKey, expiresAt), expiresAt: kept }))
    if (item.backfill === true) backfills.push({ record, aliases, item: index })
    else {
      sets.push(record, ...aliases)
      setItems.push(index)
      for (let k = 0; k < aliases.length; k++) setItems.push(-1)
    }
  }
  return { sets, setItems, backfills, deletes, deleteItems }
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

/** An entry a backend returned that is not a valid envelope: its key and why. */
export interface CorruptEntry {
  readonly key: string
  readonly reason: string
}

/**
 * Resolves looked-up envelopes into entries: records directly, aliases through one more `fetch` of
 * their record keys. An alias whose record no longer holds the looked-up key value is a miss, which
 * is how a changed alternate key stops answering without a read on the write path.
 *
 * Bytes that are not a valid envelope (see {@link envelopeProblem}) or a record that does not decode
 * are handed to `corrupt` once every entry is resolved (it removes them and throws); without it they
 * throw {@link CorruptEntryError} at once. A record of another `stockpyleVersion` is a miss.
 */
export async function resolveEnvelopes(
  info: ModelInfo,
  requests: readonly LookupRequest[],
  keys: readonly string[],
  found: readonly (Uint8Array | undefined)[],
  now: number,
  prefix: string,
  fetch: (keys: string[]) => Promise<(Uint8Array | undefined)[]> | (Uint8Array | undefined)[],
  graceMs = 0,
  corrupt?: (entries: CorruptEntry[]) => Promise<void>,
): Promise<(StoreEntry | undefined)[]> {
  // With a grace, copies expired less than graceMs ago are returned (stale reads only).
  const limit = now - graceMs
  const out: (StoreEntry | undefined)[] = new Array(requests.length).fill(undefined)
  let bad: CorruptEntry[] | undefined
  const flag = (key: string, reason: string) => {
    if (corrupt === undefined) throw new CorruptEntryError(`the entry under ${show(key)} is corrupt: ${reason}`)
    bad ??= []
    if (!bad.some((b) => b.key === key)) bad.push({ key, reason })
  }
  let pending: Map<string, number[]> | undefined
  for (let i = 0; i < requests.length; i++) {
    const bytes = found[i]
    if (bytes === undefined) continue
    const problem = envelopeProblem(bytes)
    if (problem !== undefined) {
      flag(keys[i] as string, problem)
      continue
    }
    const kind = envelopeKind(bytes)
    const expiresAt = envelopeExpiry(bytes)
    if (expiresAt !== undefined && expiresAt <= limit) continue
    if (kind === KIND_RECORD) {
      const entry = recordEntry(info, bytes, expiresAt, keys[i] as string, flag)
      if (entry !== undefined) out[i] = entry
    } else if (kind === KIND_ALIAS) {
      // (a tombstone, KIND_TOMBSTONE, is a miss)
      const target = decodeAlias(bytes)
      if (!target.startsWith(prefix)) {
        flag(keys[i] as string, `it is an alias to ${show(target)}, outside the prefix ${show(prefix)}`)
        continue
      }
      pending ??= new Map()
      const slots = pending.get(target)
      if (slots === undefined) pending.set(target, [i])
      else slots.push(i)
    }
  }
  if (pending !== undefined) {
    const targets = [...pending.keys()]
    const records = await fetch(targets)
    for (let t = 0; t < targets.length; t++) {
      const bytes = records[t]
      const target = targets[t] as string
      if (bytes === undefined) continue
      const problem = envelopeProblem(bytes)
      if (problem !== undefined) {
        flag(target, problem)
        continue
      }
      if (envelopeKind(bytes) !== KIND_RECORD) continue
      const expiresAt = envelopeExpiry(bytes)
      if (expiresAt !== undefined && expiresAt <= limit) continue
      for (const i of pending.get(target) as number[]) {
        const entry = recordEntry(info, bytes, expiresAt, target, flag)
        const request = requests[i] as LookupRequest
        if (entry !== undefined && prefix + keyOfObjectFor(request.spec, entry.value) === keys[i]) out[i] = entry
      }
    }
  }
  if (bad !== undefined && corrupt !== undefined) await corrupt(bad)
  return out
}

function recordEntry(
  info: ModelInfo,
  bytes: Uint8Array,
  expiresAt: number | undefined,
  key: string,
  flag: (key: string, reason: string) => void,
): StoreEntry | undefined {
  let value: object | undefined
  try {
    value = decodeRecord(bytes)
  } catch (err) {
    if (!(err instanceof CorruptEntryError)) throw err
    flag(key, err.message)
    return undefined
  }
  if (value === undefined || !(value instanceof (info.model as unknown as new () => object))) return undefined
  return { value, expiresAt, encoded: bytes }
}

/** The prefixed canonical key of each request. @throws InvalidKeyError. */
export function requestKeys(store: string, info: ModelInfo, requests: readonly LookupRequest[], prefix: string): string[] {
  const keys: string[] = new Array(requests.length)
  for (let i = 0; i < requests.length; i++) {
    const r = requests[i] as LookupRequest
    // The field set is already matched to a key (BaseStore); encodeLookup only to throw InvalidKeyError.
    keys[i] = prefix + (keyOfObjectFor(r.spec, r.lookup) ?? encodeLookup(info, r.lookup, `${store} store get`))
  }
  return keys
}

const KEY_VALUE_STORE_OPTIONS = [...CACHE_OPTION_NAMES, 'name']

const ascending = (a: number, b: number): number => a - b

/** One PartialFailureError for a store call from the backend's (their `failed` already mapped to the call's positions). */
function partialFailure(
  operation: string,
  failures: readonly PartialFailureError[],
  failed: number[],
  results?: (StoreEntry | undefined)[],
): PartialFailureError {
  const nodes = [...new Set(failures.flatMap((f) => f.nodes))]
  return new PartialFailureError(`${operation}: ${failed.length} item(s) on failed node(s) ${nodes.join(', ')}: ${failures[0]?.message}`, {
    failed,
    results,
    nodes,
    cause: failures.length === 1 ? failures[0] : new AggregateError(failures, `${operation} failures`),
  })
}

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

  /** @throws InvalidOptionError for a bad or unknown option. */
  constructor(backend: KeyValueBackend, options: KeyValueStoreOptions = {}) {
    super()
    const name = options?.name ?? backend?.name ?? 'key-value'
    checkOptionNames(name, options, KEY_VALUE_STORE_OPTIONS)
    if (typeof backend?.getMany !== 'function' || typeof backend.setMany !== 'function' || typeof backend.deleteMany !== 'function') {
      throw new InvalidOptionError(`${name}: \`backend\` must implement getMany, setMany, deleteMany and close`)
    }
    this.name = name
    this.#backend = backend
    this.#settings = checkCacheOptions(name, options)
    this.capabilities = capabilities({
      polymorphic: this.#settings.polymorphic,
      secondResolution: backend.secondResolution === true,
      leases: typeof backend.addMany === 'function',
      clearable: typeof backend.clear === 'function',
      // Without addMany a backfill is a plain set: it may replace a newer value or a tombstone.
      addOnlyBackfills: typeof backend.addMany === 'function',
      tombstones: typeof backend.addMany === 'function' && this.#settings.tombstoneMs > 0,
      staleReads: this.#settings.graceMs > 0,
    })
  }

  /** The backend this store writes to. */
  get backend(): KeyValueBackend {
    return this.#backend
  }

  protected async readMany(
    info: ModelInfo,
    requests: readonly LookupRequest[],
    options: GetEntriesOptions = {},
  ): Promise<(StoreEntry | undefined)[]> {
    const { prefix, clock, graceMs } = this.#settings
    const keys = requestKeys(this.name, info, requests, prefix)
    const grace = options.stale === true ? graceMs : 0
    if (options.partial !== true) {
      const found = await this.#backend.getMany(keys)
      const fetch = (targets: string[]) => this.#backend.getMany(targets)
      return resolveEnvelopes(info, requests, keys, found, clock.now(), prefix, fetch, grace, (bad) => this.#dropCorrupt(info, bad))
    }
    return this.#readPartial(info, requests, keys, grace)
  }

  /** Removes entries that are not valid envelopes, then reports them (a chain reads the layer below). */
  async #dropCorrupt(info: ModelInfo, bad: readonly CorruptEntry[]): Promise<never> {
    let removed = 'it was removed'
    try {
      await this.#backend.deleteMany(bad.map((b) => b.key))
    } catch (err) {
      removed = `removing it failed too (${(err as Error)?.message ?? show(err)})`
    }
    const first = bad[0] as CorruptEntry
    const more = bad.length > 1 ? ` (and ${bad.length - 1} more)` : ''
    throw new CorruptEntryError(
      `${this.name} store get of model \`${info.name}\`: the entry under ${show(first.key)}${more} is corrupt: ${first.reason}; ${removed}`,
    )
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
      found = (err.results ?? []) as (Uint8Array | undefined)[]
    }
    const failedTargets = new Set<string>()
    const entries = await resolveEnvelopes(
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
          return (err.results ?? []) as (Uint8Array | undefined)[]
        }
      },
      grace,
      (bad) => this.#dropCorrupt(info, bad),
    )
    if (failures.length === 0) return entries
    const failed = new Set(failures[0]?.failed)
    if (failedTargets.size > 0) {
      found.forEach((bytes, i) => {
        if (bytes !== undefined && envelopeKind(bytes) === KIND_ALIAS && failedTargets.has(decodeAlias(bytes))) failed.add(i)
      })
    }
    for (const i of failed) entries[i] = undefined
    throw partialFailure(`${this.name} store get`, failures, [...failed], entries)
  }

  protected async writeMany(items: readonly WriteItem[]): Promise<void> {
    const { lifetime, polymorphic, prefix, clock, graceMs, jitter } = this.#settings
    const { sets, setItems, backfills, deletes, deleteItems } = prepareWrites(this.name, items, {
      lifetime,
      polymorphic,
      prefix,
      now: clock.now(),
      maxValueBytes: this.#backend.maxValueBytes,
      graceMs,
      jitter,
    })
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
    const addSets = (entries: readonly KeyValueEntry[], item: number): void => {
      entries.forEach((entry, k) => {
        sets.push(entry)
        setItems.push(k === 0 ? item : -1)
      })
    }
    if (backfills.length > 0) {
      const addMany = this.#backend.addMany
      const addWithAliases = this.#backend.addWithAliases
      if (addMany === undefined) {
        for (const b of backfills) addSets([b.record, ...b.aliases], b.item)
      } else if (addWithAliases !== undefined) {
        // records added and their aliases set where added, in one call (one round trip)
        await partially(
          backfills.map((b) => b.item),
          () => addWithAliases.call(this.#backend, backfills),
        )
      } else {
        let added: readonly boolean[] = []
        await partially(
          backfills.map((b) => b.item),
          async () => {
            try {
              added = await addMany.call(
                this.#backend,
                backfills.map((b) => b.record),
              )
            } catch (err) {
              if (isPartialFailure(err)) added = (err.results ?? []) as boolean[]
              throw err
            }
          },
        )
        backfills.forEach((b, i) => {
          if (added[i] !== true) return
          for (const alias of b.aliases) {
            sets.push(alias)
            setItems.push(-1)
          }
        })
      }
    }
    if (sets.length > 0) await partially(setItems, () => this.#backend.setMany(sets))
    if (deletes.length > 0) await partially(deleteItems, () => this.#backend.deleteMany(deletes))
    if (failures.length > 0) throw partialFailure(`${this.name} store put`, failures, [...failed].sort(ascending))
  }

  protected async removeMany(items: readonly WriteItem[]): Promise<void> {
    const { polymorphic, prefix, tombstoneMs } = this.#settings
    const records: string[] = []
    const recordItems: number[] = []
    const others: string[] = []
    const otherItems: number[] = []
    const seen = new Set<string>()
    items.forEach((item, index) => {
      const keys = keysOfObject(item.info, item.obj, polymorphic, `${this.name} store delete`)
      const record = prefix + keysOfObject(item.info, item.obj, false, `${this.name} store delete`).record
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
    const settled = await Promise.allSettled([
      records.length === 0 ? undefined : this.#tombstone(records),
      plain.length === 0 ? undefined : this.#backend.deleteMany(plain.map(([k]) => k)),
    ])
    const failures: PartialFailureError[] = []
    const failed = new Set<number>()
    const owners = [recordItems, plain.map(([, i]) => i)]
    settled.forEach((result, phase) => {
      if (result.status === 'fulfilled') return
      if (!isPartialFailure(result.reason)) return
      failures.push(result.reason)
      for (const i of result.reason.failed) {
        const owner = owners[phase]?.[i] as number
        if (owner >= 0) failed.add(owner)
      }
    })
    const hard = settled.find((r) => r.status === 'rejected' && !isPartialFailure(r.reason)) as PromiseRejectedResult | undefined
    if (hard !== undefined) throw hard.reason
    if (failures.length > 0) throw partialFailure(`${this.name} store delete`, failures, [...failed].sort(ascending))
  }

  /** Replaces each key's entry by a tombstone (reads miss, backfills cannot land until it expires). */
  async #tombstone(keys: readonly string[], until?: number): Promise<void> {
    const expiresAt = until ?? this.#settings.clock.now() + this.#settings.tombstoneMs
    const value = encodeTombstone(expiresAt)
    await this.#backend.setMany(keys.map((key) => ({ key, value, expiresAt })))
  }

  /**
   * Takes a lease on each lookup for `ttlMs` (see {@link LeaseCapable}); needs a backend with `addMany`.
   * @throws StockpyleError when the backend cannot add atomically.
   */
  async acquireLeases<M extends Model>(model: M, lookups: readonly Lookup<M>[], ttlMs: number): Promise<boolean[]> {
    this.assertOpen('acquireLeases')
    const addMany = this.#backend.addMany
    if (addMany === undefined) throw new UnsupportedOperationError(`${this.name} store cannot hand out leases: its backend has no addMany`)
    const { info, requests } = this.requests(model, lookups, 'acquireLeases')
    const expiresAt = this.#settings.clock.now() + ttlMs
    const value = encodeTombstone(expiresAt)
    return addMany.call(
      this.#backend,
      this.#leaseKeys(info, requests).map((key) => ({ key, value, expiresAt })),
    )
  }

  /** Gives leases back (idempotent). */
  async releaseLeases<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<void> {
    this.assertOpen('releaseLeases')
    const { info, requests } = this.requests(model, lookups, 'releaseLeases')
    await this.#backend.deleteMany(this.#leaseKeys(info, requests))
  }

  /** Whether a lease on each lookup is currently held (by anyone). */
  async leasesHeld<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<boolean[]> {
    this.assertOpen('leasesHeld')
    const { info, requests } = this.requests(model, lookups, 'leasesHeld')
    const now = this.#settings.clock.now()
    const found = await this.#backend.getMany(this.#leaseKeys(info, requests))
    return found.map((bytes) => bytes !== undefined && (envelopeExpiry(bytes) ?? Number.POSITIVE_INFINITY) > now)
  }

  #leaseKeys(info: ModelInfo, requests: readonly LookupRequest[]): string[] {
    return requestKeys(this.name, info, requests, `${this.#settings.prefix}lease:`)
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
    const from = Math.min(options.changedAt ?? now, now)
    const drop = (ks: readonly string[]): Promise<void> =>
      tombstoneMs === 0 || from + tombstoneMs <= now ? this.#backend.deleteMany(ks) : this.#tombstone(ks, from + tombstoneMs)
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
    if (whole !== undefined) throw whole
    if (failures.length > 0) throw partialFailure(`${this.name} store invalidate`, failures, [...failed].sort(ascending))
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
        `${this.name} store cannot clear(): its backend cannot remove keys by prefix (it has no clear(prefix))`,
      )
    }
    await clear.call(this.#backend, this.#settings.prefix)
  }

  protected override async release(): Promise<void> {
    await this.#backend.close()
  }
}
