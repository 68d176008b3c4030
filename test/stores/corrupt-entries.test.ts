import fc from 'fast-check'
import { Redis } from 'ioredis'
import { describe, expect, inject, it } from 'vitest'
import { encodeAlias, encodeRecord, encodeTombstone } from '../../src/core/codec.js'
import {
  type CacheErrorEvent,
  ChainedStore,
  CorruptEntryError,
  canonicalKey,
  isStockpyleError,
  type KeyValueEntry,
  KeyValueStore,
  ProcessMemoryStore,
} from '../../src/index.js'
import { RedisStore } from '../../src/stores/redis/index.js'
import { ConformanceDoc, ConformanceUser, ManualClock, MapBackend, makeUser } from '../../src/testing/index.js'
import { selectedStores } from '../harness/servers.js'

const doc = new ConformanceDoc('d1', 1n, true, 1.5, { nested: [1, 'two', new Map([[3, 4]])] })
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
  it('give a miss, an instance of the model or a typed error; a corrupt entry is removed', async () => {
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
          if (err instanceof CorruptEntryError) expect((await backend.getMany([key]))[0]).toBeUndefined()
        }
      }),
      { numRuns: 500 },
    )
  })

  it('an empty value or another program’s value is a CorruptEntryError naming the store, model and key, and is removed', async () => {
    const backend = new MapBackend()
    const store = new KeyValueStore(backend, { prefix: 'p', name: 'kv' })
    for (const value of [Buffer.alloc(0), Buffer.from('{"hello":"json"}'), Buffer.from([1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x92, 0xd4])]) {
      await backend.setMany([{ key: recordKey, value, expiresAt: undefined }])
      const err = await store.get(ConformanceDoc, { id: 'd1' }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(CorruptEntryError)
      expect((err as Error).message).toMatch(
        /^kv store get of model `ConformanceDoc`: the entry under `"p:ConformanceDoc.*is corrupt: .*; it was removed$/,
      )
      expect(backend.size).toBe(0)
      expect(await store.get(ConformanceDoc, { id: 'd1' })).toBeUndefined()
    }
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
      'kv store get of model `ConformanceDoc`: the entry under `"p:ConformanceDoc|id=sABC"` is corrupt: it holds the record of another key, `"p:ConformanceDoc|id=sabc"`: the backend answered another key\'s entry for it (keys must be kept exactly: no case folding, no cutting); it was removed',
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
    expect(await exact.getMany([other])).toEqual([undefined])
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

  it('a chain reports a corrupt layer, answers from below, and the entry is removed then filled again; the circuit stays closed', async () => {
    const clock = new ManualClock()
    const backend = new MapBackend(() => clock.now())
    const middle = new KeyValueStore(backend, { prefix: 'p', name: 'kv', clock })
    const db = new ProcessMemoryStore({ name: 'db' })
    await db.put(doc)
    await backend.setMany([{ key: recordKey, value: Buffer.from('garbage!'), expiresAt: undefined }])
    const chain = new ChainedStore([new ProcessMemoryStore(), middle, db])
    const events: CacheErrorEvent[] = []
    chain.events.on('cacheError', (e: CacheErrorEvent) => events.push(e))
    expect(await chain.get(ConformanceDoc, { id: 'd1' })).toEqual(doc)
    expect(events.map((e) => [e.layer, e.operation, (e.error as Error).constructor.name])).toEqual([['kv', 'get', 'CorruptEntryError']])
    expect(chain.stats()[1]?.errors).toBe(1)
    // the layer answered (a corrupt entry is not an outage): its circuit stays closed, so the garbage
    // is replaced at once by the copy read from below, and other keys are read there as usual
    expect(await middle.get(ConformanceDoc, { id: 'd1' })).toEqual(doc)
    const other = new ConformanceDoc('d2', 2n, false, 2.5, {})
    await middle.put(other)
    expect(await chain.get(ConformanceDoc, { id: 'd2' })).toEqual(other)
    expect(chain.stats()[1]).toMatchObject({ hits: 1, skipped: 0, errors: 1 })
    clock.advance(5_000)
    const second = new ChainedStore([new ProcessMemoryStore(), middle, db])
    expect(await second.get(ConformanceDoc, { id: 'd1' })).toEqual(doc)
    expect(await middle.get(ConformanceDoc, { id: 'd1' })).toEqual(doc)
    expect(events).toHaveLength(1)
    await second.close()
  })
})

describe.runIf(selectedStores().has('redis'))('untrusted bytes in Redis', () => {
  it('a value another program wrote under the prefix is reported, read from below, and overwritten', async () => {
    const { url } = inject('redis')
    const prefix = `corrupt${process.pid}`
    const raw = new Redis(url)
    const redis = new RedisStore({ url, prefix })
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
      // removed, and replaced at once by the copy read from below (the layer answered: its circuit stays closed)
      expect(await redis.get(ConformanceDoc, { id: 'd1' })).toEqual(doc)
      expect(chain.stats()[0]).toMatchObject({ errors: 1, skipped: 0, backfills: 1 })
      expect(await raw.get(key)).not.toBe('not an envelope')
    } finally {
      await chain.close()
      raw.disconnect()
    }
  })
})
