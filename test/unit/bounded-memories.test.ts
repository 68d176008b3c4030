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
    const store = new ProcessMemoryStore()
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
