import fc from 'fast-check'
import { Redis } from 'ioredis'
import { describe, expect, inject, it } from 'vitest'
import { encodeAlias, encodeRecord, encodeTombstone, envelopeExpiry, envelopeKind, KIND_TOMBSTONE } from '../../src/core/codec.js'
import {
  type CacheErrorEvent,
  ChainedStore,
  CorruptEntryError,
  canonicalKey,
  Entry,
  isStockpyleError,
  type KeyValueBackend,
  type KeyValueEntry,
  KeyValueStore,
  PartialFailureError,
  ProcessMemoryStore,
  type StoreEntry,
} from '../../src/index.js'
import { RedisBackend, RedisStore } from '../../src/stores/redis/index.js'
import { ConformanceDoc, ConformanceUser, ManualClock, MapBackend, makeUser } from '../../src/testing/index.js'
import { selectedStores } from '../harness/servers.js'

const doc = new ConformanceDoc('d1', 1n, true, 1.5, { nested: [1, 'two', new Map([[3, 4]])] })

/** Whether `bytes` is a tombstone envelope ending at `at` (ms since the epoch; any time when omitted). */
const isTombstone = (bytes: Uint8Array | undefined, at?: number): boolean =>
  bytes !== undefined && envelopeKind(bytes) === KIND_TOMBSTONE && (at === undefined || envelopeExpiry(bytes) === at)
const recordKey = `p:${canonicalKey(ConformanceDoc, { id: 'd1' })}`
const aliasKey = `p:${canonicalKey(ConformanceDoc, { code: 1n })}`

// Bytes a backend may hand back: random, truncated or bit-flipped envelopes, or a sound header over garbage.
const valid = [encodeRecord(doc, undefined), encodeAlias(recordKey, undefined), encodeTombstone(Date.now() + 60_000)]
const untrusted = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc.tuple(fc.constantFrom(...valid), fc.nat()).map(([b, n]) => b.subarray(0, n % (b.length + 1))),
  fc
    .tuple(fc.constantFrom(...valid), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 3 }))
    .map(([b, flips]) => {
      const copy = Buffer.from(b)
      for (const [at, bit] of flips) copy[at % copy.length] = (copy[at % copy.length] as number) ^ (1 << bit)
      return copy
    }),
  fc.uint8Array({ maxLength: 40 }).map((tail) => Buffer.concat([Buffer.from([1, 1, 0, 0, 0, 0, 0, 0, 0, 0]), tail])),
)

describe('untrusted bytes from a cache backend', () => {
  it('give a miss, an instance of the model or a typed error; a corrupt entry is replaced by a tombstone', async () => {
    await fc.assert(
      fc.asyncProperty(untrusted, fc.boolean(), async (bytes, underAlias) => {
        const backend = new MapBackend()
        const store = new KeyValueStore(backend, { prefix: 'p' })
        await store.put(doc)
        const key = underAlias ? aliasKey : recordKey
        await backend.setMany([{ key, value: bytes, expiresAt: undefined }])
        const lookup = underAlias ? { code: 1n } : { id: 'd1' }
        try {
          const got = await store.get(ConformanceDoc, lookup)
          expect(got === undefined || got instanceof ConformanceDoc).toBe(true)
        } catch (err) {
          expect(isStockpyleError(err)).toBe(true)
          if (err instanceof CorruptEntryError) expect(isTombstone((await backend.getMany([key]))[0])).toBe(true)
        }
      }),
      { numRuns: 500 },
    )
  })

  it('an empty value or another program’s value is a CorruptEntryError naming the store, model and key, and is replaced by a tombstone as a delete does', async () => {
    const clock = new ManualClock()
    const backend = new MapBackend(() => clock.now())
    const store = new KeyValueStore(backend, { prefix: 'p', name: 'kv', clock, tombstoneLifetime: 1.5 })
    for (const value of [Buffer.alloc(0), Buffer.from('{"hello":"json"}'), Buffer.from([1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x92, 0xd4])]) {
      await backend.setMany([{ key: recordKey, value, expiresAt: undefined }])
      const err = await store.get(ConformanceDoc, { id: 'd1' }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(CorruptEntryError)
      expect((err as Error).message).toMatch(
        /^kv store get of model `ConformanceDoc`: the entry under `"p:ConformanceDoc.*is corrupt: .*; it was replaced by a tombstone for 1500 ms$/,
      )
      expect(backend.size).toBe(1)
      expect(isTombstone((await backend.getMany([recordKey]))[0], clock.now() + 1500)).toBe(true)
      expect(await store.get(ConformanceDoc, { id: 'd1' })).toBeUndefined()
      // a backfill is refused until the tombstone ends, then lands
      await store.batchPutEntries([new Entry(doc, undefined)], { backfill: true })
      expect(await store.get(ConformanceDoc, { id: 'd1' })).toBeUndefined()
      clock.advance(1500)
      await store.batchPutEntries([new Entry(doc, undefined)], { backfill: true })
      expect(await store.get(ConformanceDoc, { id: 'd1' })).toEqual(doc)
      await backend.clear('p:')
    }
    // a store whose deletes are plain (tombstoneLifetime 0) deletes a corrupt entry plainly too
    const plainBackend = new MapBackend()
    const plain = new KeyValueStore(plainBackend, { prefix: 'p', name: 'kv', tombstoneLifetime: 0 })
    await plainBackend.setMany([{ key: recordKey, value: Buffer.from('garbage!'), expiresAt: undefined }])
    await expect(plain.get(ConformanceDoc, { id: 'd1' })).rejects.toThrow(/is corrupt: .*; it was removed$/)
    expect(plainBackend.size).toBe(0)
  })

  it('a corrupt entry whose tombstone cannot be written is still reported as corrupt, naming that failure too', async () => {
    /** A MapBackend whose writes fail (a server refusing them). */
    class ReadOnlyBackend extends MapBackend {
      override async setMany(): Promise<void> {
        throw new Error("READONLY You can't write against a read only replica.")
      }
    }
    const backend = new ReadOnlyBackend()
    const store = new KeyValueStore(backend, { prefix: 'p', name: 'kv' })
    await MapBackend.prototype.setMany.call(backend, [{ key: recordKey, value: Buffer.from('garbage!'), expiresAt: undefined }])
    const err = await store.get(ConformanceDoc, { id: 'd1' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(CorruptEntryError)
    expect((err as Error).message).toMatch(
      /is corrupt: .*; replacing it by a tombstone failed too \(READONLY You can't write against a read only replica\.\)$/,
    )
  })

  it('a record answered under a key that is not its own (a backend folding case or cutting keys) is a CorruptEntryError naming the key, not a hit', async () => {
    /** Folds keys to lower case, like a case-insensitive collation. */
    class FoldingBackend extends MapBackend {
      override getMany(keys: readonly string[]) {
        return super.getMany(keys.map((k) => k.toLowerCase()))
      }
      override setMany(entries: readonly KeyValueEntry[]) {
        return super.setMany(entries.map((e) => ({ ...e, key: e.key.toLowerCase() })))
      }
      override deleteMany(keys: readonly string[]) {
        return super.deleteMany(keys.map((k) => k.toLowerCase()))
      }
    }
    const backend = new FoldingBackend()
    const store = new KeyValueStore(backend, { prefix: 'p', name: 'kv' })
    const lower = new ConformanceDoc('abc', 2n, false, 2, 'lower')
    await store.put(lower)
    expect(await store.get(ConformanceDoc, { id: 'abc' })).toEqual(lower)
    const err = await store.get(ConformanceDoc, { id: 'ABC' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(CorruptEntryError)
    expect((err as Error).message).toBe(
      'kv store get of model `ConformanceDoc`: the entry under `"p:ConformanceDoc|id=sABC"` is corrupt: it holds the record of another key, `"p:ConformanceDoc|id=sabc"`: the backend answered another key\'s entry for it (keys must be kept exactly: no case folding, no cutting); it was replaced by a tombstone for 2000 ms',
    )
    expect(await store.get(ConformanceDoc, { id: 'abc' })).toBeUndefined()

    // the same bytes copied under another key of an exact backend: flagged too, in a batch with a hit
    const exact = new MapBackend()
    const plain = new KeyValueStore(exact, { prefix: 'p', name: 'kv' })
    await plain.put(doc)
    const [bytes] = await exact.getMany([recordKey])
    const other = `p:${canonicalKey(ConformanceDoc, { id: 'd2' })}`
    await exact.setMany([{ key: other, value: bytes as Uint8Array, expiresAt: undefined }])
    await expect(plain.batchGet(ConformanceDoc, [{ id: 'd1' }, { id: 'd2' }])).rejects.toThrow(
      /the entry under `"p:ConformanceDoc\|id=sd2"` is corrupt: it holds the record of another key, `"p:ConformanceDoc\|id=sd1"`/,
    )
    expect(isTombstone((await exact.getMany([other]))[0])).toBe(true)
    expect(await plain.get(ConformanceDoc, { id: 'd1' })).toEqual(doc)
  })

  it('a record read by primary key holding the key as another encoding of it is a hit: -0 for 0 and 0 for -0', async () => {
    const store = new KeyValueStore(new MapBackend(), { prefix: 'p' })
    const [zero, minusZero] = [makeUser(0), makeUser(1)]
    minusZero.id = -0
    minusZero.email = 'minus-zero@example.com'
    await store.put(zero)
    expect(await store.get(ConformanceUser, { id: -0 })).toEqual(zero)
    await store.put(minusZero)
    expect(await store.get(ConformanceUser, { id: 0 })).toEqual(minusZero)
  })

  it('a chain reports a corrupt layer, answers from below, and the entry is replaced by a tombstone, then filled again once it ends; the circuit stays closed', async () => {
    const clock = new ManualClock()
    const backend = new MapBackend(() => clock.now())
    const middle = new KeyValueStore(backend, { prefix: 'p', name: 'kv', clock, tombstoneLifetime: 1 })
    const db = new ProcessMemoryStore({ name: 'db' })
    await db.put(doc)
    await backend.setMany([{ key: recordKey, value: Buffer.from('garbage!'), expiresAt: undefined }])
    const chain = new ChainedStore([new ProcessMemoryStore(), middle, db])
    const events: CacheErrorEvent[] = []
    chain.events.on('cacheError', (e: CacheErrorEvent) => events.push(e))
    expect(await chain.get(ConformanceDoc, { id: 'd1' })).toEqual(doc)
    expect(events.map((e) => [e.layer, e.operation, (e.error as Error).constructor.name])).toEqual([['kv', 'get', 'CorruptEntryError']])
    expect(chain.stats()[1]?.errors).toBe(1)
    // the garbage is replaced by a tombstone, as a delete does: the backfill of the copy read from below
    // is refused until it ends (so is any other process's backfill of a copy it read before a delete)
    expect(isTombstone((await backend.getMany([recordKey]))[0], clock.now() + 1000)).toBe(true)
    expect(await middle.get(ConformanceDoc, { id: 'd1' })).toBeUndefined()
    // the layer answered (a corrupt entry is not an outage): its circuit stays closed, and other keys
    // are read there as usual
    const other = new ConformanceDoc('d2', 2n, false, 2.5, {})
    await middle.put(other)
    expect(await chain.get(ConformanceDoc, { id: 'd2' })).toEqual(other)
    expect(chain.stats()[1]).toMatchObject({ hits: 1, skipped: 0, errors: 1 })
    // once the tombstone has ended, the next miss refills the key from below
    clock.advance(1_000)
    const second = new ChainedStore([new ProcessMemoryStore(), middle, db])
    expect(await second.get(ConformanceDoc, { id: 'd1' })).toEqual(doc)
    expect(await middle.get(ConformanceDoc, { id: 'd1' })).toEqual(doc)
    expect(events).toHaveLength(1)
    await second.close()
  })
})

describe('a corrupt entry fails only its own lookups (review: it failed the read of the whole batch)', () => {
  const users = [makeUser(1), makeUser(2), makeUser(3)]
  const ids = users.map((u) => ({ id: u.id }))
  const userKey = (id: number) => `p:${canonicalKey(ConformanceUser, { id })}`

  it('KeyValueStore: a batchGet of 3 with the middle entry corrupt rejects with a CorruptEntryError whose failed is [1] and whose results hold the other two', async () => {
    const clock = new ManualClock()
    const backend = new MapBackend(() => clock.now())
    const store = new KeyValueStore(backend, { prefix: 'p', name: 'kv', clock })
    await store.batchPut(users)
    await backend.setMany([{ key: userKey(2), value: Buffer.from('not an envelope'), expiresAt: undefined }])
    const err = await store.batchGet(ConformanceUser, ids).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(CorruptEntryError)
    const corrupt = err as CorruptEntryError<StoreEntry>
    expect(corrupt.message).toMatch(
      /^kv store get of model `ConformanceUser`: the entry under `"p:ConformanceUser\|id=n2"` is corrupt: .*; it was replaced by a tombstone for 2000 ms$/,
    )
    expect(corrupt.failed).toEqual([1])
    expect(corrupt.results?.map((e) => e?.value)).toEqual([users[0], undefined, users[2]])
    expect(isTombstone((await backend.getMany([userKey(2)]))[0], clock.now() + 2000)).toBe(true)
    // a get of that key alone still rejects (another corrupt value), naming it
    await backend.setMany([{ key: userKey(2), value: Buffer.from('again'), expiresAt: undefined }])
    await expect(store.get(ConformanceUser, { id: 2 })).rejects.toBeInstanceOf(CorruptEntryError)
  })

  it('KeyValueStore: a corrupt entry and a failed node in one read give one PartialFailureError losing both lookups, naming both (review: the corrupt entry hid the node)', async () => {
    const clock = new ManualClock()
    const down = new Set<string>()
    class HalfDown extends MapBackend {
      override async getMany(keys: readonly string[], options?: { partial?: boolean }): Promise<(Uint8Array | undefined)[]> {
        const found = await super.getMany(keys)
        const failed = keys.flatMap((key, i) => (down.has(key) ? [i] : []))
        if (failed.length === 0) return found
        const results = found.map((v, i) => (failed.includes(i) ? undefined : v))
        throw new PartialFailureError('node n2 down', { failed, results, nodes: ['n2'] })
      }
    }
    const backend = new HalfDown(() => clock.now())
    const store = new KeyValueStore(backend, { prefix: 'p', name: 'kv', clock })
    await store.batchPut(users)
    await backend.setMany([{ key: userKey(2), value: Buffer.from('not an envelope'), expiresAt: undefined }])
    down.add(userKey(3))
    const err = await store.batchGetEntries(ConformanceUser, ids, { partial: true }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PartialFailureError)
    const partial = err as PartialFailureError<StoreEntry>
    expect(partial.failed).toEqual([1, 2])
    expect(partial.results?.map((e) => e?.value)).toEqual([users[0], undefined, undefined])
    expect(partial.message).toMatch(/node n2 down; and .*is corrupt/)
    expect(((partial.cause as AggregateError).errors ?? []).some((e) => e instanceof CorruptEntryError)).toBe(true)
    // through a chain: the three answered, the node failure reported (not a miss)
    const db = new ProcessMemoryStore({ name: 'db', tombstoneLifetime: 0 })
    await db.batchPut(users)
    await backend.setMany([{ key: userKey(2), value: Buffer.from('again'), expiresAt: undefined }])
    const events: CacheErrorEvent[] = []
    const chain = new ChainedStore([store, db])
    chain.events.on('cacheError', (e) => events.push(e))
    expect((await chain.batchGet(ConformanceUser, ids)).map((u) => u?.id)).toEqual([1, 2, 3])
    expect(events.map((e) => (e.error as Error).constructor.name)).toEqual(['PartialFailureError'])
    await chain.close()
  })

  it('KeyValueStore: corrupt records read through aliases fail every lookup that reached them, and only those; the message counts the others', async () => {
    const backend = new MapBackend()
    const store = new KeyValueStore(backend, { prefix: 'p', name: 'kv' })
    await store.batchPut(users)
    await backend.setMany([
      { key: userKey(1), value: Buffer.from('garbage one'), expiresAt: undefined },
      { key: userKey(3), value: Buffer.alloc(0), expiresAt: undefined },
    ])
    const lookups = [{ email: users[0]?.email }, { id: 1 }, { id: 2 }, { email: users[2]?.email }, { id: 2 }]
    const err = (await store.batchGet(ConformanceUser, lookups as never).catch((e: unknown) => e)) as CorruptEntryError<StoreEntry>
    expect(err).toBeInstanceOf(CorruptEntryError)
    expect(err.failed).toEqual([0, 1, 3])
    expect(err.results?.map((e) => e?.value)).toEqual([undefined, undefined, users[1], undefined, users[1]])
    expect(err.message).toMatch(/the entry under `"p:ConformanceUser\|id=n1"` \(and 1 more\) is corrupt/)
  })

  it('a chain [memory, KeyValueStore(MapBackend), db] answers all three, reading the db for the corrupt key only; reported once, the circuit stays closed', async () => {
    const backend = new MapBackend()
    const middle = new KeyValueStore(backend, { prefix: 'p', name: 'kv' })
    const db = new ProcessMemoryStore({ name: 'db' })
    await db.batchPut(users)
    await middle.batchPut(users)
    await backend.setMany([{ key: userKey(2), value: Buffer.from('not an envelope'), expiresAt: undefined }])
    const chain = new ChainedStore([new ProcessMemoryStore(), middle, db])
    const events: CacheErrorEvent[] = []
    chain.events.on('cacheError', (e: CacheErrorEvent) => events.push(e))
    expect(await chain.batchGet(ConformanceUser, ids)).toEqual(users)
    expect(events.map((e) => [e.layer, e.operation, (e.error as Error).constructor.name])).toEqual([['kv', 'get', 'CorruptEntryError']])
    expect(chain.stats().map((s) => [s.hits, s.misses, s.errors, s.skipped])).toEqual([
      [0, 3, 0, 0],
      [2, 0, 1, 0],
      [1, 0, 0, 0],
    ])
    // under onCacheError 'throw' the call rejects with it
    await backend.setMany([{ key: userKey(2), value: Buffer.from('not an envelope'), expiresAt: undefined }])
    const strict = new ChainedStore([new ProcessMemoryStore(), middle, db], { onCacheError: 'throw' })
    await expect(strict.batchGet(ConformanceUser, ids)).rejects.toBeInstanceOf(CorruptEntryError)
    await chain.close()
  })

  it('ProcessMemoryStore: a batchGet of 3 with the middle record corrupt rejects with failed [1] and the other two in results; a chain reads only that one below', async () => {
    const memory = new ProcessMemoryStore({ name: 'memory' })
    const spoil = async (id: number) => {
      // The entry's envelope is the store's own bytes: spoil the body behind the 10-byte header.
      const [entry] = await memory.batchGetEntries(ConformanceUser, [{ id }])
      entry?.encoded?.fill(0xc1, 10)
    }
    await memory.batchPut(users)
    await spoil(2)
    const err = (await memory.batchGet(ConformanceUser, ids).catch((e: unknown) => e)) as CorruptEntryError<StoreEntry>
    expect(err).toBeInstanceOf(CorruptEntryError)
    expect(err.message).toMatch(/^memory store get of model `ConformanceUser`: the entry under `"ConformanceUser\|id=n2"` is corrupt/)
    expect(err.failed).toEqual([1])
    expect(err.results?.map((e) => e?.value)).toEqual([users[0], undefined, users[2]])
    expect(await memory.get(ConformanceUser, { id: 2 })).toBeUndefined()
    // two corrupt: both fail, the message counts the second
    await memory.batchPut(users)
    await spoil(1)
    await spoil(3)
    const two = (await memory.batchGet(ConformanceUser, ids).catch((e: unknown) => e)) as CorruptEntryError<StoreEntry>
    expect(two.failed).toEqual([0, 2])
    expect(two.results?.map((e) => e?.value)).toEqual([undefined, users[1], undefined])
    expect(two.message).toMatch(/id=n1"` \(and 1 more\) is corrupt/)
    // in a chain: the db is read for the corrupt one only
    await memory.batchPut(users)
    await spoil(2)
    const db = new ProcessMemoryStore({ name: 'db' })
    await db.batchPut(users)
    const chain = new ChainedStore([memory, db])
    expect(await chain.batchGet(ConformanceUser, ids)).toEqual(users)
    expect(chain.stats().map((s) => [s.hits, s.misses, s.errors])).toEqual([
      [2, 0, 1],
      [1, 0, 0],
    ])
  })
})

describe.runIf(selectedStores().has('redis'))('untrusted bytes in Redis', () => {
  it('a value another program wrote under the prefix is reported, read from below, replaced by a tombstone, and refilled once it ends', async () => {
    const { url } = inject('redis')
    const prefix = `corrupt${process.pid}`
    const raw = new Redis(url)
    const redis = new RedisStore({ url, prefix, tombstoneLifetime: 0.1 })
    const db = new ProcessMemoryStore({ name: 'db' })
    const chain = new ChainedStore([redis, db])
    const events: CacheErrorEvent[] = []
    chain.events.on('cacheError', (e: CacheErrorEvent) => events.push(e))
    try {
      await db.put(doc)
      const key = `${prefix}:${canonicalKey(ConformanceDoc, { id: 'd1' })}`
      await raw.set(key, 'not an envelope')
      expect(await chain.get(ConformanceDoc, { id: 'd1' })).toEqual(doc)
      expect(events.map((e) => [e.layer, (e.error as Error).constructor.name])).toEqual([[redis.name, 'CorruptEntryError']])
      // replaced by a tombstone for tombstoneLifetime (Redis expires it): the backfill of the copy read
      // from below was refused, as any other process's backfill would be
      const [bytes] = await redis.backend.getMany([key])
      expect(isTombstone(bytes)).toBe(true)
      expect(await raw.pttl(key)).toBeLessThanOrEqual(100)
      expect(await redis.get(ConformanceDoc, { id: 'd1' })).toBeUndefined()
      // then the next read refills it from below (the layer answered: its circuit stays closed)
      await new Promise((resolve) => setTimeout(resolve, 150)) // Redis expires the tombstone by its own clock
      expect(await chain.get(ConformanceDoc, { id: 'd1' })).toEqual(doc)
      expect(await redis.get(ConformanceDoc, { id: 'd1' })).toEqual(doc)
      // (two backfills sent: the one the tombstone refused, the one that refilled)
      expect(chain.stats()[0]).toMatchObject({ errors: 1, skipped: 0, backfills: 2 })
      expect(events).toHaveLength(1)
    } finally {
      await chain.close()
      raw.disconnect()
    }
  })
})

/**
 * Wraps a real backend: every call goes to it; after the `getMany` armed by `pauseAfterNextGet` answered,
 * the caller waits (with the bytes read) until `release()`, so another writer can act in between.
 */
function pausing(inner: KeyValueBackend) {
  let armed: { reached: () => void; release: Promise<void> } | undefined
  const backend = new Proxy(inner, {
    get(target, name) {
      if (name === 'getMany') {
        return async (...args: Parameters<KeyValueBackend['getMany']>) => {
          const found = await target.getMany(...args)
          const gate = armed
          armed = undefined
          if (gate !== undefined) {
            gate.reached()
            await gate.release
          }
          return found
        }
      }
      const value = Reflect.get(target, name, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  /** Arms the pause: resolves once the next getMany has answered; call `release` to let it return. */
  const pauseAfterNextGet = () => {
    let release!: () => void
    const released = new Promise<void>((r) => {
      release = r
    })
    const reached = new Promise<void>((r) => {
      armed = { reached: r, release: released }
    })
    return { reached, release }
  }
  return { backend, pauseAfterNextGet }
}

/**
 * The race a plain delete of a corrupt entry lost (review): we read the corrupt bytes; process P2 deletes
 * the object (database first, then a tombstone over the corrupt bytes); our removal of the corrupt entry
 * must not remove that tombstone, or P3's add-only backfill of a copy it read from the database before
 * P2's delete lands the deleted object.
 */
async function corruptReadRacesADelete(inner: KeyValueBackend, options: ConstructorParameters<typeof KeyValueStore>[1]) {
  const { backend, pauseAfterNextGet } = pausing(inner)
  const ours = new KeyValueStore(backend, options)
  const other = new KeyValueStore(inner, options) // P2 and P3: other processes over the same server
  const key = `${options?.prefix}:${canonicalKey(ConformanceDoc, { id: 'd1' })}`
  await inner.setMany([{ key, value: Buffer.from('not an envelope'), expiresAt: undefined }])
  const pause = pauseAfterNextGet()
  const read = ours.get(ConformanceDoc, { id: 'd1' }).catch((e: unknown) => e)
  await pause.reached
  await other.delete(doc) // P2: its database delete committed, then its tombstone over the corrupt bytes
  pause.release()
  expect(await read).toBeInstanceOf(CorruptEntryError)
  // P3 read doc from the database before P2's delete: its add-only backfill arrives now
  await other.batchPutEntries([new Entry(doc, undefined)], { backfill: true })
  return { ours, other }
}

describe('a corrupt entry is replaced by a tombstone, never deleted plainly (review: a tombstone written in between was removed)', () => {
  it('MapBackend: a delete’s tombstone written between the corrupt read and its removal still refuses an older backfill', async () => {
    const clock = new ManualClock()
    const options = { prefix: 'p', clock, tombstoneLifetime: 2 }
    const { ours, other } = await corruptReadRacesADelete(new MapBackend(() => clock.now()), options)
    expect(await other.get(ConformanceDoc, { id: 'd1' })).toBeUndefined()
    expect(await ours.get(ConformanceDoc, { id: 'd1' })).toBeUndefined()
    // once the tombstone lifetime has passed, a backfill lands again
    clock.advance(2_000)
    await other.batchPutEntries([new Entry(doc, undefined)], { backfill: true })
    expect(await ours.get(ConformanceDoc, { id: 'd1' })).toEqual(doc)
  })

  it.runIf(selectedStores().has('redis'))(
    'Redis: a delete’s tombstone written between the corrupt read and its removal still refuses an older backfill',
    async () => {
      const client = new Redis(inject('redis').url)
      const backend = new RedisBackend({ client, ownsClient: false, timeout: 2000, clock: { now: Date.now }, name: 'redis' })
      const prefix = `race${process.pid}`
      const key = `${prefix}:${canonicalKey(ConformanceDoc, { id: 'd1' })}`
      try {
        const { ours, other } = await corruptReadRacesADelete(backend, { prefix, tombstoneLifetime: 60 })
        expect(await other.get(ConformanceDoc, { id: 'd1' })).toBeUndefined()
        expect(await ours.get(ConformanceDoc, { id: 'd1' })).toBeUndefined()
        expect(await client.pttl(key)).toBeGreaterThan(50_000)
      } finally {
        await client.del(key)
        await client.quit()
      }
    },
  )
})
