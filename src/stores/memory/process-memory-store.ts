import type { LRUCache } from 'lru-cache'
import {
  BaseStore,
  type GetEntriesOptions,
  type InvalidateOptions,
  type LookupRequest,
  type StoreCapabilities,
  type StoreEntry,
  type WriteItem,
} from '../../contracts/base-store.js'
import { Entry } from '../../contracts/batch-records.js'
import { checkCacheOptions, requestKeys } from '../../contracts/key-value-store.js'
import { encodeLookup, isPrimaryKeyText, keyForLookup, keyOfObjectFor, keysOfObject } from '../../core/key-encoding.js'
import type { Instance, Lookup, Model } from '../../core/model.js'
import { nameOption } from '../../core/option-values.js'
import { checkOptionNames } from '../../core/options.js'
import { describeModelIn, type KeyInfo, type ModelInfo } from '../../core/registry.js'
import { AliasIndex } from './alias-index.js'
import { BusLink } from './bus-link.js'
import { type CopyKeys, sizeOfCaptured } from './copy-keys.js'
import { corruptBatch, decodeHeld } from './decode-held.js'
import { InvalidationLog } from './invalidation-log.js'
import type { ProcessMemoryStoreOptions } from './memory-options.js'
import { memoryBounds, memoryCapabilities, PROCESS_MEMORY_STORE_OPTIONS, recordCache } from './memory-options.js'
import { expiryOfRecord, holdAliases, isLive, MemoryRecord, placeTombstones, replaced, sizeOf, sizeOfAliases } from './memory-record.js'
import { invalidatedSince, prepareCopies, prepareWrites } from './prepare-writes.js'
import { RecordArena } from './record-arena.js'

export { MAX_INVALIDATIONS } from './invalidation-log.js'
export { DEFAULT_MAX_SIZE, PROCESS_MEMORY_STORE_OPTIONS, type ProcessMemoryStoreOptions } from './memory-options.js'

/**
 * A cache layer in this process's memory, on lru-cache. Objects are held encoded, so every `get`
 * returns a fresh copy and mutating it (or the object you stored) never changes what the store holds.
 * Alternate keys point to the object's record and are removed with it, so a changed alternate key
 * misses at once. Bounded by `max` objects and/or `maxSize` bytes, least recently used first out.
 */
export class ProcessMemoryStore extends BaseStore {
  readonly name: string
  override readonly capabilities: StoreCapabilities
  readonly #records: LRUCache<string, MemoryRecord>
  readonly #aliases: AliasIndex
  /** Where the records' bytes live (slabs of this store's own; see RecordArena). */
  readonly #arena: RecordArena
  readonly #settings: ReturnType<typeof checkCacheOptions>
  readonly #bus: BusLink
  /** Until then (ms since the epoch) no backfill lands: copies read while invalidations may have been missed. */
  #refuseBackfillsUntil = 0
  /** When recently invalidated record keys were invalidated here (counted against `maxSize`, a quarter of it at most). */
  readonly #invalidations: InvalidationLog
  /** The operation named in a `get`'s errors (made once: `getNow` runs on every chain hit). */
  readonly #getWhere: string
  /** The operation named in a put's or backfill's errors. */
  readonly #putWhere: string
  /** The bound in bytes (`maxSize`), when the store has one. */
  readonly #maxSize: number | undefined
  /** With both bounds, the one in objects (kept by {@link #trim}, see {@link recordCache}). */
  readonly #maxCount: number | undefined

  /** @throws InvalidOptionError naming a bad or unknown option. */
  constructor(options: ProcessMemoryStoreOptions = {}) {
    super()
    checkOptionNames(typeof options?.name === 'string' ? options.name : 'memory', options, PROCESS_MEMORY_STORE_OPTIONS)
    this.name = nameOption('memory', options.name, 'memory')
    this.#getWhere = `${this.name} store get`
    this.#putWhere = `${this.name} store put`
    // (`prefix` is checked like any store's, and ignored: the map belongs to this store alone)
    this.#settings = checkCacheOptions(this.name, options)
    const { max, maxSize } = memoryBounds(this.name, options)
    this.#maxSize = maxSize
    this.#maxCount = maxSize === undefined ? undefined : max
    this.#arena = new RecordArena(maxSize)
    this.#invalidations = new InvalidationLog(maxSize === undefined ? undefined : maxSize / 4)
    this.#records = recordCache(max, maxSize, (record, key) => {
      this.#arena.release(record)
      this.#aliases.forget(record, key)
    })
    this.#aliases = new AliasIndex(this.#records, maxSize !== undefined, () => this.#trim(), this.#settings.polymorphic)
    this.capabilities = memoryCapabilities(this.#settings)
    this.#bus = new BusLink(this.name, options.bus, { evict: (keys) => this.evict(keys), clear: (fence) => this.#clear(fence) })
  }

  /** False while an invalidation bus is configured but disconnected: the layer then serves nothing. */
  get coherent(): boolean {
    return !this.#bus.down
  }

  /** Calls `listener` when copies were evicted for other processes' changes, or the bus went down or came back (see `Store.onRemoteChange`). */
  onRemoteChange(listener: (coherent: boolean) => void): () => void {
    return this.#bus.listen(listener)
  }

  /** Number of entries held: objects, and tombstones of recent deletes (expired ones until they are read or pushed out). */
  get size(): number {
    return this.#records.size
  }

  /**
   * Bytes accounted against `maxSize` (0 when only `max` bounds the store): records, aliases, the
   * slabs' unused bytes and the log of recent invalidations.
   */
  get calculatedSize(): number {
    if (this.#maxSize === undefined) return 0
    return this.#records.calculatedSize + this.#aliases.bytes + this.#arena.waste + this.#invalidations.bytes
  }

  /**
   * Drops every object and tombstone of this store at once (done when `clear` returns; the promise is
   * for the common `Store.clear` signature), in this process only: the same layer in other processes
   * keeps its copies. Reads that began before the clear cannot backfill what they read (reads that
   * begin after it fill the store as usual). With `fence: true` every backfill is also refused for a
   * tombstone lifetime (used when an invalidation channel reconnects).
   * @throws StoreClosedError (as a rejection) after `close()`.
   */
  async clear(options: { fence?: boolean | undefined } = {}): Promise<void> {
    this.assertOpen('clear')
    this.#clear(options.fence === true)
    this.#invalidations.forgetAll()
  }

  #clear(fence: boolean): void {
    // Aliases first, so that lru-cache's disposal of each record finds none to delete.
    this.#arena.clear(() => this.#aliases.clear())
    if (fence) {
      this.#refuseBackfillsUntil = this.#settings.clock.now() + this.#settings.tombstoneMs
      this.#invalidations.forgetAll()
    }
  }

  override async get<M extends Model>(model: M, lookup: Lookup<M>): Promise<Instance<M> | undefined> {
    return this.getNow(model, lookup)
  }

  /**
   * `get` answered at once (what a chain serves its hits through): the object, a fresh copy, or
   * `undefined` on a miss. @throws what `get` rejects with.
   */
  getNow<M extends Model>(model: M, lookup: Lookup<M>): Instance<M> | undefined {
    this.assertOpen('get')
    const info = describeModelIn(model, this.#getWhere)
    const spec = keyForLookup(info, lookup, this.#getWhere)
    const key = keyOfObjectFor(spec, lookup) ?? encodeLookup(info, lookup, this.#getWhere)
    if (this.#bus.down) return undefined
    return this.#read(info, spec, key, undefined, false, false) as Instance<M> | undefined
  }

  protected async readMany(
    info: ModelInfo,
    requests: readonly LookupRequest[],
    options: GetEntriesOptions = {},
  ): Promise<(StoreEntry | undefined)[]> {
    const keys = requestKeys(this.name, info, requests, '')
    if (this.#bus.down) return keys.map(() => undefined)
    const now = this.#settings.clock.now()
    const stale = options.stale === true
    const out: (StoreEntry | undefined)[] = new Array(keys.length)
    const read = (at: number) => this.#read(info, (requests[at] as LookupRequest).spec, keys[at] as string, now, stale, true) as StoreEntry
    let i = 0
    try {
      for (; i < keys.length; i++) out[i] = read(i)
      return out
    } catch (err) {
      throw corruptBatch(err, i, out, this.name, info.name, read) // a corrupt record fails its own lookups only
    }
  }

  /**
   * The object held under `key` (canonical, of key `spec`), as an entry (`entry`) or bare (a `get`);
   * `now` (ms) read only if it expires.
   */
  #read(info: ModelInfo, spec: KeyInfo, key: string, now: number | undefined, stale: boolean, entry: boolean): object | undefined {
    let recordKey = key
    // Only a key of the model's primary key can be a record key (a lookup of any other key is only an
    // alias), and it is an alias only where objects are also held under their ancestors' keys: each
    // lookup in a big hash table costs a cache miss or two.
    const primary = spec === info.primary
    let record = primary ? this.#records.get(key) : undefined
    if (record === undefined) {
      if (primary && !this.#settings.polymorphic) return undefined
      const target = this.#aliases.target(key)
      if (target === undefined) return undefined
      recordKey = target
      record = this.#records.get(target)
      if (record === undefined) return undefined
    }
    const expiresAt = expiryOfRecord(record)
    if (expiresAt !== undefined) {
      const at = now ?? this.#settings.clock.now()
      if (expiresAt <= at) {
        // Within the grace an expired copy stays for stale reads; past it, it goes.
        if (expiresAt + this.#settings.graceMs <= at) this.#records.delete(recordKey)
        if (!stale || expiresAt + this.#settings.graceMs <= at) return undefined
      }
    }
    if (record.bytes === undefined) return undefined
    const value = decodeHeld(this.#records, recordKey, record.bytes, this.name, info.name)
    if (value === undefined || !(value instanceof (info.model as unknown as new () => object))) return undefined
    if (!entry) return value
    // The held envelope goes with the entry: a backfill of it into another layer copies these bytes
    // (restampRecord) instead of encoding the object again; nothing writes into them.
    return new Entry(value, expiresAt, record.bytes)
  }

  protected async writeMany(items: readonly WriteItem[]): Promise<void> {
    const published = this.#write(items)
    if (published.length > 0) await this.#bus.publish(published)
  }

  /**
   * A chain's put done at once (see `Store.putNow`): what `batchPutEntries(entries)` does in this
   * process. The function returned ends it at the chain's turn for this layer: a copy that took a
   * put's place meanwhile (the put's copy pushed out, then a backfill of what the layers below still
   * held) is dropped as a delete drops it, and the keys are published on the bus.
   * @throws what `batchPutEntries` rejects with (StoreClosedError, UnknownModelError, SerializationError).
   */
  putNow(entries: readonly StoreEntry[]): () => Promise<void> {
    this.assertOpen('put')
    const held: [string, MemoryRecord | undefined][] = []
    const items = this.items(
      entries.map((e) => e.value),
      'put',
      'batchPutEntries',
      entries,
    )
    const published = this.#write(items, held)
    return async () => {
      const lost = replaced(this.#records, held)
      if (lost.length > 0) this.#tombstone(lost)
      if (published.length > 0) await this.#bus.publish(published)
    }
  }

  /**
   * A chain's backfill done at once (see `Store.backfillNow`): what `batchPutEntries(entries,
   * { backfill: true, since })` does, without a promise. A backfill publishes nothing on the bus.
   * `requests`: the reads that found the entries (their keys serve as record keys where they match).
   * @throws what `batchPutEntries` rejects with (StoreClosedError, UnknownModelError, SerializationError).
   */
  backfillNow(entries: readonly StoreEntry[], since: number | undefined, requests?: readonly (LookupRequest | undefined)[]): void {
    this.assertOpen('put')
    const now = this.#settings.clock.now()
    const { keys, expiries } = prepareCopies(entries, requests, this.#settings, now, this.#putWhere, (obj) => this.describeItem(obj, 'put'))
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i] as StoreEntry
      const copyKeys = keys[i] as CopyKeys
      if (this.#bus.down) this.#records.delete(copyKeys.record)
      else this.#land(copyKeys, expiries[i] as number | undefined | null, entry.value, entry.encoded, since, now)
    }
  }

  /**
   * Stores `items` (puts, puts of lifetimes already over — removed as deletes are —, backfills); returns
   * the keys to publish. `held` gets each put's record key and the record held (`undefined`: none).
   */
  #write(items: readonly WriteItem[], held?: [string, MemoryRecord | undefined][]): string[] {
    try {
      const now = this.#settings.clock.now()
      const writes = prepareWrites(items, this.#settings, now, this.#putWhere, this.#arena)
      if (this.#bus.down) {
        for (const { keys } of writes) this.#records.delete(keys.record)
        return writes.filter((w) => w.item.backfill !== true).map((w) => w.keys.record)
      }
      const published: string[] = []
      for (const { item, keys, expiresAt, bytes } of writes) {
        if (item.backfill !== true) {
          published.push(keys.record)
          this.#aliases.yieldTo(keys.record)
          const record =
            bytes !== undefined && expiresAt !== null ? new MemoryRecord(bytes, holdAliases(keys.aliases), undefined) : undefined
          const stored = record !== undefined && this.#set(keys.record, record)
          held?.push([keys.record, stored ? record : undefined])
          if (record === undefined) {
            // Not cached, but invalidated as a delete is (review: a plain delete let a copy read before it land).
            this.#tombstone([keys.record])
            this.#aliases.dropDangling(keys.aliases)
          }
          continue
        }
        this.#land(keys as CopyKeys, expiresAt, item.obj, item.encoded, item.since, now)
      }
      return published
    } finally {
      // Puts are cut from the arena before any is held: what none holds is waste from now on.
      this.#arena.settle()
      this.#trim()
    }
  }

  /**
   * Stores a backfill's copy (`encoded`, its envelope when known) where it may land: not expired
   * (`expiresAt` null), not during a fence, not invalidated here after the read began (`since`), and
   * only where nothing live is held — not over a newer put, not over a tombstone.
   */
  #land(
    keys: CopyKeys,
    expiresAt: number | undefined | null,
    obj: object,
    encoded: Uint8Array | undefined,
    since: number | undefined,
    now: number,
  ): void {
    if (expiresAt === null || now < this.#refuseBackfillsUntil) return
    // Invalidated since the read began, however long ago: the copy may predate the invalidation.
    if (since !== undefined && invalidatedSince(this.#invalidations, keys, since)) return
    if (isLive(this.#records.peek(keys.record), now) || this.#aliases.isAncestorKey(keys.record)) return
    const bytes = this.#arena.envelope(obj, expiresAt, encoded, this.#putWhere)
    this.#set(keys.record, new MemoryRecord(bytes, holdAliases(keys.aliases), undefined, keys.captured), keys.info, false)
  }

  /** Stores `record` under `recordKey`, indexes its aliases (later, for captured values of model `info`); `put` false: a backfill's. */
  #set(recordKey: string, record: MemoryRecord, info?: ModelInfo, put = true): boolean {
    const captured = record.captured
    let aliases = 0
    const own = this.#arena.hold(record)
    if (this.#maxSize === undefined) this.#records.set(recordKey, record)
    else {
      const size = sizeOf(record, recordKey) + own // given, so lru-cache does not compute it again
      aliases = captured === undefined ? sizeOfAliases(record.aliases) : sizeOfCaptured(info, captured)
      // Bigger than the whole bound: not held, and what the key held goes, as lru-cache does (a put's as a
      // delete's: a copy read before it must not land in its place; review).
      if (size + aliases > this.#maxSize) {
        this.#arena.release(record)
        if (put) this.#tombstone([recordKey])
        else this.#records.delete(recordKey)
        return false
      }
      this.#records.set(recordKey, record, { size })
    }
    if (captured !== undefined) this.#aliases.defer(record, recordKey, info as ModelInfo, aliases)
    else if (record.aliases !== undefined) this.#aliases.point(record, recordKey, aliases, put)
    this.#trim()
    return true
  }

  protected async removeMany(items: readonly WriteItem[]): Promise<void> {
    const keys = items.map((item) => keysOfObject(item.info, item.obj, this.#settings.polymorphic, `${this.name} store delete`))
    this.#tombstone(keys.map((k) => k.record))
    for (const { aliases } of keys) this.#aliases.dropDangling(aliases)
    await this.#bus.publish(keys.map((k) => k.record))
  }

  /** A delete by key that found nothing is invalidated by alternate keys too: aliases here are exact (one resolving holds the current key). */
  protected override invalidatesMiss(): boolean {
    return true
  }

  protected override async invalidateMany(
    info: ModelInfo,
    requests: readonly LookupRequest[],
    options: InvalidateOptions = {},
  ): Promise<void> {
    const keys = requests.map((r) => encodeLookup(info, r.lookup, `${this.name} store invalidate`))
    // (in a polymorphic store a primary key too may be an alias: of a subclass's object)
    const primary = this.#settings.polymorphic ? undefined : info.primary
    const { records, unresolved } = this.#aliases.resolve(keys, (_, i) => (requests[i] as LookupRequest).spec !== primary)
    this.#tombstone(records, options.changedAt, unresolved)
    // Other processes must drop their copies too (a rejection here: a chain repairs and sends it again).
    await this.#bus.publish(records)
  }

  /** Drops the objects under these keys as a bus publishes them (an alias: its record here), leaving tombstones. */
  evict(keys: readonly string[]): void {
    const { records, unresolved } = this.#aliases.resolve(keys, (key) => this.#settings.polymorphic || !isPrimaryKeyText(key))
    this.#tombstone(records, undefined, unresolved)
  }

  /**
   * {@link evict} of the keys (records or aliases) this store holds a record of (a copy or a
   * tombstone); the others are left alone, with no tombstone: for a write whose backfills read before
   * it are refused elsewhere, as an AsyncLocalStore's writes to its other scopes' maps (its own log).
   */
  evictHeld(keys: readonly string[]): void {
    if (this.#records.size === 0) return
    const held = this.#aliases.held(keys)
    if (held !== undefined) this.#tombstone(held)
  }

  /** `aliases`: some of `recordKeys` may be alternate keys of objects not held here (see InvalidationLog). */
  #tombstone(recordKeys: readonly string[], changedAt?: number, aliases = false): void {
    placeTombstones(this.#records, this.#invalidations, this.#settings, recordKeys, changedAt, aliases)
    this.#trim()
  }

  /** Drops the least recently used records past `max` (when lru-cache keeps `maxSize`) and past `maxSize` (see calculatedSize). */
  #trim(): void {
    if (this.#maxCount !== undefined) while (this.#records.size > this.#maxCount) this.#records.pop()
    this.#arena.compact(this.#records)
    const maxSize = this.#maxSize
    if (maxSize !== undefined) while (this.#records.size > 0 && this.calculatedSize > maxSize) this.#records.pop()
  }

  protected override async release(): Promise<void> {
    this.#bus.close()
    this.#clear(false)
  }
}
