import { describe, expect, inject, it } from 'vitest'
import {
  ChainedStore,
  type DecoratedOperation,
  InvalidOptionError,
  KeyValueStore,
  ProcessMemoryStore,
  StoreUnavailableError,
} from '../../src/index.js'
import { MemcacheStore } from '../../src/stores/memcache/index.js'
import { ConformanceUser, FaultStore, ManualClock, MapBackend, makeUser } from '../../src/testing/index.js'
import { closedAfterEach } from '../harness/closed-after-each.js'
import { selectedStores } from '../harness/servers.js'

/** Several "processes": each its own chain and memory layer, sharing one remote cache and one database. */
function processes(count: number, leases: boolean, wait = 2000) {
  const shared = new MapBackend()
  const db = new FaultStore(new ProcessMemoryStore())
  const chains = Array.from(
    { length: count },
    () =>
      new ChainedStore(
        [new ProcessMemoryStore(), new KeyValueStore(shared, { prefix: 'lease-test' }), db],
        leases ? { leases: { wait } } : {},
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

  it('a batch whose leases were won for some lookups and waited out for others gets each object in its own slot', async () => {
    const { db, chains } = processes(2, true, 50)
    const [a, b] = chains as [ChainedStore, ChainedStore]
    await db.batchPut([makeUser(10), makeUser(11), makeUser(12)])
    const release = db.gate('get')
    // b holds the lease on 10 while its database read is held; a wins 11 and 12, waits for 10 in vain,
    // then reads the database for them in the leases' order (its winners first): 11, 12, 10.
    const holding = b.get(ConformanceUser, { id: 10 })
    const batch = a.batchGet(ConformanceUser, [{ id: 10 }, { id: 11 }, { id: 12 }])
    setTimeout(release, 150)
    expect((await batch).map((u) => u?.id)).toEqual([10, 11, 12])
    expect((await holding)?.id).toBe(10)
  })

  it('a lease won just before the lease layer fails (onCacheError: throw) is given back when the read rejects', async () => {
    /** A lease layer that breaks right after it handed out a lease. */
    class BreaksAfterLease extends FaultStore {
      protected override async around<T>(operation: DecoratedOperation, args: readonly unknown[], call: () => Promise<T>): Promise<T> {
        const result = await super.around(operation, args, call)
        if (operation === 'acquireLeases') this.fail('get')
        return result
      }
    }
    const shared = new KeyValueStore(new MapBackend(), { prefix: 'lease-test' })
    const db = new ProcessMemoryStore()
    await db.put(makeUser(5))
    const chain = new ChainedStore([new ProcessMemoryStore(), new BreaksAfterLease(shared), db], {
      leases: { wait: 5000, ttl: 60_000 },
      onCacheError: 'throw',
      breaker: false,
    })
    await expect(chain.get(ConformanceUser, { id: 5 })).rejects.toBeInstanceOf(StoreUnavailableError)
    await new Promise((r) => setImmediate(r))
    // no other process waits for a lease nobody holds
    expect(await shared.leasesHeld(ConformanceUser, [{ id: 5 }])).toEqual([false])
  })

  it('needs a layer that can hand out leases', () => {
    expect(() => new ChainedStore([new ProcessMemoryStore(), new ProcessMemoryStore()], { leases: true })).toThrow(InvalidOptionError)
  })

  it('refuses the first layer as the lease layer, and says why and what to do', () => {
    const make = () =>
      new ChainedStore([new KeyValueStore(new MapBackend(), { name: 'shared' }), new ProcessMemoryStore()], { leases: true })
    expect(make).toThrow(InvalidOptionError)
    expect(make).toThrow(/below the first .*the first layer \(shared\) is read before leases are taken.*ProcessMemoryStore in front/)
    expect(
      new ChainedStore([new ProcessMemoryStore(), new KeyValueStore(new MapBackend()), new ProcessMemoryStore()], { leases: true }),
    ).toBeDefined()
  })
})

describe.runIf(selectedStores().has('memcached'))('leases on memcached, which keeps an item a second or two past its ttl', () => {
  const track = closedAfterEach()
  let prefixes = 0
  const uniquePrefix = (): string => `ls${process.pid}x${++prefixes}`
  const layer = (clock: ManualClock, prefix: string): MemcacheStore =>
    track(new MemcacheStore({ servers: inject('memcachedServers'), prefix, clock }))

  it('a lease past its ttl is no longer held and another process takes it over; a live one it cannot', async () => {
    const clock = new ManualClock()
    const prefix = uniquePrefix()
    const [a, b] = [layer(clock, prefix), layer(clock, prefix)]
    expect(await a.acquireLeases(ConformanceUser, [{ id: 1 }, { id: 2 }], 1000)).toEqual([true, true])
    clock.advance(999)
    expect(await b.acquireLeases(ConformanceUser, [{ id: 1 }], 1000)).toEqual([false])
    clock.advance(2) // memcached still holds both items (their exptime is rounded up, plus a second)
    expect(await b.leasesHeld(ConformanceUser, [{ id: 1 }, { id: 2 }])).toEqual([false, false])
    expect(await b.acquireLeases(ConformanceUser, [{ id: 1 }, { id: 1 }], 5000)).toEqual([true, false])
    expect(await a.leasesHeld(ConformanceUser, [{ id: 1 }, { id: 2 }])).toEqual([true, false])
    expect(await a.acquireLeases(ConformanceUser, [{ id: 1 }], 1000)).toEqual([false])
    await b.releaseLeases(ConformanceUser, [{ id: 1 }, { id: 2 }])
  })

  it('after a holder died, four processes missing its lookup once its ttl passed read the database once', async () => {
    const clock = new ManualClock()
    const prefix = uniquePrefix()
    const db = new FaultStore(new ProcessMemoryStore({ clock }))
    await db.put(makeUser(3))
    expect(await layer(clock, prefix).acquireLeases(ConformanceUser, [{ id: 3 }], 2000)).toEqual([true]) // never released
    const chains = Array.from({ length: 4 }, () =>
      track(new ChainedStore([new ProcessMemoryStore({ clock }), layer(clock, prefix), db], { clock, leases: { wait: 1000, ttl: 2000 } })),
    )
    clock.advance(2001)
    const release = db.gate('get')
    setTimeout(release, 50)
    const before = db.calls.get
    const got = await Promise.all(chains.map((c) => c.get(ConformanceUser, { id: 3 })))
    expect(got.map((u) => u?.id)).toEqual([3, 3, 3, 3])
    expect(db.calls.get - before, 'database reads for 4 processes').toBe(1)
  })
})
