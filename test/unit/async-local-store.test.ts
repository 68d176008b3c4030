import { describe, expect, it } from 'vitest'
import { AsyncLocalStore, ChainedStore, InvalidOptionError, LoaderStore } from '../../src/index.js'
import { ConformanceUser, LocalBusHub, ManualClock, makeUser } from '../../src/testing/index.js'

describe('AsyncLocalStore', () => {
  it('holds nothing outside a scope: puts and deletes are no-ops, gets miss', async () => {
    const store = new AsyncLocalStore()
    await store.put(makeUser(1))
    expect(await store.get(ConformanceUser, { id: 1 })).toBeUndefined()
    await store.delete(makeUser(1))
    expect(store.inScope).toBe(false)
  })

  it('concurrent scopes never see each other, across awaits', async () => {
    const store = new AsyncLocalStore()
    const request = (id: number) =>
      store.run(async () => {
        await store.put(makeUser(id))
        await new Promise((r) => setTimeout(r, 5))
        const mine = await store.get(ConformanceUser, { id })
        const other = await store.get(ConformanceUser, { id: id === 1 ? 2 : 1 })
        return [mine?.id, other]
      })
    expect(await Promise.all([request(1), request(2)])).toEqual([
      [1, undefined],
      [2, undefined],
    ])
  })

  it('a scope ends with its run: a later run starts empty', async () => {
    const store = new AsyncLocalStore()
    await store.run(() => store.put(makeUser(3)))
    expect(await store.run(() => store.get(ConformanceUser, { id: 3 }))).toBeUndefined()
  })

  it('refuses a bus: a scope lives for one request', () => {
    expect(() => new AsyncLocalStore({ bus: new LocalBusHub().connect() } as never)).toThrow(InvalidOptionError)
    expect(() => new AsyncLocalStore({ bus: new LocalBusHub().connect() } as never)).toThrow(/option `bus` is not for a per-scope store/)
  })

  it('refuses a backfill read before a delete, however long the read took (the tombstone long gone)', async () => {
    const clock = new ManualClock()
    const requestCache = new AsyncLocalStore({ clock })
    const rows = new Map([[1, makeUser(1)]])
    let hold: Promise<void> | undefined
    const source = (held: boolean) =>
      new LoaderStore({
        model: ConformanceUser,
        load: async (lookups) => {
          const found = lookups.map((l) => rows.get((l as { id: number }).id))
          if (held) await hold
          return found
        },
        remove: async (objs) => {
          for (const o of objs) rows.delete(o.id)
        },
      })
    const slow = new ChainedStore([requestCache, source(true)], { clock })
    const other = new ChainedStore([requestCache, source(false)], { clock })
    await requestCache.run(async () => {
      let release = () => {}
      hold = new Promise((resolve) => {
        release = resolve
      })
      const reading = slow.get(ConformanceUser, { id: 1 }) // the copy is read, its answer held
      await new Promise((r) => setImmediate(r))
      await other.delete(ConformanceUser, { id: 1 })
      clock.advance(60_000)
      release()
      await reading
      expect(await other.get(ConformanceUser, { id: 1 })).toBeUndefined()
    })
  })
})
