import { describe, expect, it } from 'vitest'
import { ChainedStore, KeyValueStore, ProcessMemoryStore, StoreUnavailableError } from '../../src/index.js'
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
