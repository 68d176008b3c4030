import { describe, expect, it } from 'vitest'
import { ChainedStore, ProcessMemoryStore, type StoreCapabilities, StoreDecorator } from '../../src/index.js'
import { ConformanceUser, LocalBusHub, makeUser } from '../../src/testing/index.js'
import { heldSource } from './fixtures/held-source.js'

function twoProcesses() {
  const hub = new LocalBusHub()
  const db = new ProcessMemoryStore({ tombstoneLifetime: 0 })
  const memA = new ProcessMemoryStore({ bus: hub.connect() })
  const memB = new ProcessMemoryStore({ bus: hub.connect() })
  return { hub, db, memA, memB, a: new ChainedStore([memA, db]), b: new ChainedStore([memB, db]) }
}

describe('ProcessMemoryStore with an invalidation bus', () => {
  it('a put or delete in one process evicts the copy in the other', async () => {
    const { a, b, memB } = twoProcesses()
    const user = makeUser(1)
    await a.put(user)
    expect(await b.get(ConformanceUser, { id: 1 })).toEqual(user) // backfilled into memB
    user.name = 'renamed in A'
    await a.put(user)
    expect(await memB.get(ConformanceUser, { id: 1 })).toBeUndefined()
    expect((await b.get(ConformanceUser, { email: user.email }))?.name).toBe('renamed in A')
    await a.delete(user)
    expect(await b.get(ConformanceUser, { id: 1 })).toBeUndefined()
  })

  it('backfills do not publish; only writes do', async () => {
    const { hub, a, b } = twoProcesses()
    await a.put(makeUser(2))
    await b.get(ConformanceUser, { id: 2 })
    expect(hub.published).toHaveLength(1)
  })

  it('while the bus is down the layer serves nothing; it comes back empty', async () => {
    const { hub, a, b, memB } = twoProcesses()
    await a.put(makeUser(3))
    await b.get(ConformanceUser, { id: 3 })
    hub.down()
    expect(memB.coherent).toBe(false)
    expect(await memB.get(ConformanceUser, { id: 3 })).toBeUndefined()
    await a.get(ConformanceUser, { id: 3 }) // answered by the database
    await expect(a.put(makeUser(4))).resolves.toBeUndefined() // the publish failure is a reported cache error
    expect(a.stats()[0]?.errors).toBe(2) // the put, then the clean-up delete, both fail to publish
    hub.up()
    expect(memB.coherent).toBe(true)
    expect(memB.size).toBe(0)
    expect(await b.get(ConformanceUser, { id: 4 })).toEqual(makeUser(4))
  })

  it("negative caching hears the bus: another process's write is seen at once, and no miss is kept while the bus is down", async () => {
    const hub = new LocalBusHub()
    const db = new ProcessMemoryStore({ tombstoneLifetime: 0 })
    const a = new ChainedStore([new ProcessMemoryStore({ bus: hub.connect() }), db])
    // (through a wrapper: a decorator passes the bus's news on)
    const b = new ChainedStore([new StoreDecorator(new ProcessMemoryStore({ bus: hub.connect() })), db], { missLifetime: 60 })
    expect(await b.get(ConformanceUser, { id: 5 })).toBeUndefined() // remembered as missing in B
    await a.put(makeUser(5)) // published on the bus
    expect(await b.get(ConformanceUser, { id: 5 })).toEqual(makeUser(5))
    expect(await b.get(ConformanceUser, { email: makeUser(6).email })).toBeUndefined()
    hub.down()
    await db.put(makeUser(6)) // a write B cannot hear of
    expect(await b.get(ConformanceUser, { email: makeUser(6).email })).toEqual(makeUser(6))
    await db.delete(makeUser(6))
    expect(await b.get(ConformanceUser, { id: 6 })).toBeUndefined() // not remembered while the bus is down
    await db.put(makeUser(6))
    expect(await b.get(ConformanceUser, { id: 6 })).toEqual(makeUser(6))
    hub.up()
    await a.close()
    await b.close()
  })

  it("a miss read before another process's write is not remembered once the bus told of the write", async () => {
    const hub = new LocalBusHub()
    const { rows, release, store } = heldSource()
    const b = new ChainedStore([new ProcessMemoryStore({ bus: hub.connect() }), store], {
      missLifetime: 60,
    })
    const a = new ProcessMemoryStore({ bus: hub.connect() })
    const miss = b.get(ConformanceUser, { id: 7 }) // reads "absent", the answer held
    await new Promise((r) => setImmediate(r))
    rows.set(7, makeUser(7))
    await a.put(makeUser(7)) // another process writes, and its bus tells B
    release()
    expect(await miss).toBeUndefined()
    expect(await b.get(ConformanceUser, { id: 7 })).toEqual(makeUser(7))
  })

  it("a chain nested in another passes its layers' bus news on to the outer chain's negative caching", async () => {
    const hub = new LocalBusHub()
    const db = new ProcessMemoryStore({ tombstoneLifetime: 0 })
    const a = new ChainedStore([new ProcessMemoryStore({ bus: hub.connect() }), db])
    const inner = new ChainedStore([new ProcessMemoryStore({ bus: hub.connect() }), db])
    const outer = new ChainedStore([new ProcessMemoryStore(), new StoreDecorator(inner)], { missLifetime: 60 })
    expect(await outer.get(ConformanceUser, { id: 8 })).toBeUndefined()
    await a.put(makeUser(8))
    expect(await outer.get(ConformanceUser, { id: 8 })).toEqual(makeUser(8))
    hub.down()
    await db.delete(makeUser(8))
    expect(await outer.get(ConformanceUser, { id: 9 })).toBeUndefined()
    await db.put(makeUser(9))
    expect(await outer.get(ConformanceUser, { id: 9 })).toEqual(makeUser(9)) // no miss kept while the bus is down
    hub.up()
    await outer.close()
    await a.close()
  })

  it('chain.batchInvalidate drops cached copies in every cache layer, not in the database', async () => {
    const { memA, db } = twoProcesses()
    // The stand-in database declares what a database does: it owns the truth.
    const database = new (class extends StoreDecorator {
      override get capabilities(): StoreCapabilities {
        return { ...this.inner.capabilities, authoritative: true }
      }
    })(db)
    const a = new ChainedStore([memA, database])
    await a.put(makeUser(5))
    await a.batchInvalidate(ConformanceUser, [{ id: 5 }])
    expect(await memA.get(ConformanceUser, { id: 5 })).toBeUndefined()
    expect(await db.get(ConformanceUser, { id: 5 })).toEqual(makeUser(5))
  })

  it('a chain of caches only (its last layer not authoritative) drops the copies in its last layer too', async () => {
    const { a, memA, db } = twoProcesses()
    await a.put(makeUser(6))
    await a.batchInvalidate(ConformanceUser, [{ id: 6 }])
    expect(await memA.get(ConformanceUser, { id: 6 })).toBeUndefined()
    expect(await db.get(ConformanceUser, { id: 6 })).toBeUndefined()
  })
})
