import { describe, expect, it } from 'vitest'
import { MAX_MISSES, MissCache } from '../../src/chain/miss-cache.js'
import { invalidationSequence } from '../../src/core/invalidation-sequence.js'
import { ProcessMemoryStore } from '../../src/index.js'
import { MAX_INVALIDATIONS } from '../../src/stores/memory/process-memory-store.js'
import { ConformanceUser, ManualClock, makeUser } from '../../src/testing/index.js'

/**
 * The bounded memories a store and a chain keep beside their objects: the last invalidation of each
 * record key (ProcessMemoryStore) and the lookups that missed everywhere (a chain's negative cache).
 * Each holds its newest 100,000 keys, and costs nothing until it holds one.
 */
describe('bounded memories', () => {
  it('a memory store remembers its last 100,000 invalidations: one more, and backfills read before the oldest are refused', async () => {
    // (a bound big enough for 100,000 keys in a quarter of it: see the next test)
    const store = new ProcessMemoryStore({ maxSize: 256 * 2 ** 20 })
    const since = invalidationSequence()
    const keys = Array.from({ length: MAX_INVALIDATIONS }, (_, i) => `Gone|id=n${i}`)
    store.evict(keys)
    // every invalidation is still remembered: a copy of an object none of them touched lands
    await store.batchPutEntries([{ value: makeUser(1), expiresAt: undefined }], { backfill: true, since })
    expect((await store.get(ConformanceUser, { id: 1 }))?.id).toBe(1)
    // the oldest is forgotten: a copy read before it may predate it, whatever its key
    store.evict(['Gone|id=n-1'])
    await store.batchPutEntries([{ value: makeUser(2), expiresAt: undefined }], { backfill: true, since })
    expect(await store.get(ConformanceUser, { id: 2 })).toBeUndefined()
    // a copy read after it lands
    await store.batchPutEntries([{ value: makeUser(2), expiresAt: undefined }], { backfill: true, since: invalidationSequence() })
    expect((await store.get(ConformanceUser, { id: 2 }))?.id).toBe(2)
  })

  it('a memory store’s log of invalidations counts against maxSize and holds at most a quarter of it', async () => {
    // The log held 100,000 keys (~17 MiB) outside the bound: a 1 MiB store grew 17.6 MiB after 300,000 deletes.
    const copy = { value: makeUser(1), expiresAt: undefined }
    const keys = Array.from({ length: 20_000 }, (_, i) => `Gone|id=n${i}`)
    const big = new ProcessMemoryStore({ maxSize: 256 * 2 ** 20 })
    const small = new ProcessMemoryStore({ maxSize: 2 ** 20 })
    const since = invalidationSequence()
    for (const store of [big, small]) for (let i = 0; i < keys.length; i += 1000) store.evict(keys.slice(i, i + 1000))
    // the big store remembers all 20,000: a copy read before them, of an object none of them touched, lands
    await big.batchPutEntries([copy], { backfill: true, since })
    expect(big.getNow(ConformanceUser, { id: 1 })?.id).toBe(1)
    // the small one remembers at most 256 KiB of keys (~1,300 here): the oldest are forgotten, and a
    // copy read before them may predate them, whatever its key
    await small.batchPutEntries([copy], { backfill: true, since })
    expect(small.getNow(ConformanceUser, { id: 1 })).toBeUndefined()
    await small.batchPutEntries([copy], { backfill: true, since: invalidationSequence() })
    expect(small.getNow(ConformanceUser, { id: 1 })?.id).toBe(1)
    // what it remembers is counted: with the tombstones and the objects, within the bound
    expect(small.calculatedSize).toBeLessThanOrEqual(2 ** 20)
    expect(small.calculatedSize).toBeGreaterThan(2 ** 20 / 8)
    // a key too long for the log is not remembered: it counts as forgotten
    const tiny = new ProcessMemoryStore({ maxSize: 2048 })
    const before = invalidationSequence()
    tiny.evict([`Gone|id=${'x'.repeat(600)}`])
    await tiny.batchPutEntries([copy], { backfill: true, since: before })
    expect(tiny.getNow(ConformanceUser, { id: 1 })).toBeUndefined()
  })

  it('a chain’s negative cache keeps its newest 100,000 misses', () => {
    const clock = new ManualClock()
    const misses = new MissCache(60_000, clock)
    misses.remember(Array.from({ length: MAX_MISSES }, (_, i) => `k${i}`))
    // (a lookup counts as a use: k0 is not looked at before the one more, so it stays the oldest)
    expect(misses.has(`k${MAX_MISSES - 1}`)).toBe(true)
    misses.remember(['one more'])
    expect(misses.has('k0')).toBe(false)
    expect(misses.has('k1')).toBe(true)
    expect(misses.has('one more')).toBe(true)
    clock.advance(60_000)
    expect(misses.has('one more')).toBe(false)
  })

  it('neither costs anything up front (lru-cache with `max` preallocated 100,000 slots: ~20 ms and ~2 MiB each)', () => {
    const started = performance.now()
    const kept: unknown[] = []
    for (let i = 0; i < 25; i++) kept.push(new ProcessMemoryStore(), new MissCache(1000, new ManualClock()))
    // 50 preallocating constructions took ~1 s here; without preallocation they take under 5 ms
    expect(performance.now() - started).toBeLessThan(250)
    expect(kept).toHaveLength(50)
  })
})
