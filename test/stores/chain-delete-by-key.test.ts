import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import { ChainedStore, isStockpyleError, KeyValueStore, LoaderStore, type Model, ProcessMemoryStore, type Store } from '../../src/index.js'
import { createTable, SqlStore } from '../../src/stores/sql/index.js'
import { ConformanceUser, conformanceTables, FaultStore, MapBackend, makeUser } from '../../src/testing/index.js'

/** [memory, key-value over a Map, SQLite], each layer reachable for direct checks. */
async function setup(options: { missLifetime?: number } = {}) {
  const memory = new ProcessMemoryStore()
  const fastLayer = new FaultStore(memory)
  const backend = new MapBackend()
  const kv = new KeyValueStore(backend, { prefix: 'kv' })
  const db = new SqlStore({ url: 'sqlite::memory:' })
  for (const t of conformanceTables) await createTable(db, t.model as Model, { table: t.table, columns: t.columns })
  const dbLayer = new FaultStore(db)
  const chain = new ChainedStore([fastLayer, kv, dbLayer], { breaker: false, ...options })
  return { memory, fastLayer, backend, kv, db, dbLayer, chain }
}

async function missesEverywhere(layers: readonly Store[], user: ConformanceUser): Promise<void> {
  for (const layer of layers) {
    for (const lookup of [{ id: user.id }, { email: user.email }, { orgId: user.orgId, slug: user.slug }]) {
      expect(await layer.get(ConformanceUser, lookup as { id: number }), `${layer.name} ${JSON.stringify(lookup)}`).toBeUndefined()
    }
  }
}

const until = async (check: () => boolean): Promise<void> => {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 2))
  expect(check()).toBe(true)
}

describe('ChainedStore delete by key', () => {
  it('removes the object found by an alternate key from the database and under every key in every cache', async () => {
    const { memory, kv, db, chain } = await setup()
    const users = [makeUser(1), makeUser(2)]
    await chain.batchPut(users)
    // Warm both caches by every key.
    for (const u of users) await chain.batchGet(ConformanceUser, [{ id: u.id }, { email: u.email }, { orgId: u.orgId, slug: u.slug }])
    expect(await kv.get(ConformanceUser, { email: makeUser(1).email })).toEqual(makeUser(1))
    await chain.delete(ConformanceUser, { email: makeUser(1).email })
    await missesEverywhere([memory, kv, db, chain], makeUser(1))
    expect(await chain.get(ConformanceUser, { orgId: makeUser(2).orgId, slug: makeUser(2).slug })).toEqual(makeUser(2))
  })

  it('uses one DELETE … RETURNING on the database (no read first) and the caches learn every key from it', async () => {
    const { dbLayer, memory, chain } = await setup()
    const user = makeUser(3)
    await chain.put(user)
    const gets = dbLayer.calls.get
    const removed = await chain.batchDeleteByKey(ConformanceUser, [{ orgId: user.orgId, slug: user.slug }, { id: 404 }])
    expect(removed).toEqual([user, undefined])
    expect(dbLayer.calls.get).toBe(gets)
    expect(await memory.get(ConformanceUser, { email: user.email })).toBeUndefined()
  })

  it('removes a cached copy the database no longer has (deleted behind the chain’s back)', async () => {
    const { memory, kv, db, chain } = await setup()
    const user = makeUser(4)
    await chain.put(user)
    await sql`delete from conformance_users where id = 4`.execute(await db.kysely())
    expect(await chain.get(ConformanceUser, { email: user.email })).toEqual(user) // stale copy served from memory
    await chain.delete(ConformanceUser, { email: user.email })
    await missesEverywhere([memory, kv, chain], user)
  })

  it('when the database fails, the call rejects and no cache keeps a copy', async () => {
    const { memory, kv, dbLayer, chain } = await setup()
    const user = makeUser(5)
    await chain.put(user)
    await chain.get(ConformanceUser, { email: user.email })
    dbLayer.fail('delete')
    const failed = chain.delete(ConformanceUser, { email: user.email })
    await expect(failed).rejects.toSatisfy((e) => isStockpyleError(e, 'E_STORE_UNAVAILABLE'))
    // counted as the database's failure, and named after the chain and the layer, as a failed put is
    await expect(failed).rejects.toThrow(/^chain store delete: .*\(raised by its layer `fault\(sql/)
    expect(chain.stats()[2]?.errors).toBe(1)
    await expect(chain.batchDelete(ConformanceUser, [{ id: 5 }])).rejects.toThrow(/^chain store delete: /)
    expect(chain.stats()[2]?.errors).toBe(2)
    await missesEverywhere([memory, kv], user)
    dbLayer.recover()
    expect(await chain.get(ConformanceUser, { id: 5 })).toEqual(user) // still in the database
  })

  it('a read racing the delete cannot bring the object back (its backfill is held until the delete ran)', async () => {
    const { memory, fastLayer, kv, chain } = await setup()
    const user = makeUser(6)
    await chain.put(user)
    await memory.clear()
    await kv.clear()
    const release = fastLayer.gate('put')
    const read = chain.get(ConformanceUser, { email: user.email })
    await until(() => fastLayer.waiting.put === 1) // the read has the database's copy and waits to backfill memory
    const removal = chain.delete(ConformanceUser, { email: user.email })
    await new Promise((r) => setTimeout(r, 20))
    release()
    expect(await read).toEqual(user)
    await removal
    await missesEverywhere([memory, kv, chain], user)
  })

  it('forgets remembered misses of the lookups and of the removed object', async () => {
    const { chain } = await setup({ missLifetime: 60 })
    const user = makeUser(7)
    expect(await chain.get(ConformanceUser, { email: user.email })).toBeUndefined()
    await chain.put(user)
    expect(await chain.get(ConformanceUser, { email: user.email })).toEqual(user)
    await chain.delete(ConformanceUser, { id: 7 })
    expect(await chain.get(ConformanceUser, { email: user.email })).toBeUndefined()
  })

  it('inside a chain transaction: deleted by key in the database at once, in the caches only after COMMIT', async () => {
    const { memory, db } = await setup()
    const chain = new ChainedStore([memory, db])
    const user = makeUser(8)
    await chain.put(user)
    await chain.transaction(async (tx) => {
      await tx.delete(ConformanceUser, { email: user.email })
      expect(await tx.get(ConformanceUser, { id: 8 })).toBeUndefined()
      expect(await memory.get(ConformanceUser, { id: 8 })).toEqual(user)
    })
    await missesEverywhere([memory, chain], user)
    const other = makeUser(9)
    await chain.put(other)
    await expect(
      chain.transaction(async (tx) => {
        await tx.delete(ConformanceUser, { id: 9 })
        throw new Error('roll back')
      }),
    ).rejects.toThrow('roll back')
    expect(await chain.get(ConformanceUser, { email: other.email })).toEqual(other)
  })
})

/** A user carrying its primary key only (its alternate key attributes left out). */
function stubOf(id: number): ConformanceUser {
  const stub = makeUser(id) as unknown as Record<string, unknown>
  stub.email = undefined
  delete stub.slug
  return stub as unknown as ConformanceUser
}

describe('ChainedStore delete of an object without all its key attributes', () => {
  it('a stub with only its primary key is deleted from the database and from every cache under every key', async () => {
    const { memory, kv, db, chain } = await setup()
    const users = [makeUser(21), makeUser(22), makeUser(23)]
    await chain.batchPut(users)
    for (const u of users) await chain.batchGet(ConformanceUser, [{ id: u.id }, { email: u.email }, { orgId: u.orgId, slug: u.slug }])
    await chain.delete(stubOf(21))
    await missesEverywhere([memory, kv, db, chain], makeUser(21))
    // a batch mixing whole objects and stubs
    await chain.batchDelete([makeUser(22), stubOf(23)])
    for (const id of [22, 23]) await missesEverywhere([memory, kv, db, chain], makeUser(id))
  })

  it('a chain of one layer deletes a stub by key too, whatever that layer’s own delete accepts (a writable LoaderStore)', async () => {
    const source = new Map<number, ConformanceUser>([[27, makeUser(27)]])
    const loader = new LoaderStore({
      model: ConformanceUser,
      load: (lookups) => lookups.map((l) => ('id' in l ? source.get(l.id as number) : undefined)),
      save: (objs) => {
        for (const o of objs) source.set(o.id, o)
      },
      remove: (objs) => {
        for (const o of objs) source.delete(o.id)
      },
    })
    await new ChainedStore([loader]).delete(stubOf(27))
    expect(source.has(27)).toBe(false)
    const { db } = await setup()
    await db.put(makeUser(28))
    await new ChainedStore([db]).delete(stubOf(28))
    expect(await db.get(ConformanceUser, { id: 28 })).toBeUndefined()
  })

  it('inside a chain transaction: the caches drop a stub tx.delete removed once the transaction committed', async () => {
    const { memory, kv, db, chain } = await setup()
    const user = makeUser(24)
    await chain.put(user)
    await chain.batchGet(ConformanceUser, [{ id: 24 }, { email: user.email }])
    await chain.transaction(async (tx) => {
      await tx.delete(stubOf(24))
    })
    await missesEverywhere([memory, kv, db, chain], user)
    expect(chain.stats().every((s) => s.errors === 0)).toBe(true)
  })

  it('a missing primary key, or a key attribute no key can hold, is refused before anything is deleted', async () => {
    const { db, chain } = await setup()
    const user = makeUser(25)
    await chain.put(user)
    const noPrimary = { ...user, id: undefined }
    Object.setPrototypeOf(noPrimary, ConformanceUser.prototype)
    const badEmail = { ...user, email: { not: 'a key' } }
    Object.setPrototypeOf(badEmail, ConformanceUser.prototype)
    await expect(chain.delete(noPrimary as unknown as ConformanceUser)).rejects.toMatchObject({ code: 'E_MISSING_KEY_ATTRIBUTE' })
    await expect(chain.batchDelete([makeUser(26), badEmail as unknown as ConformanceUser])).rejects.toMatchObject({
      code: 'E_INVALID_KEY',
      message: expect.stringContaining('chain'),
    })
    expect(await db.get(ConformanceUser, { id: 25 })).toEqual(user)
    expect(await chain.get(ConformanceUser, { email: user.email })).toEqual(user)
  })
})

describe('ChainedStore.clearCaches()', () => {
  it('empties every cache layer and forgets misses; the database keeps everything', async () => {
    const { memory, backend, chain } = await setup({ missLifetime: 60 })
    const users = [makeUser(10), makeUser(11)]
    await chain.batchPut(users)
    expect(await chain.get(ConformanceUser, { id: 12 })).toBeUndefined()
    expect(memory.size).toBe(2)
    expect(backend.size).toBe(6)
    await chain.put(makeUser(12))
    await chain.clearCaches()
    expect(memory.size).toBe(0)
    expect(backend.size).toBe(0)
    expect(await chain.batchGet(ConformanceUser, [{ id: 10 }, { email: makeUser(11).email }, { id: 12 }])).toEqual([
      makeUser(10),
      makeUser(11),
      makeUser(12),
    ])
  })

  it('a read in flight during the clear does not backfill what it read before', async () => {
    const { memory, fastLayer, chain } = await setup()
    const user = makeUser(13)
    await chain.put(user)
    await memory.clear()
    const release = fastLayer.gate('put')
    const read = chain.get(ConformanceUser, { id: 13 })
    await until(() => fastLayer.waiting.put === 1) // read from the database, waiting to backfill memory
    await chain.clearCaches()
    release()
    expect(await read).toEqual(user)
    expect(memory.size).toBe(0)
  })

  it('refuses with E_UNSUPPORTED before clearing anything when a cache layer cannot be cleared', async () => {
    const memory = new ProcessMemoryStore()
    const backend = new MapBackend()
    const opaque = new KeyValueStore({
      getMany: (k) => backend.getMany(k),
      setMany: (e) => backend.setMany(e),
      deleteMany: (k) => backend.deleteMany(k),
      close: () => backend.close(),
    })
    const chain = new ChainedStore([memory, opaque, new ProcessMemoryStore()])
    await chain.put(makeUser(14))
    await expect(chain.clearCaches()).rejects.toSatisfy((e) => isStockpyleError(e, 'E_UNSUPPORTED'))
    expect(memory.size).toBe(1)
  })

  it('clears the caches of a nested chain in the last position too', async () => {
    const outer = new ProcessMemoryStore()
    const inner = new ProcessMemoryStore()
    const db = new ProcessMemoryStore()
    const chain = new ChainedStore([outer, new ChainedStore([inner, db])])
    await chain.put(makeUser(15))
    await chain.clearCaches()
    expect(outer.size + inner.size).toBe(0)
    expect(db.size).toBe(1)
  })
})
