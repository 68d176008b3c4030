import { describe, expect, expectTypeOf, it } from 'vitest'
import { ChainedStore, isStockpyleError, keys, LoaderStore, type LoaderStoreOptions, ProcessMemoryStore } from '../../src/index.js'
import { ManualClock } from '../../src/testing/index.js'

class Weather {
  static readonly stockpyleName = 'LoaderWeather'
  static readonly stockpyleKeys = keys('city', ['lat', 'lon'])
  constructor(
    public city: string,
    public lat: number,
    public lon: number,
    public celsius: number,
  ) {}
}
class Other {
  static readonly stockpyleName = 'LoaderOther'
  static readonly stockpyleKeys = keys('id')
  constructor(public id: number) {}
}

const coded = (c: string) => (err: unknown) => isStockpyleError(err, c as never)

/** A computed source: counts loads and the lookups asked. */
function source() {
  const calls: object[][] = []
  let celsius = 20
  const load = async (lookups: readonly ({ city: string } | { lat: number; lon: number })[]) => {
    calls.push([...lookups])
    return lookups.map((l) => ('city' in l ? (l.city === 'Nowhere' ? undefined : new Weather(l.city, 1, 2, celsius)) : undefined))
  }
  return { calls, load, setCelsius: (c: number) => (celsius = c) }
}

describe('LoaderStore', () => {
  it('rejects bad options synchronously, naming them', () => {
    const load = async () => []
    expect(() => new LoaderStore({ model: Weather } as never)).toThrow(/`load`/)
    expect(() => new LoaderStore({ model: class NotAModel {} as never, load })).toThrow(/`model`/)
    expect(() => new LoaderStore({ model: Weather, load, save: 'x' as never })).toThrow(/`save`/)
    expect(() => new LoaderStore({ model: Weather, load, ttl: 5 } as never)).toThrow(/unknown option `ttl`/)
    expect(new LoaderStore({ model: Weather, load }).name).toBe('loader(LoaderWeather)')
  })

  it('declares itself authoritative and never expiring', () => {
    const store = new LoaderStore({ model: Weather, load: source().load })
    expect(store.capabilities).toMatchObject({ authoritative: true, expires: false, generatesKeys: false, inProcess: false })
    expect(store.writable).toBe(false)
  })

  it('loads distinct lookups once per batch, in order, and every slot gets its own copy', async () => {
    const s = source()
    const store = new LoaderStore({ model: Weather, load: s.load })
    const got = await store.batchGet(Weather, [{ city: 'Oslo' }, { city: 'Nowhere' }, { city: 'Oslo' }])
    expect(s.calls).toEqual([[{ city: 'Oslo' }, { city: 'Nowhere' }]])
    expect(got).toEqual([new Weather('Oslo', 1, 2, 20), undefined, new Weather('Oslo', 1, 2, 20)])
    expect(got[0]).not.toBe(got[2])
    expect(got[0]).toBeInstanceOf(Weather)
  })

  it('a read-only store refuses every write with E_UNSUPPORTED before loading or writing anything', async () => {
    const s = source()
    const store = new LoaderStore({ model: Weather, load: s.load })
    const w = new Weather('Oslo', 1, 2, 3)
    await expect(store.put(w)).rejects.toSatisfy(coded('E_UNSUPPORTED'))
    await expect(store.batchPut([w])).rejects.toSatisfy(coded('E_UNSUPPORTED'))
    await expect(store.delete(w)).rejects.toSatisfy(coded('E_UNSUPPORTED'))
    await expect(store.delete(Weather, { city: 'Oslo' })).rejects.toSatisfy(coded('E_UNSUPPORTED'))
    expect(s.calls).toEqual([])
  })

  it('in a chain, a read-only loader refuses puts and nothing is cached', async () => {
    const memory = new ProcessMemoryStore()
    const chain = new ChainedStore([memory, new LoaderStore({ model: Weather, load: source().load })])
    await expect(chain.put(new Weather('Rome', 1, 2, 30))).rejects.toSatisfy(coded('E_UNSUPPORTED'))
    expect(await memory.get(Weather, { city: 'Rome' })).toBeUndefined()
  })

  it('checks what load returns: one result per lookup, instances of the model, holding the looked-up key', async () => {
    const wrongLength = new LoaderStore({ model: Weather, load: async () => [] })
    await expect(wrongLength.get(Weather, { city: 'Oslo' })).rejects.toThrow(/one result per lookup \(1\), got 0/)
    const plain = new LoaderStore({ model: Weather, load: async () => [{ city: 'Oslo' } as Weather] })
    await expect(plain.get(Weather, { city: 'Oslo' })).rejects.toThrow(/not an instance of the model/)
    const wrongKey = new LoaderStore({ model: Weather, load: async () => [new Weather('Bergen', 1, 2, 3)] })
    await expect(wrongKey.get(Weather, { city: 'Oslo' })).rejects.toThrow(/does not match the lookup/)
    const other = new LoaderStore({ model: Weather, load: source().load })
    await expect(other.get(Other, { id: 1 })).rejects.toSatisfy(coded('E_UNKNOWN_MODEL'))
    // every key attribute, not only the looked-up one: without them the object can be neither cached nor deleted
    const incomplete = new LoaderStore({
      model: Weather,
      load: async () => [Object.assign(new Weather('Oslo', 1, 2, 3), { lat: undefined })],
    })
    await expect(incomplete.get(Weather, { city: 'Oslo' })).rejects.toSatisfy(coded('E_STOCKPYLE'))
    // the model is named once: `where` of the message is the store's operation, then the model
    const err = await incomplete.get(Weather, { city: 'Oslo' }).catch((e: unknown) => e)
    expect((err as Error).message).toBe(
      'loader(LoaderWeather) store load of model `LoaderWeather` got an object without key attribute `lat` (`undefined`) (for `{city:"Oslo"}`)',
    )
  })

  it('serves subclasses of its model: read, put and deleted by key through a chain', async () => {
    class Vehicle {
      static readonly stockpyleName: string = 'LoaderVehicle'
      static readonly stockpyleKeys = keys('plate')
      constructor(public plate: string) {}
    }
    class Car extends Vehicle {
      static override readonly stockpyleName: string = 'LoaderCar'
      constructor(
        plate: string,
        public seats: number,
      ) {
        super(plate)
      }
    }
    const rows = new Map<string, Vehicle>([['P1', new Car('P1', 4)]])
    const loader = new LoaderStore({
      model: Vehicle,
      load: async (lookups) => lookups.map((l) => rows.get(l.plate)),
      save: async (objs) => {
        for (const o of objs) rows.set(o.plate, o)
      },
      remove: async (objs) => {
        for (const o of objs) rows.delete(o.plate)
      },
    })
    const chain = new ChainedStore([new ProcessMemoryStore({ polymorphic: true }), loader])
    expect(await chain.get(Vehicle, { plate: 'P1' })).toEqual(new Car('P1', 4))
    expect(await chain.get(Vehicle, { plate: 'P1' })).toBeInstanceOf(Car)
    await chain.put(new Car('P2', 2))
    expect(rows.get('P2')).toBeInstanceOf(Car)
    await chain.delete(Vehicle, { plate: 'P1' })
    expect(rows.has('P1')).toBe(false)
    expect(await chain.get(Vehicle, { plate: 'P1' })).toBeUndefined()
    // an instance of the model that is not one of the subclass asked for is a miss of that subclass
    rows.set('P3', new Vehicle('P3'))
    expect(await loader.get(Car, { plate: 'P3' })).toBeUndefined()
  })

  it('errors from save and remove reject the write as StoreUnavailableError naming store, call and model, keeping the cause', async () => {
    const boom = new Error('HTTP 503 from source')
    const failing = async () => {
      throw boom
    }
    const store = new LoaderStore({ model: Weather, load: source().load, save: failing, remove: failing })
    for (const [call, write] of [
      ['save', () => new ChainedStore([new ProcessMemoryStore(), store]).put(new Weather('Oslo', 1, 2, 3))],
      ['remove', () => store.delete(new Weather('Oslo', 1, 2, 3))],
    ] as const) {
      const err = await write().catch((e: unknown) => e)
      expect(isStockpyleError(err, 'E_STORE_UNAVAILABLE')).toBe(true)
      expect((err as Error).message).toMatch(
        new RegExp(`loader\\(LoaderWeather\\) store ${call} of model \`LoaderWeather\` failed: HTTP 503 from source`),
      )
      expect((err as Error).cause).toBe(boom)
    }
  })

  it('a loaded value that cannot be stored names the model once', async () => {
    const store = new LoaderStore({ model: Weather, load: async () => [Object.assign(new Weather('Oslo', 1, 2, 3), { f: () => 1 })] })
    const err = (await store.get(Weather, { city: 'Oslo' }).catch((e: unknown) => e)) as Error
    expect(isStockpyleError(err, 'E_SERIALIZATION')).toBe(true)
    expect(err.message).toMatch(/^loader\(LoaderWeather\) store load of model `LoaderWeather`: `f` is a function/)
  })

  it('an error from load rejects the call as StoreUnavailableError with the error as cause', async () => {
    const boom = new Error('upstream 503')
    const store = new LoaderStore({
      model: Weather,
      load: async () => {
        throw boom
      },
    })
    const err = await store.get(Weather, { city: 'Oslo' }).catch((e: unknown) => e)
    expect(isStockpyleError(err, 'E_STORE_UNAVAILABLE')).toBe(true)
    expect((err as Error).cause).toBe(boom)
    expect((err as Error).message).toMatch(/upstream 503/)
  })

  it('behind a chain: a typed getOrSet with single-flight and negative caching', async () => {
    const s = source()
    const chain = new ChainedStore([new ProcessMemoryStore({ lifetime: 60 }), new LoaderStore({ model: Weather, load: s.load })], {
      missLifetime: 30,
    })
    const all = await Promise.all(Array.from({ length: 50 }, () => chain.get(Weather, { city: 'Oslo' })))
    expect(all.every((w) => w?.celsius === 20)).toBe(true)
    expect(s.calls.length).toBe(1)
    await chain.get(Weather, { city: 'Oslo' })
    expect(s.calls.length).toBe(1) // a memory hit
    expect(await chain.get(Weather, { city: 'Nowhere' })).toBeUndefined()
    expect(await chain.get(Weather, { city: 'Nowhere' })).toBeUndefined()
    expect(s.calls.length).toBe(2) // the miss was remembered
  })

  it('behind a chain with serveStale: a failing load is answered with the expired copy within the grace', async () => {
    const clock = new ManualClock()
    let failing = false
    const s = source()
    const loader = new LoaderStore({
      model: Weather,
      load: async (lookups) => {
        if (failing) throw new Error('upstream down')
        return s.load(lookups)
      },
    })
    const memory = new ProcessMemoryStore({ clock, lifetime: 10, grace: 600 })
    const chain = new ChainedStore([memory, loader], { serveStale: true })
    expect((await chain.get(Weather, { city: 'Oslo' }))?.celsius).toBe(20)
    clock.advance(60_000)
    failing = true
    expect((await chain.get(Weather, { city: 'Oslo' }))?.celsius).toBe(20)
    await expect(chain.get(Weather, { city: 'Paris' })).rejects.toSatisfy(coded('E_STORE_UNAVAILABLE'))
    failing = false
    s.setCelsius(25)
    expect((await chain.get(Weather, { city: 'Oslo' }))?.celsius).toBe(25)
  })

  it('with save and remove: a chain writes through and deletes by key through the loader', async () => {
    const backing = new Map<string, Weather>()
    const loader = new LoaderStore({
      model: Weather,
      load: (lookups) =>
        lookups.map((l) => ('city' in l ? backing.get(l.city) : [...backing.values()].find((w) => w.lat === l.lat && w.lon === l.lon))),
      save: (ws) => {
        for (const w of ws) backing.set(w.city, new Weather(w.city, w.lat, w.lon, w.celsius))
      },
      remove: (ws) => {
        for (const w of ws) backing.delete(w.city)
      },
    })
    const memory = new ProcessMemoryStore()
    const chain = new ChainedStore([memory, loader])
    await chain.put(new Weather('Lima', 5, 6, 18))
    expect(await memory.get(Weather, { lat: 5, lon: 6 })).toEqual(new Weather('Lima', 5, 6, 18))
    await chain.delete(Weather, { lat: 5, lon: 6 })
    expect(backing.size).toBe(0)
    expect(await memory.get(Weather, { city: 'Lima' })).toBeUndefined()
  })
})

describe('LoaderStore timeout', () => {
  it('a load that does not settle in time rejects with StoreUnavailableError; reads joined to it are freed; the next read loads again', async () => {
    let hang = true
    let loads = 0
    const store = new LoaderStore({
      model: Weather,
      timeout: 50,
      load: (lookups) => {
        loads++
        if (hang) return new Promise<never>(() => {})
        return lookups.map((l) => new Weather((l as { city: string }).city, 1, 2, 5))
      },
    })
    const chain = new ChainedStore([new ProcessMemoryStore(), store])
    const started = performance.now()
    const reads = [chain.get(Weather, { city: 'Oslo' }), chain.batchGet(Weather, [{ city: 'Oslo' }, { city: 'Oslo' }])]
    for (const read of reads) await expect(read).rejects.toSatisfy(coded('E_STORE_UNAVAILABLE'))
    await expect(reads[0]).rejects.toThrow(/did not settle within 50 ms \(option `timeout`\)/)
    expect(performance.now() - started).toBeLessThan(2_000)
    expect(loads).toBe(1)
    hang = false
    expect(await chain.get(Weather, { city: 'Oslo' })).toEqual(new Weather('Oslo', 1, 2, 5))
    expect(loads).toBe(2)
    await chain.close()
  })

  it('save and remove are bounded too; a bad timeout is refused at construction', async () => {
    const store = new LoaderStore({
      model: Weather,
      timeout: 30,
      load: () => [],
      save: () => new Promise<void>(() => {}),
      remove: () => {},
    })
    await expect(store.put(new Weather('Rome', 1, 2, 3))).rejects.toThrow(/save of model `LoaderWeather` did not settle within 30 ms/)
    await expect(store.delete(new Weather('Rome', 1, 2, 3))).resolves.toBeUndefined()
    for (const timeout of [0, -1, Number.NaN, 2 ** 31, '50']) {
      expect(() => new LoaderStore({ model: Weather, load: () => [], timeout: timeout as number })).toThrow(
        /option `timeout` must be a number of ms/,
      )
    }
  })
})

describe('LoaderStore asked for a subclass of its model', () => {
  class Member {
    static readonly stockpyleName: string = 'LoaderMember'
    static readonly stockpyleKeys = keys('id', 'email')
    constructor(
      public id: number,
      public email: string,
    ) {}
  }
  class Admin extends Member {
    static override readonly stockpyleName: string = 'LoaderAdmin'
  }

  /** Member 1 is a plain Member, 2 an Admin; `asked` records the model each load was given. */
  function members() {
    const rows = new Map<number, Member>([
      [1, new Member(1, 'm@x')],
      [2, new Admin(2, 'a@x')],
    ])
    const asked: unknown[] = []
    const removed: Member[] = []
    const loader = new LoaderStore({
      model: Member,
      load: (lookups, model) => {
        asked.push(model)
        return lookups.map((l) => ('id' in l ? rows.get(l.id) : [...rows.values()].find((m) => m.email === l.email)))
      },
      save: () => {},
      remove: (objs) => {
        for (const o of objs) {
          removed.push(o)
          rows.delete(o.id)
        }
      },
    })
    return { rows, asked, removed, loader }
  }

  it('a loaded object of the model that is not an instance of the subclass asked is a miss, alone and through a chain', async () => {
    const { asked, loader } = members()
    const chain = new ChainedStore([new ProcessMemoryStore(), loader])
    for (const store of [loader, chain]) {
      expect(await store.get(Admin, { id: 1 })).toBeUndefined()
      expect(await store.get(Admin, { email: 'm@x' })).toBeUndefined()
      expect(await store.get(Admin, { id: 2 })).toBeInstanceOf(Admin)
      expect(await store.get(Member, { id: 1 })).toEqual(new Member(1, 'm@x'))
      // one such lookup does not fail the batch
      const got = await store.batchGet(Admin, [{ id: 1 }, { id: 2 }, { id: 3 }])
      expect(got).toEqual([undefined, new Admin(2, 'a@x'), undefined])
      expect(got[1]).toBeInstanceOf(Admin)
    }
    expect(asked.every((m) => m === Admin || m === Member)).toBe(true)
    expect(stats(chain).errors).toBe(0)
  })

  it('load is told the model asked for as its second argument', async () => {
    const { asked, loader } = members()
    await loader.get(Admin, { id: 2 })
    await loader.batchGet(Member, [{ id: 1 }])
    expect(asked).toEqual([Admin, Member])
    expectTypeOf<Parameters<LoaderStoreOptions<typeof Member>['load']>[1]>().toEqualTypeOf<typeof Member>()
  })

  it('a delete by key of the subclass that finds a plain object of the model removes nothing', async () => {
    const { rows, removed, loader } = members()
    const chain = new ChainedStore([new ProcessMemoryStore(), loader])
    for (const store of [loader, chain]) {
      await store.delete(Admin, { id: 1 })
      await store.batchDelete(Admin, [{ id: 1 }, { email: 'm@x' }])
    }
    expect(removed).toEqual([])
    expect(rows.get(1)).toEqual(new Member(1, 'm@x'))
    await chain.delete(Admin, { id: 2 })
    expect(removed).toEqual([new Admin(2, 'a@x')])
  })

  it("an object that is not an instance of the store's model stays an error, also when a subclass was asked", async () => {
    const loader = new LoaderStore({ model: Member, load: async () => [new Other(1) as unknown as Member] })
    await expect(loader.get(Admin, { id: 1 })).rejects.toThrow(/not an instance of the model/)
    await expect(loader.get(Member, { id: 1 })).rejects.toThrow(/not an instance of the model/)
    const plain = new LoaderStore({ model: Member, load: async () => [{ id: 1, email: 'm@x' } as Member] })
    await expect(plain.get(Admin, { id: 1 })).rejects.toSatisfy(coded('E_STOCKPYLE'))
  })
})

/** The chain's counters summed over its layers. */
function stats(chain: ChainedStore): { errors: number } {
  return { errors: chain.stats().reduce((n, s) => n + s.errors, 0) }
}

describe('LoaderStore without save or remove in a chain: writes refused before any layer is touched', () => {
  const save = () => {}
  const remove = () => {}

  it("declares the writes it refuses (refusesPuts without save, refusesDeletes without remove); a chain declares its last layer's", () => {
    const load = source().load
    const cases = [
      [{}, { refusesPuts: true, refusesDeletes: true }],
      [{ save }, { refusesPuts: false, refusesDeletes: true }],
      [{ remove }, { refusesPuts: true, refusesDeletes: false }],
      [
        { save, remove },
        { refusesPuts: false, refusesDeletes: false },
      ],
    ] as const
    for (const [fns, refuses] of cases) {
      const loader = new LoaderStore({ model: Weather, load, ...fns })
      expect(loader.capabilities).toMatchObject(refuses)
      const chain = new ChainedStore([new ProcessMemoryStore(), loader])
      expect(chain.capabilities).toMatchObject(refuses)
      expect(new ChainedStore([new ProcessMemoryStore(), chain]).capabilities).toMatchObject(refuses)
    }
    expect(new ProcessMemoryStore().capabilities).toMatchObject({ refusesPuts: false, refusesDeletes: false })
  })

  it('put, batchPut, delete, delete by key and batchDelete reject with E_UNSUPPORTED; the cached copies and their grace stay, no error is counted, nothing is loaded', async () => {
    const clock = new ManualClock()
    let failing = false
    const s = source()
    const loader = new LoaderStore({
      model: Weather,
      load: async (lookups) => {
        if (failing) throw new Error('upstream down')
        return s.load(lookups)
      },
    })
    const memory = new ProcessMemoryStore({ clock, lifetime: 10, grace: 600 })
    const chain = new ChainedStore([memory, loader], { serveStale: true, clock })
    const single = new ChainedStore([loader])
    const oslo = new Weather('Oslo', 1, 2, 20)
    expect(await chain.get(Weather, { city: 'Oslo' })).toEqual(oslo)
    for (const store of [chain, single]) {
      const refused = [
        () => store.put(new Weather('Oslo', 1, 2, 99)),
        () => store.batchPut([new Weather('Oslo', 1, 2, 99), new Weather('Rome', 3, 4, 30)]),
        () => store.delete(oslo),
        () => store.batchDelete([oslo]),
        () => store.delete(Weather, { city: 'Oslo' }),
        () => store.delete(Weather, { lat: 1, lon: 2 }),
        () => store.batchDelete(Weather, [{ city: 'Oslo' }, { city: 'Rome' }]),
      ]
      for (const write of refused) {
        const err = await write().catch((e: unknown) => e)
        expect(isStockpyleError(err, 'E_UNSUPPORTED'), String(err)).toBe(true)
        expect((err as Error).message).toMatch(/loader\(LoaderWeather\)/)
      }
    }
    // nothing touched: the copy is still live in memory, the source was asked once, no layer counted an error
    expect(await memory.get(Weather, { city: 'Oslo' })).toEqual(oslo)
    expect(await memory.get(Weather, { lat: 1, lon: 2 })).toEqual(oslo)
    expect(await memory.get(Weather, { city: 'Rome' })).toBeUndefined()
    expect(s.calls.length).toBe(1)
    expect(stats(chain).errors).toBe(0)
    expect(stats(single).errors).toBe(0)
    // the expired copy is still there for serveStale when the source fails
    clock.advance(60_000)
    failing = true
    expect((await chain.get(Weather, { city: 'Oslo' }))?.celsius).toBe(20)
  })

  it('a loader with save only refuses deletes up front and takes puts; one with remove only refuses puts up front and takes deletes', async () => {
    const saved: Weather[] = []
    const removed: Weather[] = []
    const s = source()
    const memory = new ProcessMemoryStore()
    const saving = new ChainedStore([memory, new LoaderStore({ model: Weather, load: s.load, save: (ws) => void saved.push(...ws) })])
    await saving.put(new Weather('Lima', 5, 6, 18))
    expect(saved).toEqual([new Weather('Lima', 5, 6, 18)])
    await expect(saving.delete(Weather, { city: 'Lima' })).rejects.toSatisfy(coded('E_UNSUPPORTED'))
    await expect(saving.delete(new Weather('Lima', 5, 6, 18))).rejects.toSatisfy(coded('E_UNSUPPORTED'))
    expect(await memory.get(Weather, { city: 'Lima' })).toEqual(new Weather('Lima', 5, 6, 18))
    expect(stats(saving).errors).toBe(0)
    const memory2 = new ProcessMemoryStore()
    const removing = new ChainedStore([
      memory2,
      new LoaderStore({ model: Weather, load: s.load, remove: (ws) => void removed.push(...ws) }),
    ])
    expect(await removing.get(Weather, { city: 'Oslo' })).toEqual(new Weather('Oslo', 1, 2, 20))
    await expect(removing.put(new Weather('Oslo', 1, 2, 99))).rejects.toSatisfy(coded('E_UNSUPPORTED'))
    expect(await memory2.get(Weather, { city: 'Oslo' })).toEqual(new Weather('Oslo', 1, 2, 20))
    expect(stats(removing).errors).toBe(0)
    await removing.delete(Weather, { city: 'Oslo' })
    expect(removed).toEqual([new Weather('Oslo', 1, 2, 20)])
    expect(await memory2.get(Weather, { city: 'Oslo' })).toBeUndefined()
  })
})
