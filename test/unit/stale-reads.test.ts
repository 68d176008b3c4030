import { describe, expect, it } from 'vitest'
import { ChainedStore, canonicalKey, KeyValueStore, ProcessMemoryStore, StoreUnavailableError } from '../../src/index.js'
import { ConformanceUser, FaultStore, ManualClock, MapBackend, makeUser } from '../../src/testing/index.js'

/** A chain [cache keeping expired copies for an hour, database] serving stale copies while the database fails. */
function staleChain(options: ConstructorParameters<typeof ChainedStore>[1] = {}) {
  const clock = new ManualClock()
  const cache = new FaultStore(new KeyValueStore(new MapBackend(() => clock.now()), { clock, lifetime: 60, grace: 3600 }))
  const db = new FaultStore(new ProcessMemoryStore({ clock }))
  const chain = new ChainedStore([cache, db], { serveStale: true, breaker: false, clock, ...options })
  return { clock, cache, db, chain }
}

const version = (id: number, name: string) => Object.assign(makeUser(id), { name })

describe('serveStale', () => {
  it('serves an expired copy while the database fails, and rejects once it is past its grace', async () => {
    const { clock, db, chain } = staleChain()
    await chain.put(version(1, 'v1'))
    clock.advance(61_000)
    db.fail('get')
    expect((await chain.get(ConformanceUser, { id: 1 }))?.name).toBe('v1')
    clock.advance(3_600_000)
    await expect(chain.get(ConformanceUser, { id: 1 })).rejects.toBeInstanceOf(StoreUnavailableError)
  })

  for (const operation of ['put', 'delete'] as const) {
    it(`never serves a copy a resolved ${operation} left awaiting repair in the cache`, async () => {
      const { cache, db, chain } = staleChain()
      await chain.put(version(1, 'v1'))
      cache.fail('put', 'delete') // the cache takes neither the write nor its clean-up: the key awaits repair
      if (operation === 'put') await chain.put(version(1, 'v2'))
      else await chain.delete(version(1, 'v1'))
      expect(chain.stats()[0]?.pendingRepairs).toBe(1)
      db.fail('get')
      // the cache still holds v1 (not even expired); the chain knows it is outdated
      await expect(chain.get(ConformanceUser, { id: 1 })).rejects.toBeInstanceOf(StoreUnavailableError)
      await expect(chain.batchGet(ConformanceUser, [{ id: 1 }])).rejects.toBeInstanceOf(StoreUnavailableError)
    })
  }

  it('never reads a fenced layer for stale copies', async () => {
    const { cache, db, chain } = staleChain({ maxPendingRepairs: 1 })
    await chain.batchPut([version(1, 'v1'), version(2, 'v1')])
    cache.fail('put', 'delete') // (its clear() too: the fence stays)
    await chain.batchPut([version(1, 'v2'), version(2, 'v2')]) // two repairs past the bound of one: fenced
    db.fail('get')
    await expect(chain.get(ConformanceUser, { id: 1 })).rejects.toBeInstanceOf(StoreUnavailableError)
  })

  it('a corrupt entry in a cache layer fails only its own lookup on a stale read: the others are served from that layer (review: the whole layer was passed over)', async () => {
    const clock = new ManualClock()
    const damaged = `stockpyle:${canonicalKey(ConformanceUser, { id: 2 })}`
    /** A backend whose copy of one key is damaged on every read (replacing it does not help). */
    class DamagedBackend extends MapBackend {
      override async getMany(keys: readonly string[]) {
        const found = await super.getMany(keys)
        return keys.map((k, i) => (k === damaged ? Buffer.from('garbage') : found[i]))
      }
    }
    const kv = new KeyValueStore(new DamagedBackend(() => clock.now()), { name: 'kv', clock, lifetime: 60, grace: 3600 })
    const memory = new ProcessMemoryStore({ clock, lifetime: 60, grace: 3600 })
    const db = new FaultStore(new ProcessMemoryStore({ clock }))
    const chain = new ChainedStore([kv, memory, db], { serveStale: true, breaker: false, clock })
    await kv.batchPut([version(1, 'v1'), version(3, 'v1')])
    await memory.put(version(2, 'v1'))
    clock.advance(61_000)
    db.fail('get')
    const got = await chain.batchGet(ConformanceUser, [{ id: 1 }, { id: 2 }, { id: 3 }])
    expect(got.map((u) => [u?.id, u?.name])).toEqual([
      [1, 'v1'],
      [2, 'v1'],
      [3, 'v1'],
    ])
  })

  it('a batch with a lookup no cache holds rejects with the database failure: never a miss the database did not confirm', async () => {
    const clock = new ManualClock()
    const memory = new ProcessMemoryStore({ lifetime: 1, grace: 3600, clock })
    const db = new FaultStore(new ProcessMemoryStore())
    const chain = new ChainedStore([memory, db], { serveStale: true, missLifetime: 60, clock })
    await db.batchPut([version(1, 'v1'), version(2, 'v1')])
    await chain.get(ConformanceUser, { id: 1 }) // only #1 is copied into memory
    clock.advance(2000)
    db.fail('get')
    await expect(chain.batchGet(ConformanceUser, [{ id: 1 }, { id: 2 }])).rejects.toBeInstanceOf(StoreUnavailableError)
    expect((await chain.batchGet(ConformanceUser, [{ id: 1 }, { id: 1 }])).map((u) => u?.name)).toEqual(['v1', 'v1'])
    db.recover()
    // nothing was remembered as missing
    expect((await chain.get(ConformanceUser, { id: 2 }))?.name).toBe('v1')
  })
})
