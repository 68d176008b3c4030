import { describe, expect, it } from 'vitest'
import { ChainedStore, InvalidOptionError, KeyValueStore, ProcessMemoryStore } from '../../src/index.js'
import { ConformanceUser, FaultStore, MapBackend, makeUser } from '../../src/testing/index.js'

/** Several "processes": each its own chain and memory layer, sharing one remote cache and one database. */
function processes(count: number, leases: boolean) {
  const shared = new MapBackend()
  const db = new FaultStore(new ProcessMemoryStore())
  const chains = Array.from(
    { length: count },
    () =>
      new ChainedStore(
        [new ProcessMemoryStore(), new KeyValueStore(shared, { prefix: 'lease-test' }), db],
        leases ? { leases: { wait: 2000 } } : {},
      ),
  )
  return { db, chains }
}

describe('leases: cross-process single-flight', () => {
  it('1,000 concurrent gets of one uncached object from 4 processes read the database once', async () => {
    const { db, chains } = processes(4, true)
    await db.put(makeUser(1))
    const before = db.calls.get
    const release = db.gate('get')
    const reads = Array.from({ length: 1000 }, (_, i) => (chains[i % 4] as ChainedStore).get(ConformanceUser, { id: 1 }))
    setTimeout(release, 20)
    const results = await Promise.all(reads)
    expect(results.every((r) => r?.id === 1)).toBe(true)
    expect(db.calls.get - before).toBe(1)
  })

  it('without leases each process reads the database once', async () => {
    const { db, chains } = processes(4, false)
    await db.put(makeUser(2))
    const before = db.calls.get
    const release = db.gate('get')
    const reads = Array.from({ length: 1000 }, (_, i) => (chains[i % 4] as ChainedStore).get(ConformanceUser, { id: 2 }))
    setTimeout(release, 20)
    await Promise.all(reads)
    expect(db.calls.get - before).toBe(4)
  })

  it('a miss in every layer releases the lease, and waiting processes fall through after `wait`', async () => {
    const { db, chains } = processes(2, true)
    const [a, b] = chains as [ChainedStore, ChainedStore]
    const t0 = performance.now()
    expect(await Promise.all([a.get(ConformanceUser, { id: 3 }), b.get(ConformanceUser, { id: 3 })])).toEqual([undefined, undefined])
    expect(performance.now() - t0).toBeLessThan(1000) // far below `wait`: the loser saw the lease released
    await db.put(makeUser(3))
    expect(await b.get(ConformanceUser, { id: 3 })).toEqual(makeUser(3))
  })

  it('needs a layer that can hand out leases', () => {
    expect(() => new ChainedStore([new ProcessMemoryStore(), new ProcessMemoryStore()], { leases: true })).toThrow(InvalidOptionError)
  })
})
