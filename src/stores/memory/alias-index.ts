import type { LRUCache } from 'lru-cache'
import type { ModelInfo } from '../../core/registry.js'
import { aliasKeysOf, sizeOfCaptured } from './copy-keys.js'
import { eachAlias, type MemoryRecord, sizeOfAliases } from './memory-record.js'

/** How many deferred records one idle turn indexes (the rest waits for the next turn). */
const IDLE_CHUNK = 512

/**
 * A memory store's alternate keys: alias key → record key, each alias removed with its record.
 *
 * A copy a chain backfills from a layer below is indexed lazily: when it lands, only its
 * alternate-key values are taken ({@link captureAliases}; a copy whose values cannot be keys is indexed
 * at once, which refuses it before anything lands); its alias keys are made and entered, oldest copy
 * first, before the index is next used or changed — a read by an alternate key, a put, a delete, an
 * invalidation, the copy itself leaving (replaced, evicted, deleted) — or in the event loop's next
 * idle turns, whichever comes first. So every use sees exactly what indexing at once would have made,
 * while a read that backfills does not wait for it, and copies dropped by `clear()` never cost it.
 *
 * For a store bounded in bytes the index counts what the aliases hold ({@link bytes}), apart from
 * lru-cache's count of the records: a pending copy by its values' lengths, then exactly once its keys
 * are made. The store keeps the two together under its bound (its `trim`, which this calls after
 * indexing outside the store's own calls). Nothing here ever writes to lru-cache: `forget` runs inside
 * lru-cache's disposal, where a write would corrupt it.
 */
export class AliasIndex {
  #map = new Map<string, string>()
  /**
   * Records that landed with captured values, oldest first, from `#next` on (indexed ones are skipped);
   * the slots before `#next` are emptied as they are passed, and dropped ({@link #compact}) once they
   * are half the queue, so the queue holds no record the store no longer holds.
   */
  #pending: (MemoryRecord | undefined)[] = []
  /** The record key of each pending record (same positions). */
  #keys: (string | undefined)[] = []
  /** The model of each pending record (same positions). */
  #models: (ModelInfo | undefined)[] = []
  #next = 0
  #idle: NodeJS.Immediate | undefined = undefined
  /** Set while the store drops every record ({@link clear}): their aliases went with the old Map. */
  #clearing = false
  #bytes = 0
  /** The store's records (only read here, and cleared by {@link clear}). */
  readonly #records: LRUCache<string, MemoryRecord>
  /** Whether the store is bounded in bytes (aliases are then counted in {@link bytes}). */
  readonly #sized: boolean
  /** Whether the store is polymorphic: an ancestor model's key may then be another object's record key. */
  readonly #polymorphic: boolean
  /** Brings the store back under its bound after indexing that made aliases longer than counted. */
  readonly #trim: () => void

  constructor(records: LRUCache<string, MemoryRecord>, sized: boolean, trim: () => void, polymorphic = false) {
    this.#records = records
    this.#sized = sized
    this.#polymorphic = polymorphic
    this.#trim = trim
  }

  /** What the aliases of the held records count against a store's `maxSize` (0 when it has none). */
  get bytes(): number {
    return this.#bytes
  }

  /**
   * The record key alias `alias` points to, `undefined` when none. Making pending keys may bring the
   * store back under its bound first, so the record may be gone by then (a miss).
   */
  target(alias: string): string | undefined {
    if (this.#next < this.#pending.length) {
      this.#catchUp(Number.POSITIVE_INFINITY, undefined)
      this.#trim()
    }
    return this.#map.get(alias)
  }

  /**
   * Points the aliases of `record`, just stored under `recordKey`, to it; `bytes`: what they count
   * (sizeOfAliases; 0 for a store not bounded in bytes). The store trims afterwards.
   * In a polymorphic store an alias (an ancestor model's key) may be another object's record key: a
   * put (`put` true) takes the key, removing that record (the last write holds a key, as in a
   * key-value store); a backfill, add-only, leaves that key to the record. A tombstone there stays
   * (and a read by that key misses until it goes).
   */
  point(record: MemoryRecord, recordKey: string, bytes: number, put = true): void {
    if (this.#next < this.#pending.length) this.#catchUp(Number.POSITIVE_INFINITY, undefined)
    const aliases = record.aliases
    if (typeof aliases === 'string') this.#pointOne(aliases, recordKey, put)
    else if (aliases !== undefined) for (const alias of aliases) this.#pointOne(alias, recordKey, put)
    this.#bytes += bytes
  }

  #pointOne(alias: string, recordKey: string, put: boolean): void {
    // (a tombstone stays: it refuses backfills read before an invalidation, as under any alias)
    if (this.#polymorphic && this.#records.peek(alias)?.bytes !== undefined) {
      if (!put) return
      this.#records.delete(alias)
    }
    this.#map.set(alias, recordKey)
  }

  /**
   * Removes alias `key` (of another object) now that a put stores a record under it (the last write
   * holds a key); a no-op where the store is not polymorphic (a record key is then never an alias).
   */
  yieldTo(key: string): void {
    if (this.#polymorphic) this.#map.delete(key)
  }

  /**
   * Notes that `record`, just stored under `recordKey`, holds captured values of model `info` to index
   * later; `bytes`: what they count until then ({@link sizeOfCaptured}; 0 for a store not bounded in bytes).
   */
  defer(record: MemoryRecord, recordKey: string, info: ModelInfo, bytes: number): void {
    this.#pending.push(record)
    this.#keys.push(recordKey)
    this.#models.push(info)
    this.#bytes += bytes
    if (this.#idle === undefined) {
      this.#idle = setImmediate(() => this.#onIdle())
      this.#idle.unref()
    }
  }

  /** Removes the aliases of `record`, gone from under `recordKey` (lru-cache's dispose), that still point to it. */
  forget(record: MemoryRecord, recordKey: string): void {
    if (this.#clearing) return
    if (record.captured !== undefined) {
      // Indexed at once, its aliases would point to it now (unless a later copy took them): index the
      // copies up to it, then remove its aliases as for any record.
      this.#catchUp(Number.POSITIVE_INFINITY, record)
    }
    const aliases = record.aliases
    if (aliases === undefined) return
    if (this.#sized) this.#bytes -= sizeOfAliases(aliases)
    eachAlias(aliases, (alias) => {
      if (this.#map.get(alias) === recordKey) this.#map.delete(alias)
    })
  }

  /**
   * The record keys of invalidated `keys` (an alias: the record it points to, and the key itself too
   * when a record is also held under it; any other key as it is),
   * and whether one of them is `unresolved`: a key no alias or live record holds here (a tombstone may
   * be an earlier invalidation's of that same key) that `mayBeAlias` (called with it and its position)
   * says may be an alternate key, of an object the store does not hold.
   */
  resolve(keys: readonly string[], mayBeAlias: (key: string, i: number) => boolean): ResolvedKeys {
    let unresolved = false
    const records = new Array<string>(keys.length)
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string
      const target = this.target(key)
      records[i] = target ?? key
      // In a polymorphic store a key may be a record's and another object's alias at once (a tombstone
      // of a delete over an alias): both go.
      if (target !== undefined && target !== key && this.#records.peek(key) !== undefined) records.push(key)
      if (target === undefined && !unresolved && this.#records.peek(key)?.bytes === undefined) unresolved = mayBeAlias(key, i)
    }
    return new ResolvedKeys(records, unresolved)
  }

  /**
   * The record keys of those of `keys` (records or aliases) a record is held under (a copy or a
   * tombstone): an alias's record, and the key itself (in a polymorphic store a key may be both);
   * `undefined` when none.
   */
  held(keys: readonly string[]): string[] | undefined {
    let held: string[] | undefined
    for (const key of keys) {
      const target = this.target(key)
      if (target !== undefined && this.#records.peek(target) !== undefined) (held ??= []).push(target)
      if (target !== key && this.#records.peek(key) !== undefined) (held ??= []).push(key)
    }
    return held
  }

  /**
   * Whether record key `key` is held as another object's alias, an ancestor model's key of it (only in
   * a polymorphic store): a backfill, add-only, does not land there.
   */
  isAncestorKey(key: string): boolean {
    return this.#polymorphic && this.#map.has(key)
  }

  /** Removes those of `aliases` (of deleted objects) that point to a record no longer held or to a tombstone. */
  dropDangling(aliases: readonly string[]): void {
    for (const alias of aliases) {
      const target = this.target(alias)
      // An alias of another record is another object's key; only dangling ones go.
      if (target !== undefined && this.#records.get(target)?.bytes === undefined) this.#map.delete(alias)
    }
  }

  /** Drops every record of the store and every alias. */
  clear(): void {
    // A new Map, not `clear()`: V8 puts a cleared Map's next table in the old generation when its table
    // was there, and a dropped old table keeps the young keys it held alive through young GCs until a full GC.
    if (this.#map.size > 0) this.#map = new Map()
    this.#bytes = 0
    this.#forgetPending()
    if (this.#records.size === 0) return
    this.#clearing = true
    try {
      this.#records.clear()
    } finally {
      this.#clearing = false
    }
  }

  #forgetPending(): void {
    if (this.#pending.length > 0) {
      this.#pending = []
      this.#keys = []
      this.#models = []
    }
    this.#next = 0
    if (this.#idle !== undefined) {
      clearImmediate(this.#idle)
      this.#idle = undefined
    }
  }

  #onIdle(): void {
    this.#idle = undefined
    this.#catchUp(IDLE_CHUNK, undefined)
    this.#trim()
    if (this.#next < this.#pending.length) {
      this.#idle = setImmediate(() => this.#onIdle())
      this.#idle.unref()
    }
  }

  /** Indexes up to `count` pending records, oldest first, stopping after `until` (a record leaving now). */
  #catchUp(count: number, until: MemoryRecord | undefined): void {
    let done = 0
    const pending = this.#pending
    const keys = this.#keys
    const models = this.#models
    while (this.#next < pending.length && done < count) {
      const i = this.#next++
      const record = pending[i] as MemoryRecord
      const recordKey = keys[i] as string
      const info = models[i] as ModelInfo
      // Passed slots are emptied: a record gone from the store must not stay reachable from here.
      pending[i] = undefined
      keys[i] = undefined
      models[i] = undefined
      // indexed already (every pending record that left was indexed as it left)
      if (record.captured === undefined) continue
      done++
      this.#index(record, recordKey, info)
      if (record === until) break
    }
    if (this.#next === pending.length) this.#forgetPending()
    else if (this.#next >= IDLE_CHUNK && this.#next * 2 >= pending.length) this.#compact()
  }

  /**
   * Drops the passed slots before `#next`: with more copies landing per turn than an idle turn indexes,
   * `#next` never reaches the end and the queue would otherwise grow with every copy ever backfilled.
   * Done once they are half the queue, it moves each waiting slot at most as often as slots were passed.
   */
  #compact(): void {
    const next = this.#next
    const waiting = this.#pending.length - next
    this.#pending.copyWithin(0, next)
    this.#keys.copyWithin(0, next)
    this.#models.copyWithin(0, next)
    this.#pending.length = waiting
    this.#keys.length = waiting
    this.#models.length = waiting
    this.#next = 0
  }

  /** Makes and enters the aliases of pending `record`, held under `recordKey` (or leaving it now). */
  #index(record: MemoryRecord, recordKey: string, info: ModelInfo): void {
    const captured = record.captured
    let aliases: string[]
    try {
      aliases = aliasKeysOf(info, captured)
    } catch {
      // Not reached for values captureAliases accepted; indexing may run from a timer, where a throw
      // would end the host, and inside lru-cache's disposal, where the copy cannot be dropped: it is
      // left reachable by its primary key only.
      aliases = []
    }
    record.aliases = aliases.length === 0 ? undefined : aliases.length === 1 ? aliases[0] : aliases
    record.captured = undefined
    if (this.#sized) this.#bytes += sizeOfAliases(record.aliases) - sizeOfCaptured(info, captured)
    for (const alias of aliases) this.#map.set(alias, recordKey)
  }
}

/** Invalidated keys as record keys ({@link AliasIndex.resolve}). */
export class ResolvedKeys {
  constructor(
    /** The record key of each key (an alias's record, or the key itself). */
    readonly records: string[],
    /** Whether a key may be an alternate key of an object the store does not hold (filed as it is). */
    readonly unresolved: boolean,
  ) {}
}
