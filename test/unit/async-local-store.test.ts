import { describe, expect, it } from 'vitest'
import {
  AsyncLocalStore,
  ChainedStore,
  InvalidKeyError,
  InvalidOptionError,
  KeyConflictError,
  KeyValueStore,
  LoaderStore,
  MissingKeyAttributeError,
  SerializationError,
} from '../../src/index.js'
import { ConformanceUser, LocalBusHub, ManualClock, MapBackend, makeUser } from '../../src/testing/index.js'

describe('AsyncLocalStore', () => {
  it('holds nothing outside a scope: puts and deletes are no-ops, gets miss', async () => {
    const store = new AsyncLocalStore()
    await store.put(makeUser(1))
    expect(await store.get(ConformanceUser, { id: 1 })).toBeUndefined()
    await store.delete(makeUser(1))
    expect(store.inScope).toBe(false)
  })

  it('bad input gets the same typed error outside a scope, with or without another scope live, as inside one (review: none when no scope was live)', async () => {
    const noEmail = () => Object.assign(makeUser(1), { email: undefined })
    const nanId = () => Object.assign(makeUser(1), { id: Number.NaN })
    const twoClaimEmail = () => [makeUser(1), Object.assign(makeUser(2), { email: makeUser(1).email })]
    const calls: [string, (store: AsyncLocalStore) => Promise<unknown>, new (...args: never[]) => Error][] = [
      ['put of an object missing a key attribute', (store) => store.put(noEmail()), MissingKeyAttributeError],
      ['put of a value that cannot be stored', (store) => store.put(Object.assign(makeUser(1), { name: () => 1 })), SerializationError],
      ['put with a key that is NaN', (store) => store.put(nanId()), InvalidKeyError],
      ['batchPut of two objects claiming one email', (store) => store.batchPut(twoClaimEmail()), KeyConflictError],
      ['delete of an object with a key that is NaN', (store) => store.delete(nanId()), InvalidKeyError],
      ['delete of an object missing a key attribute', (store) => store.delete(noEmail()), MissingKeyAttributeError],
      ['delete by a key that is NaN', (store) => store.delete(ConformanceUser, { id: Number.NaN }), InvalidKeyError],
      ['invalidation of a key that is NaN', (store) => store.batchInvalidate(ConformanceUser, [{ id: Number.NaN }]), InvalidKeyError],
    ]
    const outcome = async (call: () => Promise<unknown>) => {
      try {
        await call()
        return 'resolved'
      } catch (err) {
        return err
      }
    }
    for (const [what, call, type] of calls) {
      // (a store each: a scope stays live until the garbage collector drops its map)
      const inScope = new AsyncLocalStore()
      const inside = await inScope.run(() => outcome(() => call(inScope)))
      const alone = new AsyncLocalStore()
      const outsideAlone = await outcome(() => call(alone))
      const besideOther = new AsyncLocalStore()
      let end = () => {}
      const live = besideOther.run(() => new Promise<void>((resolve) => (end = resolve)))
      const outsideBesideOther = await outcome(() => call(besideOther))
      end()
      await live
      for (const [where, err] of [
        ['inside a scope', inside],
        ['outside, no scope live', outsideAlone],
        ['outside, another scope live', outsideBesideOther],
      ] as const) {
        expect(err, `${what}, ${where}`).toBeInstanceOf(type)
        expect((err as Error).message, `${what}, ${where}`).toBe((inside as Error).message)
      }
    }
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

  it('a Date lifetime that has passed: scopes still run and cache nothing (each scope used to refuse it as a Date in the past)', async () => {
    const clock = new ManualClock()
    const store = new AsyncLocalStore({ clock, lifetime: new Date(clock.now() + 1000) })
    const putAndGet = () =>
      store.run(async () => {
        await store.put(makeUser(1))
        return store.get(ConformanceUser, { id: 1 })
      })
    expect((await putAndGet())?.id).toBe(1)
    clock.advance(2000)
    expect(await putAndGet()).toBeUndefined()
  })

  it('a write in another scope (nested, concurrent or none) drops the copy from every live scope: a later read there gets the new value', async () => {
    const requestCache = new AsyncLocalStore()
    const rows = new Map([[1, makeUser(1)]])
    const chain = new ChainedStore([
      requestCache,
      new LoaderStore({
        model: ConformanceUser,
        load: async (lookups) =>
          lookups.map((l) =>
            [...rows.values()].find((u) => u.email === (l as { email?: string }).email || u.id === (l as { id?: number }).id),
          ),
        save: async (objs) => {
          for (const o of objs) rows.set(o.id, o)
        },
        remove: async (objs) => {
          for (const o of objs) rows.delete(o.id)
        },
      }),
    ])
    const named = (name: string) => Object.assign(makeUser(1), { name })
    const read = async () => (await chain.get(ConformanceUser, { email: makeUser(1).email }))?.name
    const signal = () => {
      let fire = () => {}
      const fired = new Promise<void>((resolve) => {
        fire = resolve
      })
      return { fire, fired }
    }
    // nested: the inner scope's write reaches the outer scope
    await requestCache.run(async () => {
      expect(await read()).toBe(makeUser(1).name) // now cached in this scope
      await requestCache.run(() => chain.put(named('nested')))
      expect(await read()).toBe('nested')
    })
    // concurrent: one request holds a copy while another writes; then a write outside any scope; then a delete by key
    const cached = [signal(), signal(), signal()]
    const written = [signal(), signal(), signal()]
    const reader = requestCache.run(async () => {
      const seen: (string | undefined)[] = []
      for (let i = 0; i < 3; i++) {
        seen.push(await read())
        ;(cached[i] as ReturnType<typeof signal>).fire()
        await (written[i] as ReturnType<typeof signal>).fired
      }
      seen.push(await read())
      return seen
    })
    const writes = [
      () => requestCache.run(() => chain.put(named('concurrent'))),
      () => chain.put(named('outside')),
      () => requestCache.run(() => chain.delete(ConformanceUser, { id: 1 })),
    ]
    for (let i = 0; i < 3; i++) {
      await (cached[i] as ReturnType<typeof signal>).fired
      await (writes[i] as () => Promise<unknown>)()
      ;(written[i] as ReturnType<typeof signal>).fire()
    }
    expect(await reader).toEqual(['nested', 'concurrent', 'outside', undefined])
  })

  it("a write elsewhere leaves scopes that do not hold its objects alone (no tombstones: they cost memory per live scope, and with max they evicted the scope's own copies)", async () => {
    const requestCache = new AsyncLocalStore({ max: 1 })
    let loads = 0
    const chain = new ChainedStore([
      requestCache,
      new LoaderStore({
        model: ConformanceUser,
        load: async (lookups) => {
          loads++
          return lookups.map((l) => makeUser((l as { id: number }).id))
        },
        save: async () => {},
      }),
    ])
    let wrote = () => {}
    const written = new Promise<void>((resolve) => {
      wrote = resolve
    })
    let held = () => {}
    const holding = new Promise<void>((resolve) => {
      held = resolve
    })
    const reader = requestCache.run(async () => {
      await chain.get(ConformanceUser, { id: 1 }) // this scope's one copy
      held()
      await written
      await chain.get(ConformanceUser, { id: 1 })
    })
    await holding
    for (let id = 2; id < 7; id++) await chain.put(makeUser(id)) // outside any scope: other objects
    wrote()
    await reader
    expect(loads).toBe(1)
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

  /**
   * Two chains over one AsyncLocalStore and one source: a read through `slow` in the scope returned
   * by `scope` takes its copy, then is held until `released`; `fast` and `rows` are the other way in.
   */
  function twoChains() {
    const requestCache = new AsyncLocalStore()
    const rows = new Map([[1, makeUser(1)]])
    let release = () => {}
    let hold: Promise<void> | undefined
    let loaded = () => {}
    const source = (held: boolean) =>
      new LoaderStore({
        model: ConformanceUser,
        load: async (lookups) => {
          const found = lookups.map((l) => {
            const row = rows.get((l as { id: number }).id)
            return row === undefined ? undefined : Object.assign(makeUser(row.id), row)
          })
          if (held && hold !== undefined) {
            loaded()
            await hold
          }
          return found
        },
        save: async (objs) => {
          for (const o of objs) rows.set(o.id, Object.assign(makeUser(o.id), o))
        },
      })
    const slow = new ChainedStore([requestCache, source(true)])
    const fast = new ChainedStore([requestCache, source(false)])
    /** Starts a held read through `slow`; resolves once it has taken its copy. */
    const holdRead = async () => {
      const taken = new Promise<void>((resolve) => {
        loaded = resolve
      })
      hold = new Promise((resolve) => {
        release = resolve
      })
      const reading = slow.get(ConformanceUser, { id: 1 })
      await taken
      return {
        reading,
        release: () => {
          hold = undefined
          release()
        },
      }
    }
    return { requestCache, rows, slow, fast, holdRead }
  }

  it('two chains over one store: a write through one, in another scope, fences a read in flight through the other in a scope that held nothing (review: the old copy landed)', async () => {
    const { requestCache, rows, slow, fast, holdRead } = twoChains()
    const named = (name: string) => Object.assign(makeUser(1), { name })
    await requestCache.run(async () => {
      const { reading, release } = await holdRead() // this scope's map is empty; the read has v1
      await requestCache.run(() => fast.put(named('v2'))) // another request writes v2, resolved
      release()
      expect((await reading)?.name).toBe(makeUser(1).name)
      expect((await slow.get(ConformanceUser, { id: 1 }))?.name).toBe('v2')
    })
    // a write outside any scope, and a put on the store itself in another scope (the app wrote the row), fence it as well
    const writes: [string, () => Promise<unknown>][] = [
      ['v3', () => fast.put(named('v3'))],
      [
        'v4',
        () => {
          rows.set(1, named('v4'))
          return requestCache.run(() => requestCache.put(named('v4')))
        },
      ],
    ]
    for (const [name, write] of writes) {
      await requestCache.run(async () => {
        const { reading, release } = await holdRead()
        await write()
        release()
        expect((await reading)?.name).not.toBe(name)
        expect((await slow.get(ConformanceUser, { id: 1 }))?.name).toBe(name)
      })
    }
  })

  it('a delete by key made on the store itself in another scope fences a read in flight in a scope that held nothing (review: it recorded nothing)', async () => {
    const { requestCache, rows, slow, holdRead } = twoChains()
    await requestCache.run(async () => {
      const { reading, release } = await holdRead()
      rows.delete(1) // the source changes, and the app evicts the object from request caches
      await requestCache.run(() => requestCache.delete(ConformanceUser, { id: 1 }))
      release()
      expect(await reading).toBeDefined()
      expect(await slow.get(ConformanceUser, { id: 1 })).toBeUndefined()
    })
  })
})

describe('AsyncLocalStore as the first layer of a chain: concurrent misses of one key in several scopes', () => {
  /** A chain [scope map, source] whose loads can be held; `loads` counts them. */
  function heldChain() {
    const requestCache = new AsyncLocalStore()
    const rows = new Map([[1, makeUser(1)]])
    const state = { loads: 0, hold: undefined as Promise<void> | undefined, loaded: () => {} }
    const chain = new ChainedStore([
      requestCache,
      new LoaderStore({
        model: ConformanceUser,
        load: async (lookups) => {
          state.loads++
          const found = lookups.map((l) => {
            const row = rows.get((l as { id: number }).id)
            return row === undefined ? undefined : Object.assign(makeUser(row.id), row)
          })
          if (state.hold !== undefined) {
            state.loaded()
            await state.hold
          }
          return found
        },
        save: async (objs) => {
          for (const o of objs) rows.set(o.id, Object.assign(makeUser(o.id), o))
        },
      }),
    ])
    /** Holds the next load; resolves `taken` once it has read its rows; `release` lets it answer. */
    const holdNextLoad = () => {
      let release = () => {}
      state.hold = new Promise((resolve) => {
        release = () => {
          state.hold = undefined
          resolve()
        }
      })
      const taken = new Promise<void>((resolve) => {
        state.loaded = resolve
      })
      return { taken, release }
    }
    /** Three concurrent scopes: two `get`s (the fast path) and one `batchGet` of id 1; then `after` in each scope. */
    const threeScopes = <T>(after: () => Promise<T>) =>
      Promise.all(
        [
          () => chain.get(ConformanceUser, { id: 1 }),
          () => chain.get(ConformanceUser, { id: 1 }),
          async () => (await chain.batchGet(ConformanceUser, [{ id: 1 }]))[0],
        ].map((read) => requestCache.run(async () => ({ read: (await read())?.name, after: await after() }))),
      )
    return { requestCache, rows, chain, state, holdNextLoad, threeScopes }
  }

  it("each scope's map takes the copy of the one shared read, so the next read there does not reach the source (review: only the first reader's scope was backfilled)", async () => {
    const { requestCache, chain, state, holdNextLoad, threeScopes } = heldChain()
    const { taken, release } = holdNextLoad()
    const done = threeScopes(async () => {
      const held = (await requestCache.get(ConformanceUser, { id: 1 }))?.name
      const again = (await chain.get(ConformanceUser, { id: 1 }))?.name
      return { held, again }
    })
    await taken
    await new Promise((r) => setImmediate(r)) // the other two scopes miss their maps and join the read
    release()
    const name = makeUser(1).name
    expect(await done).toEqual([0, 1, 2].map(() => ({ read: name, after: { held: name, again: name } })))
    expect(state.loads).toBe(1)
    expect(chain.stats()[1]?.hits).toBe(1)
  })

  it('a write that lands while the shared read is in flight: no scope keeps the copy it read before', async () => {
    const { requestCache, rows, chain, holdNextLoad, threeScopes } = heldChain()
    const named = (name: string) => Object.assign(makeUser(1), { name })
    const writes: [string, () => Promise<unknown>][] = [
      ['through the chain', () => chain.put(named('through the chain'))],
      [
        'on the store itself',
        () => {
          rows.set(1, named('on the store itself'))
          return requestCache.run(() => requestCache.put(named('on the store itself')))
        },
      ],
    ]
    for (const [name, write] of writes) {
      const before = rows.get(1)?.name
      const { taken, release } = holdNextLoad()
      let wrote = () => {}
      const written = new Promise<void>((resolve) => {
        wrote = resolve
      })
      const done = threeScopes(async () => {
        await written
        const held = (await requestCache.get(ConformanceUser, { id: 1 }))?.name
        const again = (await chain.get(ConformanceUser, { id: 1 }))?.name
        return { held, again }
      })
      await taken
      await new Promise((r) => setImmediate(r))
      await write()
      release()
      wrote()
      expect(await done).toEqual([0, 1, 2].map(() => ({ read: before, after: { held: undefined, again: name } })))
    }
  })

  it('the stale copies served to concurrent scopes while the source fails land in no scope', async () => {
    const clock = new ManualClock()
    const requestCache = new AsyncLocalStore({ clock })
    let hold: Promise<void> | undefined
    let loaded = () => {}
    const chain = new ChainedStore(
      [
        requestCache,
        new KeyValueStore(new MapBackend(() => clock.now()), { clock, lifetime: 60, grace: 3600 }),
        new LoaderStore({
          model: ConformanceUser,
          load: async (lookups) => {
            if (hold === undefined) return lookups.map(() => makeUser(1))
            loaded()
            await hold
            throw new Error('the source is down')
          },
        }),
      ],
      { serveStale: true, breaker: false, clock },
    )
    await chain.get(ConformanceUser, { id: 1 }) // the shared layer has it, for 60 s
    clock.advance(61_000)
    let release = () => {}
    hold = new Promise((resolve) => {
      release = resolve
    })
    const taken = new Promise<void>((resolve) => {
      loaded = resolve
    })
    const done = Promise.all(
      [0, 1, 2].map(() =>
        requestCache.run(async () => {
          const read = (await chain.get(ConformanceUser, { id: 1 }))?.name
          return { read, held: await requestCache.get(ConformanceUser, { id: 1 }) }
        }),
      ),
    )
    await taken
    await new Promise((r) => setImmediate(r))
    release()
    expect(await done).toEqual([0, 1, 2].map(() => ({ read: makeUser(1).name, held: undefined })))
  })
})
