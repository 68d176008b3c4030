import { describe, expect, it, vi } from 'vitest'
import { MAX_ELEMENTS } from '../../src/core/value-limits.js'
import {
  BaseStore,
  type CacheErrorEvent,
  ChainedStore,
  capabilities,
  InvalidOptionError,
  KeyConflictError,
  keys,
  LoaderStore,
  MissingKeyAttributeError,
  ProcessMemoryStore,
  registerModel,
  type StoreCapabilities,
  StoreDecorator,
  StoreUnavailableError,
  type WriteItem,
} from '../../src/index.js'
import { ConformanceUser, FaultStore, ManualClock, makeUser } from '../../src/testing/index.js'
import { heldSource } from './fixtures/held-source.js'

async function until(condition: () => boolean, required = true): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setImmediate(r))
  if (required && !condition()) throw new Error('condition not reached')
}

function layers(clock = new ManualClock()) {
  const top = new FaultStore(new ProcessMemoryStore({ clock }))
  const db = new FaultStore(new ProcessMemoryStore({ clock }))
  return { top, db, clock }
}

describe('ChainedStore policy', () => {
  it('rejects an empty or invalid layer list synchronously', () => {
    expect(() => new ChainedStore([])).toThrow(InvalidOptionError)
    expect(() => new ChainedStore([{} as never])).toThrow(/layers`\[0\]/)
    expect(() => new ChainedStore([new ProcessMemoryStore()], { onCacheError: 'x' as never })).toThrow(/onCacheError/)
  })

  it('get backfills the upper layer from a lower hit, then serves from the top', async () => {
    const { top, db } = layers()
    const chain = new ChainedStore([top, db])
    const user = makeUser(1)
    await db.put(user)
    expect(await chain.get(ConformanceUser, { email: user.email })).toEqual(user)
    expect(await top.get(ConformanceUser, { id: 1 })).toEqual(user)
    const before = db.calls.get
    expect(await chain.get(ConformanceUser, { id: 1 })).toEqual(user)
    expect(db.calls.get).toBe(before)
    expect(chain.stats().map((s) => [s.hits, s.misses, s.backfills])).toEqual([
      [1, 1, 1],
      [1, 0, 0],
    ])
  })

  it('a first layer that fails on a hit (a corrupt copy in memory) is reported, never a silent miss, and read below', async () => {
    const memory = new ProcessMemoryStore()
    const db = new ProcessMemoryStore({ name: 'db' })
    const chain = new ChainedStore([memory, db])
    const events: CacheErrorEvent[] = []
    chain.events.on('cacheError', (e: CacheErrorEvent) => events.push(e))
    await chain.put(makeUser(3))
    // The entry's envelope is the store's own bytes: spoil the body behind the 10-byte header.
    const [entry] = await memory.batchGetEntries(ConformanceUser, [{ id: 3 }])
    entry?.encoded?.fill(0xc1, 10)
    expect(entry?.encoded?.[10]).toBe(0xc1)
    expect(await chain.get(ConformanceUser, { id: 3 })).toEqual(makeUser(3))
    expect(events.map((e) => [e.layer, e.operation, (e.error as Error).constructor.name])).toEqual([['memory', 'get', 'CorruptEntryError']])
    expect(chain.stats()[0]?.errors).toBe(1)
    const strict = new ChainedStore([memory, db], { onCacheError: 'throw' })
    const [again] = await memory.batchGetEntries(ConformanceUser, [{ id: 3 }])
    again?.encoded?.fill(0xc1, 10)
    await expect(strict.get(ConformanceUser, { id: 3 })).rejects.toThrow(/corrupt/)
  })

  it('batchGet asks each layer once, only for what is still missing', async () => {
    const { top, db } = layers()
    const chain = new ChainedStore([top, db])
    const users = [1, 2, 3, 4].map(makeUser)
    await db.batchPut(users)
    await top.put(users[0] as ConformanceUser)
    const got = await chain.batchGet(ConformanceUser, [{ id: 1 }, { id: 2 }, { id: 9 }, { id: 3 }])
    expect(got).toEqual([users[0], users[1], undefined, users[2]])
    expect(top.calls.get).toBe(1)
    expect(db.calls.get).toBe(1)
    expect(top.calls.put).toBe(2) // the put above + one backfill batch
    expect(chain.stats()[1]).toMatchObject({ hits: 2, misses: 1 })
  })

  it('a backfill never outlives its source', async () => {
    const clock = new ManualClock()
    const top = new ProcessMemoryStore({ clock, lifetime: 3600 })
    const db = new ProcessMemoryStore({ clock, lifetime: 10 })
    const chain = new ChainedStore([top, db])
    const user = makeUser(2)
    await db.put(user)
    clock.advance(4000)
    await chain.get(ConformanceUser, { id: 2 })
    const [entry] = await top.batchGetEntries(ConformanceUser, [{ id: 2 }])
    expect(entry?.expiresAt).toBe(clock.now() + 6000)
    clock.advance(6000)
    expect(await top.get(ConformanceUser, { id: 2 })).toBeUndefined()
  })

  it('put writes the authoritative layer first, then caches bottom-up (the first layer, in this process, as the one below begins)', async () => {
    const order: string[] = []
    const spy = (name: string, store: ProcessMemoryStore) =>
      new Proxy(store, {
        get(target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver)
          if (prop === 'batchPutEntries' || prop === 'batchDelete' || prop === 'putNow') {
            return (...args: unknown[]) => {
              order.push(`${name}.${String(prop)}`)
              return (value as (...a: unknown[]) => unknown).apply(target, args)
            }
          }
          return typeof value === 'function' ? value.bind(target) : value
        },
      })
    const chain = new ChainedStore([
      spy('l0', new ProcessMemoryStore()),
      spy('l1', new ProcessMemoryStore()),
      spy('db', new ProcessMemoryStore()),
    ])
    await chain.put(makeUser(3))
    await chain.delete(makeUser(3))
    expect(order).toEqual(['db.batchPutEntries', 'l1.batchPutEntries', 'l0.putNow', 'db.batchDelete', 'l1.batchDelete', 'l0.batchDelete'])
  })

  it('a failing authoritative write rejects and leaves no cache entry', async () => {
    const { top, db } = layers()
    const chain = new ChainedStore([top, db])
    const user = makeUser(4)
    await chain.put(user)
    user.name = 'new'
    db.fail('put')
    await expect(chain.put(user)).rejects.toBeInstanceOf(StoreUnavailableError)
    expect(await top.get(ConformanceUser, { id: 4 })).toBeUndefined()
    db.recover()
    expect((await chain.get(ConformanceUser, { id: 4 }))?.name).toBe(makeUser(4).name)
  })

  it('a failing cache layer is skipped on reads and reported; writes still reach the database', async () => {
    const { top, db } = layers()
    const chain = new ChainedStore([top, db], { breaker: false })
    const events: CacheErrorEvent[] = []
    chain.events.on('cacheError', (e: CacheErrorEvent) => events.push(e))
    top.fail()
    const user = makeUser(5)
    await chain.put(user)
    expect(await chain.get(ConformanceUser, { id: 5 })).toEqual(user)
    await chain.delete(user)
    expect(await db.get(ConformanceUser, { id: 5 })).toBeUndefined()
    // put fails, and so does its clean-up (reported as 'invalidate', not as a caller's delete; the object
    // is remembered for repair); the read, its backfill (and its clean-up) and the delete are tried and
    // fail too, each reported, the database answering (background repair attempts that fail are 'repair')
    expect(events.map((e) => e.operation).filter((o) => o !== 'repair')).toEqual([
      'put',
      'invalidate',
      'get',
      'backfill',
      'invalidate',
      'delete',
    ])
    expect(chain.stats()[0]?.pendingRepairs).toBe(1)
    top.recover()
    expect(await chain.get(ConformanceUser, { id: 5 })).toBeUndefined()
    // the repair drains in the background as soon as the layer answers again
    await vi.waitFor(() => expect(chain.stats()[0]?.pendingRepairs).toBe(0), { timeout: 3000 })
  })

  it("onCacheError: 'throw' rejects after the database write, and nothing stale is left", async () => {
    const { top, db } = layers()
    const chain = new ChainedStore([top, db], { onCacheError: 'throw', breaker: false })
    const user = makeUser(6)
    await chain.put(user)
    user.name = 'second'
    top.fail('put')
    await expect(chain.put(user)).rejects.toBeInstanceOf(StoreUnavailableError)
    expect((await db.get(ConformanceUser, { id: 6 }))?.name).toBe('second')
    top.recover()
    expect((await chain.get(ConformanceUser, { id: 6 }))?.name).toBe('second')
  })

  it('concurrent misses of one key read the lower layer once; each caller gets its own copy', async () => {
    const { top, db } = layers()
    const chain = new ChainedStore([top, db])
    await db.put(makeUser(7))
    const release = db.gate()
    const reads = Array.from({ length: 50 }, () => chain.get(ConformanceUser, { id: 7 }))
    const batch = chain.batchGet(ConformanceUser, [{ id: 7 }, { id: 7 }])
    release()
    const results = [...(await Promise.all(reads)), ...(await batch)]
    expect(db.calls.get).toBe(1)
    expect(new Set(results).size).toBe(52)
    for (const r of results) expect(r).toEqual(makeUser(7))
  })

  it("concurrent reads sharing one read of a source without encoded copies: a caller changing its object at once changes no other caller's", async () => {
    // A LoaderStore (like SqlStore) answers objects without an encoded copy: the joiners' copies are
    // made from the shared read's object, after its first caller may already have changed it.
    let loads = 0
    const source = () =>
      new LoaderStore({
        model: ConformanceUser,
        load: async (lookups) => {
          loads++
          await new Promise((r) => setTimeout(r, 5))
          return lookups.map(() => makeUser(9))
        },
      })
    for (const read of ['get', 'batchGet'] as const) {
      const chain = new ChainedStore([new ProcessMemoryStore(), source()])
      const one = () =>
        read === 'get' ? chain.get(ConformanceUser, { id: 9 }) : chain.batchGet(ConformanceUser, [{ id: 9 }]).then((r) => r[0])
      const changed = one().then((u) => {
        if (u !== undefined) u.name = 'changed by the first caller'
        return u
      })
      const others = [one(), one(), chain.batchGet(ConformanceUser, [{ id: 9 }, { id: 9 }])]
      await changed
      const [a, b, batch] = await Promise.all(others)
      for (const u of [a, b, ...(batch as unknown[])]) expect(u, read).toEqual(makeUser(9))
      expect((await chain.get(ConformanceUser, { id: 9 }))?.name, read).toBe(makeUser(9).name)
      await chain.close()
    }
    expect(loads).toBe(2)
  })

  it('an invalidation waits for the cache updates of earlier writes of its objects: a slow one cannot land after it', async () => {
    for (const lookup of [{ id: 11 }, { email: makeUser(11).email }]) {
      const rows = new Map<number, ConformanceUser>()
      const source = new LoaderStore({
        model: ConformanceUser,
        load: async (lookups) =>
          lookups.map((l) =>
            [...rows.values()].find((u) => u.id === (l as { id?: number }).id || u.email === (l as { email?: string }).email),
          ),
        save: async (objs) => {
          for (const o of objs) rows.set(o.id, o)
        },
      })
      const top = new ProcessMemoryStore()
      const shared = new FaultStore(new ProcessMemoryStore())
      const chain = new ChainedStore([top, shared, source])
      const named = (name: string) => Object.assign(makeUser(11), { name })
      await chain.put(named('v0'))
      const release = shared.gate('put')
      const first = chain.put(named('v1')) // in the database; its update of the shared layer is held
      await until(() => shared.waiting.put === 1)
      rows.set(11, named('v2')) // changed behind the chain, which is then told
      const invalidating = chain.batchInvalidate(ConformanceUser, [lookup])
      await new Promise((r) => setImmediate(r))
      release()
      await Promise.all([first, invalidating])
      expect((await chain.get(ConformanceUser, { id: 11 }))?.name, JSON.stringify(lookup)).toBe('v2')
      expect((await chain.get(ConformanceUser, { email: makeUser(11).email }))?.name, JSON.stringify(lookup)).toBe('v2')
      await chain.close()
    }
  })

  it('concurrent writes of one object whose database replies come in another order than the database applied them: the caches end with what the database holds, or miss', async () => {
    // The database applies writes in call order, but answers them in the reverse order.
    const rows = new Map<number, ConformanceUser>()
    let held = 0
    const answers: (() => void)[] = []
    const source = new LoaderStore({
      model: ConformanceUser,
      load: async (lookups) => lookups.map((l) => rows.get((l as { id: number }).id)),
      save: async (objs) => {
        for (const o of objs) rows.set(o.id, o)
        if (held++ < 2) await new Promise<void>((resolve) => answers.push(resolve))
      },
    })
    const top = new ProcessMemoryStore()
    const chain = new ChainedStore([top, source])
    const named = (name: string) => Object.assign(makeUser(12), { name })
    const first = chain.put(named('first'))
    const second = chain.put(named('second'))
    await until(() => answers.length === 2)
    ;(answers[1] as () => void)()
    await second
    ;(answers[0] as () => void)()
    await first
    expect(rows.get(12)?.name).toBe('second')
    expect((await top.get(ConformanceUser, { id: 12 }))?.name ?? 'missed').not.toBe('first')
    expect((await chain.get(ConformanceUser, { id: 12 }))?.name).toBe('second')
    // writes that do not overlap write their copies as before
    await chain.put(named('third'))
    expect((await top.get(ConformanceUser, { id: 12 }))?.name).toBe('third')
    await chain.close()
  })

  it('a read that began before a put does not backfill the older value', async () => {
    const { top, db } = layers()
    const chain = new ChainedStore([top, db])
    const user = makeUser(8)
    await db.put(user)
    const release = db.gate()
    const staleRead = chain.get(ConformanceUser, { id: 8 })
    await new Promise((r) => setImmediate(r))
    const updated = makeUser(8)
    updated.name = 'updated'
    const write = chain.put(updated)
    release()
    await Promise.all([staleRead, write])
    expect((await top.get(ConformanceUser, { id: 8 }))?.name).toBe('updated')
    expect((await chain.get(ConformanceUser, { id: 8 }))?.name).toBe('updated')
  })

  for (const by of ['id', 'email', 'orgId+slug'] as const) {
    it(`a read that began before an invalidation by ${by} does not backfill what it read`, async () => {
      const top = new ProcessMemoryStore()
      // the database: rows changed behind the chain's back, as the application's own SQL would
      const { rows, release, store } = heldSource()
      const chain = new ChainedStore([top, store])
      const user = makeUser(9)
      rows.set(9, user)
      const staleRead = chain.get(ConformanceUser, { id: 9 })
      await new Promise((r) => setImmediate(r))
      rows.set(9, Object.assign(makeUser(9), { name: 'changed' }))
      const lookup = by === 'id' ? { id: 9 } : by === 'email' ? { email: user.email } : { orgId: user.orgId, slug: user.slug }
      await chain.batchInvalidate(ConformanceUser, [lookup])
      release()
      expect((await staleRead)?.name).toBe(user.name)
      expect(await top.get(ConformanceUser, { id: 9 })).toBeUndefined()
      expect((await chain.get(ConformanceUser, { id: 9 }))?.name).toBe('changed')
    })
  }

  for (const second of ['put', 'delete', 'delete by key'] as const) {
    it(`a put and a ${second} of one object update the caches in the order they reached the database, however slow the first's cache write`, async () => {
      const rows = new Map<number, ConformanceUser>()
      const db = new LoaderStore({
        model: ConformanceUser,
        load: async (lookups) =>
          lookups.map((l) => [...rows.values()].find((r) => ('id' in l ? r.id === l.id : r.email === (l as { email: string }).email))),
        save: async (objs) => {
          for (const o of objs) rows.set(o.id, o)
        },
        remove: async (objs) => {
          for (const o of objs) rows.delete(o.id)
        },
      })
      const memory = new ProcessMemoryStore()
      const shared = new FaultStore(new ProcessMemoryStore({ name: 'shared' })) // a remote cache, slow for the first write
      const chain = new ChainedStore([memory, shared, db])
      const release1 = shared.gate('put')
      const first = chain.put(Object.assign(makeUser(30), { name: 'first' }))
      await until(() => shared.waiting.put === 1)
      const release2 = shared.gate('put', 'delete')
      const then =
        second === 'put'
          ? chain.put(Object.assign(makeUser(30), { name: 'second' }))
          : second === 'delete'
            ? chain.delete(makeUser(30))
            : chain.delete(ConformanceUser, { email: makeUser(30).email })
      await until(() => (second === 'put' ? rows.get(30)?.name === 'second' : !rows.has(30)))
      release2() // the second write's cache updates may go first ...
      await new Promise((r) => setTimeout(r, 5))
      release1() // ... the first's land after them
      await Promise.all([first, then])
      const expected = second === 'put' ? 'second' : undefined
      expect((await shared.get(ConformanceUser, { id: 30 }))?.name).toBe(expected)
      expect((await memory.get(ConformanceUser, { id: 30 }))?.name).toBe(expected)
      expect((await chain.get(ConformanceUser, { id: 30 }))?.name).toBe(expected)
    })
  }

  for (const second of ['put', 'delete', 'delete by key', 'delete by alternate key'] as const) {
    it(`a ${second} whose database call failed (outcome unknown) clears the caches after an earlier put's slow cache update`, async () => {
      const rows = new Map<number, ConformanceUser>()
      let late = false
      const settle = async () => {
        if (late) await new Promise((r) => setTimeout(r, 30)) // lands after the timeout: it may still take effect
      }
      const db = new LoaderStore({
        model: ConformanceUser,
        timeout: 10,
        load: async (lookups) =>
          lookups.map((l) => ('id' in l ? rows.get(l.id) : [...rows.values()].find((r) => r.email === (l as { email: string }).email))),
        save: async (objs) => {
          await settle()
          for (const o of objs) rows.set(o.id, o)
        },
        remove: async (objs) => {
          await settle()
          for (const o of objs) rows.delete(o.id)
        },
      })
      const memory = new ProcessMemoryStore()
      const shared = new FaultStore(new ProcessMemoryStore({ name: 'shared' }))
      const chain = new ChainedStore([memory, shared, db])
      const release = shared.gate('put')
      const first = chain.put(Object.assign(makeUser(31), { name: 'first' }))
      await until(() => shared.waiting.put === 1)
      late = true
      const then =
        second === 'put'
          ? chain.put(Object.assign(makeUser(31), { name: 'second' }))
          : second === 'delete'
            ? chain.delete(makeUser(31))
            : second === 'delete by key'
              ? chain.delete(ConformanceUser, { id: 31 })
              : chain.delete(ConformanceUser, { email: makeUser(31).email })
      const failed = then.catch((e: unknown) => e)
      await new Promise((r) => setTimeout(r, 50)) // the second write timed out, then landed
      release()
      await first
      expect(await failed).toBeInstanceOf(StoreUnavailableError)
      const expected = second === 'put' ? 'second' : undefined
      expect(rows.get(31)?.name).toBe(expected)
      expect((await chain.get(ConformanceUser, { id: 31 }))?.name).toBe(expected)
    })
  }

  it('batchInvalidate whose last layer fails still drops the copies above, then rejects', async () => {
    const { top, db } = layers()
    const chain = new ChainedStore([top, db])
    await chain.put(makeUser(32))
    db.fail('delete') // (a FaultStore's batchInvalidate counts as a delete)
    await expect(chain.batchInvalidate(ConformanceUser, [{ id: 32 }])).rejects.toBeInstanceOf(StoreUnavailableError)
    expect(await top.get(ConformanceUser, { id: 32 })).toBeUndefined()
  })

  it('a read racing a delete never re-installs the deleted object', async () => {
    const { top, db } = layers()
    const chain = new ChainedStore([top, db])
    const user = makeUser(9)
    await db.put(user)
    const releaseDb = db.gate('get')
    const read = chain.get(ConformanceUser, { id: 9 })
    await until(() => top.calls.get === 1)
    const releaseBackfill = top.gate('put')
    releaseDb()
    await until(() => top.waiting.put === 1)
    const del = chain.delete(user)
    // Unprotected, the delete would now finish before the backfill lands; protected, it waits for it.
    await until(() => top.calls.delete === 1, false)
    releaseBackfill()
    await del
    expect(await read).toEqual(user)
    expect(await top.get(ConformanceUser, { id: 9 })).toBeUndefined()
    expect(await chain.get(ConformanceUser, { id: 9 })).toBeUndefined()
  })

  it('a failing cache read with recovery: served from below meanwhile, from the top again after', async () => {
    const { top, db } = layers()
    const chain = new ChainedStore([top, db], { breaker: false })
    await chain.put(makeUser(10))
    top.fail('get')
    expect(await chain.get(ConformanceUser, { id: 10 })).toEqual(makeUser(10))
    top.recover()
    const before = db.calls.get
    expect(await chain.get(ConformanceUser, { id: 10 })).toEqual(makeUser(10))
    expect(db.calls.get).toBe(before)
  })

  it('a circuit breaker skips a failing layer after `failures` failures, then probes it again', async () => {
    const { top, db, clock } = layers()
    const chain = new ChainedStore([top, db], { breaker: { failures: 2, halfOpenAfter: 300 } })
    await chain.put(makeUser(11))
    top.fail()
    await chain.get(ConformanceUser, { id: 11 }) // the get fails, then the backfill: two failures open the circuit
    const attemptsWhenOpen = { ...top.attempts }
    expect(await chain.get(ConformanceUser, { id: 11 })).toEqual(makeUser(11))
    expect(top.attempts).toEqual(attemptsWhenOpen)
    expect(chain.stats()[0]).toMatchObject({ errors: 2 })
    expect(chain.stats()[0]?.skipped).toBeGreaterThan(0)
    top.recover()
    // The probe repairs the layer (an invalidation, whose tombstone then expires), backfills, then hits.
    const start = Date.now()
    while (Date.now() - start < 5000 && (chain.stats()[0]?.hits ?? 0) === 0) {
      await new Promise((r) => setTimeout(r, 50))
      clock.advance(1000)
      await chain.get(ConformanceUser, { id: 11 })
    }
    expect(chain.stats()[0]?.hits).toBeGreaterThan(0)
  })

  it('a timed-out cache layer costs the timeout once, then is skipped', async () => {
    const { top, db } = layers()
    const chain = new ChainedStore([top, db], { timeout: 50, breaker: { failures: 1, halfOpenAfter: 60_000 } })
    await chain.put(makeUser(12))
    const release = top.gate('get')
    const t0 = performance.now()
    expect(await chain.get(ConformanceUser, { id: 12 })).toEqual(makeUser(12))
    const first = performance.now() - t0
    const t1 = performance.now()
    expect(await chain.get(ConformanceUser, { id: 12 })).toEqual(makeUser(12))
    const second = performance.now() - t1
    release()
    expect(first).toBeGreaterThanOrEqual(45)
    expect(second).toBeLessThan(45)
    expect(chain.stats()[0]?.errors).toBe(1)
    expect(chain.stats()[0]?.skipped).toBeGreaterThan(0)
  })

  it('a layer that missed a delete is repaired before it is read again', async () => {
    const { top, db } = layers()
    const chain = new ChainedStore([top, db], { breaker: false })
    const user = makeUser(13)
    await chain.put(user)
    top.fail('delete')
    await chain.delete(user)
    expect(chain.stats()[0]?.pendingRepairs).toBe(1)
    expect(await chain.get(ConformanceUser, { id: 13 })).toBeUndefined() // the stale copy in top is not read
    expect(chain.stats()[0]?.skipped).toBe(1)
    top.recover()
    expect(await chain.get(ConformanceUser, { id: 13 })).toBeUndefined()
    await vi.waitFor(() => expect(chain.stats()[0]?.pendingRepairs).toBe(0), { timeout: 3000 })
    expect(await top.get(ConformanceUser, { id: 13 })).toBeUndefined()
  })

  it('negative caching: misses are remembered for missLifetime, and a put through the chain forgets them', async () => {
    const clock = new ManualClock()
    const { top, db } = layers(clock)
    const chain = new ChainedStore([top, db], { missLifetime: 5, clock })
    expect(await chain.get(ConformanceUser, { id: 14 })).toBeUndefined()
    expect(await chain.get(ConformanceUser, { id: 14 })).toBeUndefined()
    expect(db.calls.get).toBe(1)
    await db.put(makeUser(14)) // behind the chain's back: seen once the miss expires
    expect(await chain.get(ConformanceUser, { id: 14 })).toBeUndefined()
    clock.advance(5000)
    expect(await chain.get(ConformanceUser, { id: 14 })).toEqual(makeUser(14))
    await chain.delete(makeUser(14))
    expect(await chain.get(ConformanceUser, { email: makeUser(14).email })).toBeUndefined()
    await chain.put(makeUser(14))
    expect(await chain.get(ConformanceUser, { email: makeUser(14).email })).toEqual(makeUser(14))
  })

  it('negative caching: batchInvalidate by primary key forgets the misses remembered under the objects’ other keys too', async () => {
    const clock = new ManualClock()
    const { top, db } = layers(clock)
    // the stand-in database owns the truth, as a database does: an invalidation leaves it alone
    const database = new (class extends StoreDecorator {
      override get capabilities(): StoreCapabilities {
        return { ...this.inner.capabilities, authoritative: true }
      }
    })(db)
    const chain = new ChainedStore([top, database], { missLifetime: 60, clock })
    const user = makeUser(17)
    // misses by an alternate key, by the primary key, and of another object: all remembered
    expect(await chain.get(ConformanceUser, { email: user.email })).toBeUndefined()
    expect(await chain.get(ConformanceUser, { orgId: user.orgId, slug: user.slug })).toBeUndefined()
    expect(await chain.get(ConformanceUser, { id: 17 })).toBeUndefined()
    expect(await chain.get(ConformanceUser, { id: 18 })).toBeUndefined()
    // another client inserts the row; a watcher tells the chain its primary key (all it knows)
    await db.put(user)
    await chain.batchInvalidate(ConformanceUser, [{ id: 17 }])
    expect(await chain.get(ConformanceUser, { email: user.email })).toEqual(user)
    expect(await chain.get(ConformanceUser, { orgId: user.orgId, slug: user.slug })).toEqual(user)
    expect(await chain.get(ConformanceUser, { id: 17 })).toEqual(user)
    // every miss went: the other object's lookup reaches the database again, and is remembered again
    const reads = db.calls.get
    expect(await chain.get(ConformanceUser, { id: 18 })).toBeUndefined()
    expect(await chain.get(ConformanceUser, { id: 18 })).toBeUndefined()
    expect(db.calls.get).toBe(reads + 1)
  })

  for (const coherence of [true, false]) {
    it(`negative caching (coherence: ${coherence}): a miss read while a put landed is not remembered`, async () => {
      const top = new ProcessMemoryStore()
      // the database answers "absent", and the answer is held in flight while the put lands
      const { release, store } = heldSource()
      const chain = new ChainedStore([top, store], { missLifetime: 60, coherence })
      const miss = chain.get(ConformanceUser, { id: 16 })
      await new Promise((r) => setImmediate(r))
      await chain.put(makeUser(16))
      release()
      expect(await miss).toBeUndefined()
      await top.clear()
      expect(await chain.get(ConformanceUser, { id: 16 })).toEqual(makeUser(16))
    })
  }

  it('serveStale: while the database fails, expired copies within the grace answer', async () => {
    const clock = new ManualClock()
    const top = new ProcessMemoryStore({ clock, lifetime: 10, grace: 60 })
    const db = new FaultStore(new ProcessMemoryStore({ clock }))
    const chain = new ChainedStore([top, db], { serveStale: true })
    await chain.put(makeUser(15))
    clock.advance(20_000)
    db.fail('get')
    expect(await chain.get(ConformanceUser, { id: 15 })).toEqual(makeUser(15))
    clock.advance(60_000)
    await expect(chain.get(ConformanceUser, { id: 15 })).rejects.toThrow(/failing get/)
    db.recover()
    expect(await chain.get(ConformanceUser, { id: 15 })).toEqual(makeUser(15))
  })

  it('records OpenTelemetry-style metrics through a meter', async () => {
    const counters: Record<string, number> = {}
    const meter = {
      createCounter: (name: string) => ({
        add: (v: number, a?: Record<string, unknown>) => {
          const key = `${name}:${a?.layer}:${a?.result ?? a?.operation}`
          counters[key] = (counters[key] ?? 0) + v
        },
      }),
      createHistogram: (name: string) => ({
        record: (_v: number, a?: Record<string, unknown>) => {
          const key = `${name}:${a?.layer}`
          counters[key] = (counters[key] ?? 0) + 1
        },
      }),
    }
    const chain = new ChainedStore([new ProcessMemoryStore({ name: 'l0' }), new ProcessMemoryStore({ name: 'db' })], { meter })
    await chain.put(makeUser(16))
    await chain.get(ConformanceUser, { id: 16 })
    await chain.batchGet(ConformanceUser, [{ id: 16 }, { id: 17 }])
    expect(counters['stockpyle.layer.lookups:l0:hit']).toBe(2)
    expect(counters['stockpyle.layer.lookups:l0:miss']).toBe(1)
    expect(counters['stockpyle.layer.lookups:db:miss']).toBe(1)
    // every layer call is timed: the database's put and get; l0's put, fast-path get and batch get
    expect(counters['stockpyle.layer.duration:db']).toBe(2)
    expect(counters['stockpyle.layer.duration:l0']).toBe(3)
  })

  it('a put of a value no cache can store is refused before the database write, naming the chain and the attribute', async () => {
    // A database that takes anything: only the chain's check stands between the value and it.
    class AnyDatabase extends BaseStore {
      override readonly name = 'any'
      override readonly capabilities = capabilities({ authoritative: true })
      readonly written: object[] = []
      protected async readMany(_info: unknown, requests: readonly unknown[]): Promise<undefined[]> {
        return requests.map(() => undefined)
      }
      protected async writeMany(items: readonly WriteItem[]): Promise<void> {
        for (const item of items) this.written.push(item.obj)
      }
      protected async removeMany(): Promise<void> {}
    }
    const db = new AnyDatabase()
    const chain = new ChainedStore([new ProcessMemoryStore(), db], { name: 'c' })
    const withFunction = Object.assign(makeUser(1), { name: () => 'x' })
    await expect(chain.put(withFunction)).rejects.toMatchObject({
      code: 'E_SERIALIZATION',
      message: expect.stringMatching(/^c store put.*`name`/),
    })
    const tooLarge = Object.assign(makeUser(2), { tags: new Array(MAX_ELEMENTS + 1).fill(0) })
    await expect(chain.put(tooLarge)).rejects.toMatchObject({
      code: 'E_SERIALIZATION',
      message: expect.stringMatching(/^c store put.*`tags`/),
    })
    expect(db.written).toEqual([])
    await chain.put(makeUser(3))
    expect(db.written).toHaveLength(1)
  })

  it('caller errors are never hidden by the cache error policy', async () => {
    const chain = new ChainedStore([new ProcessMemoryStore(), new ProcessMemoryStore()])
    await expect(chain.get(ConformanceUser, { nope: 1 } as never)).rejects.toMatchObject({ code: 'E_UNKNOWN_KEY' })
  })
})

describe('ChainedStore batch backfills', () => {
  it('a batchGet whose hits come from two lower layers backfills each upper layer in exactly one batch', async () => {
    const l0 = new FaultStore(new ProcessMemoryStore({ name: 'l0' }))
    const l1 = new FaultStore(new ProcessMemoryStore({ name: 'l1' }))
    const db = new FaultStore(new ProcessMemoryStore({ name: 'db' }))
    const chain = new ChainedStore([l0, l1, db])
    await l1.put(makeUser(31)) // only in the middle layer
    await db.put(makeUser(32)) // only in the database
    await db.put(makeUser(31))
    const before = { l0: l0.calls.put, l1: l1.calls.put }
    expect(await chain.batchGet(ConformanceUser, [{ id: 31 }, { id: 32 }, { id: 33 }])).toEqual([makeUser(31), makeUser(32), undefined])
    expect(l0.calls.put - before.l0).toBe(1) // both copies, in one batch
    expect(l1.calls.put - before.l1).toBe(1) // the database's copy
    expect(await l0.batchGet(ConformanceUser, [{ id: 31 }, { id: 32 }])).toEqual([makeUser(31), makeUser(32)])
    expect(chain.stats().map((s) => s.backfills)).toEqual([2, 1, 0])
  })
})

describe('ChainedStore over polymorphic cache layers: keys checked before the authoritative write', () => {
  class ChainVehicle {
    static readonly stockpyleName: string = 'ChainPolyVehicle'
    static readonly stockpyleKeys = keys('plate')
    constructor(public plate: string | undefined) {}
  }
  class ChainBike extends ChainVehicle {
    static override readonly stockpyleName: string = 'ChainPolyBike'
    static override readonly stockpyleKeys = keys('serial')
    constructor(public serial: string) {
      super(undefined)
    }
  }
  class ChainAnimal {
    static readonly stockpyleName: string = 'ChainPolyAnimal'
    static readonly stockpyleKeys = keys('id')
    constructor(
      public id: number,
      public name: string,
    ) {}
  }
  class ChainDog extends ChainAnimal {
    static override readonly stockpyleName: string = 'ChainPolyDog'
  }
  class ChainCat extends ChainAnimal {
    static override readonly stockpyleName: string = 'ChainPolyCat'
  }
  registerModel(ChainVehicle, ChainBike, ChainAnimal, ChainDog, ChainCat)

  it("a put without an ancestor model's key a polymorphic cache needs is refused before the database holds it", async () => {
    const db = new ProcessMemoryStore()
    const chain = new ChainedStore([new ProcessMemoryStore({ polymorphic: true }), db])
    const errors: CacheErrorEvent[] = []
    chain.events.on('cacheError', (e) => errors.push(e))
    await expect(chain.put(new ChainBike('S1'))).rejects.toThrow(MissingKeyAttributeError)
    await expect(chain.put(new ChainBike('S1'))).rejects.toThrow(/store put of model `ChainPolyBike`.*`plate`/)
    expect(await db.get(ChainBike, { serial: 'S1' })).toBeUndefined()
    await expect(chain.batchPut([new ChainBike('S2')])).rejects.toThrow(MissingKeyAttributeError)
    expect(await db.get(ChainBike, { serial: 'S2' })).toBeUndefined()
    expect(errors).toEqual([])
    await chain.close()
  })

  it('a batch whose objects claim one ancestor key is a KeyConflictError before the database write, counted against no layer', async () => {
    const db = new ProcessMemoryStore()
    const chain = new ChainedStore([new ProcessMemoryStore({ polymorphic: true }), new ProcessMemoryStore({ polymorphic: true }), db])
    const errors: CacheErrorEvent[] = []
    chain.events.on('cacheError', (e) => errors.push(e))
    await chain.put(new ChainDog(1, 'old'))
    for (const batch of [
      [new ChainDog(1, 'rex'), new ChainCat(1, 'tom')],
      [new ChainAnimal(1, 'generic'), new ChainDog(1, 'rex')],
    ]) {
      await expect(chain.batchPut(batch)).rejects.toThrow(KeyConflictError)
      expect(await db.get(ChainCat, { id: 1 })).toBeUndefined()
      expect(await db.get(ChainAnimal, { id: 1 })).toBeUndefined()
      expect((await chain.get(ChainDog, { id: 1 }))?.name).toBe('old')
    }
    expect(errors).toEqual([])
    // a non-polymorphic chain leaves separate models with one id alone
    const plain = new ChainedStore([new ProcessMemoryStore(), new ProcessMemoryStore()])
    await plain.batchPut([new ChainDog(1, 'rex'), new ChainCat(1, 'tom')])
    expect((await plain.get(ChainCat, { id: 1 }))?.name).toBe('tom')
    await plain.close()
    await chain.close()
  })
})
