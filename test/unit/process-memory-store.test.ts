import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it, vi } from 'vitest'
import { encodeRecord } from '../../src/core/codec.js'
import { invalidationSequence } from '../../src/core/invalidation-sequence.js'
import {
  ChainedStore,
  InvalidOptionError,
  keys,
  ProcessMemoryStore,
  registerModel,
  StoreClosedError,
  UnknownKeyError,
} from '../../src/index.js'
import { ConformanceUser, ManualClock, makeUser } from '../../src/testing/index.js'

describe('ProcessMemoryStore', () => {
  it('validates options synchronously, naming the option', () => {
    expect(() => new ProcessMemoryStore({ max: 0 })).toThrow(/`max`/)
    expect(() => new ProcessMemoryStore({ maxSize: -1 })).toThrow(/`maxSize`/)
    expect(() => new ProcessMemoryStore({ lifetime: 0 })).toThrow(/`lifetime`/)
    expect(() => new ProcessMemoryStore({ lifetime: 'x' as never })).toThrow(InvalidOptionError)
    expect(() => new ProcessMemoryStore({ unbounded: true, max: 5 })).toThrow(/`unbounded`/)
    expect(() => new ProcessMemoryStore({ clock: {} as never })).toThrow(/`clock`/)
  })

  it('max counts objects, not keys: three keys per object, max 10 holds 10 objects', async () => {
    const store = new ProcessMemoryStore({ max: 10 })
    await store.batchPut(Array.from({ length: 15 }, (_, i) => makeUser(i)))
    expect(store.size).toBe(10)
    const got = await store.batchGet(
      ConformanceUser,
      Array.from({ length: 15 }, (_, i) => ({ email: makeUser(i).email })),
    )
    expect(got.filter(Boolean)).toHaveLength(10)
    expect(got.slice(5)).toEqual(Array.from({ length: 10 }, (_, i) => makeUser(i + 5)))
  })

  it('max allocates nothing up front, however large (lru-cache preallocated max slots: 1e8 took 22 s and 3.8 GiB)', () => {
    const heap = process.memoryUsage().heapUsed
    const started = performance.now()
    const stores = [1e6, 1e8, 1e9, 2 ** 32, Number.MAX_SAFE_INTEGER].map((max) => new ProcessMemoryStore({ max }))
    expect(performance.now() - started).toBeLessThan(100)
    expect(process.memoryUsage().heapUsed - heap).toBeLessThan(16 * 2 ** 20)
    expect(stores).toHaveLength(5)
  })

  it('max and maxSize together: both bounds hold, least recently used out first, aliases with their objects', async () => {
    const store = new ProcessMemoryStore({ max: 3, maxSize: 2 ** 20 })
    await store.batchPut([makeUser(1), makeUser(2), makeUser(3)])
    expect((await store.get(ConformanceUser, { id: 1 }))?.id).toBe(1)
    await store.put(makeUser(4))
    expect(store.size).toBe(3)
    expect(await store.get(ConformanceUser, { email: makeUser(2).email })).toBeUndefined()
    expect((await store.batchGet(ConformanceUser, [{ id: 1 }, { id: 3 }, { id: 4 }])).map((u) => u?.id)).toEqual([1, 3, 4])
    // a delete's tombstone is a record too
    await store.delete(makeUser(1))
    await store.batchPut([makeUser(5), makeUser(6)])
    expect(store.size).toBe(3)
  })

  it('getNow answers at once: a fresh copy, undefined on a miss, errors thrown (what a chain serves its hits through)', async () => {
    const store = new ProcessMemoryStore()
    await store.put(makeUser(1))
    const a = store.getNow(ConformanceUser, { id: 1 })
    const b = store.getNow(ConformanceUser, { id: 1 })
    expect(a).toEqual(makeUser(1))
    expect(a).toBeInstanceOf(ConformanceUser)
    expect(a).not.toBe(b)
    expect(store.getNow(ConformanceUser, { id: 2 })).toBeUndefined()
    expect(() => store.getNow(ConformanceUser, { nope: 1 } as never)).toThrow(UnknownKeyError)
    const chain = new ChainedStore([store, new ProcessMemoryStore({ name: 'below' })])
    expect(await chain.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1))
    expect(chain.stats()[0]).toMatchObject({ hits: 1, misses: 0 })
    await expect(chain.get(ConformanceUser, { nope: 1 } as never)).rejects.toThrow(/chain store get/)
    await chain.close()
    expect(() => store.getNow(ConformanceUser, { id: 1 })).toThrow(StoreClosedError)
    await expect(chain.get(ConformanceUser, { id: 1 })).rejects.toThrow(StoreClosedError)
  })

  it('backfillNow lands a copy at once, only where nothing live is held and no invalidation came after its read', async () => {
    const clock = new ManualClock()
    const store = new ProcessMemoryStore({ clock, lifetime: 60 })
    const copy = (id: number, name: string, expiresAt?: number) => ({ value: Object.assign(makeUser(id), { name }), expiresAt })
    // lands at once (no promise), reachable by every key, capped at the copy's expiry
    store.backfillNow([copy(1, 'copy', clock.now() + 5_000)], invalidationSequence())
    expect(store.getNow(ConformanceUser, { email: makeUser(1).email })?.name).toBe('copy')
    clock.advance(5_000)
    expect(store.getNow(ConformanceUser, { id: 1 })).toBeUndefined()
    // never over a live put
    await store.put(Object.assign(makeUser(2), { name: 'put' }))
    store.backfillNow([copy(2, 'copy')], invalidationSequence())
    expect(store.getNow(ConformanceUser, { id: 2 })?.name).toBe('put')
    // never over a tombstone, nor when the key was invalidated after the read began
    const since = invalidationSequence()
    await store.batchInvalidate(ConformanceUser, [{ id: 3 }])
    store.backfillNow([copy(3, 'copy')], since)
    expect(store.getNow(ConformanceUser, { id: 3 })).toBeUndefined()
    clock.advance(60_000) // the tombstone is gone; the invalidation is still remembered
    store.backfillNow([copy(3, 'copy')], since)
    expect(store.getNow(ConformanceUser, { id: 3 })).toBeUndefined()
    store.backfillNow([copy(3, 'later')], invalidationSequence())
    expect(store.getNow(ConformanceUser, { id: 3 })?.name).toBe('later')
    // every copy is checked before any lands
    expect(() => store.backfillNow([copy(4, 'ok'), { value: { id: 5 }, expiresAt: undefined }], undefined)).toThrow(/memory store put/)
    expect(store.getNow(ConformanceUser, { id: 4 })).toBeUndefined()
    await store.close()
    expect(() => store.backfillNow([copy(6, 'late')], undefined)).toThrow(StoreClosedError)
  })

  it('an object bigger than the whole maxSize is not held, and its alternate key does not point to it', async () => {
    const store = new ProcessMemoryStore({ maxSize: 2048 })
    const big = Object.assign(makeUser(1), { name: 'x'.repeat(4096) })
    await store.put(big)
    store.backfillNow([{ value: big, expiresAt: undefined }], undefined)
    expect(store.getNow(ConformanceUser, { id: 1 })).toBeUndefined()
    expect(store.size).toBe(1) // the put's tombstone: a copy read before the put must not land in its place
    expect(store.getNow(ConformanceUser, { email: big.email })).toBeUndefined()
    await store.put(makeUser(2))
    expect(store.getNow(ConformanceUser, { email: makeUser(2).email })).toEqual(makeUser(2))
  })

  it('evicting an object removes its alternate keys too', async () => {
    const store = new ProcessMemoryStore({ max: 1 })
    await store.put(makeUser(1))
    await store.put(makeUser(2))
    expect(await store.get(ConformanceUser, { email: makeUser(1).email })).toBeUndefined()
    expect(await store.get(ConformanceUser, { email: makeUser(2).email })).toEqual(makeUser(2))
  })

  it('maxSize bounds the accounted bytes, payload plus overhead', async () => {
    const store = new ProcessMemoryStore({ maxSize: 64 * 1024 })
    await store.batchPut(Array.from({ length: 2000 }, (_, i) => makeUser(i)))
    expect(store.calculatedSize).toBeLessThanOrEqual(64 * 1024)
    expect(store.size).toBeGreaterThan(20)
    expect(store.size).toBeLessThan(2000)
  })

  it('what held records keep alive is counted: their bytes share buffers only with other records of the store', async () => {
    // Records under 4 KiB were slices of Node's shared 8 KiB Buffer pool, counted at their own length:
    // one that outlived its neighbours kept the whole slab (with 1,900-byte objects, one in four kept
    // hot, a 64 MiB store grew the process by 108 MiB). A copy from a remote layer arrives as a slice of
    // the socket's buffer.
    registerModel(ConformanceUser)
    const store = new ProcessMemoryStore({ maxSize: 2 ** 20 })
    const doc = (id: number) => Object.assign(makeUser(id), { name: 'x'.repeat(1900) })
    const socket = new Uint8Array(64 * 1024)
    let at = 0
    const slice = (id: number): Uint8Array => {
      const bytes = encodeRecord(doc(id), undefined)
      socket.set(bytes, at)
      at += bytes.byteLength
      return socket.subarray(at - bytes.byteLength, at)
    }
    store.backfillNow(
      [1, 2, 3].map((id) => ({ value: doc(id), expiresAt: undefined, encoded: slice(id) })),
      undefined,
    )
    await store.batchPutEntries([{ value: doc(4), expiresAt: undefined, encoded: slice(4) }])
    // objects fill the store four times over while one in four of the first ones is read all along
    const hot = [1, 2, 3, 4]
    let next = 5
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 450; i += 50) {
        await store.batchPut(Array.from({ length: 50 }, () => doc(next++)))
        if (round === 0) for (let id = next - 50; id < next; id += 4) hot.push(id)
        await store.batchGet(
          ConformanceUser,
          hot.map((id) => ({ id })),
        )
      }
    }
    const held = (
      await store.batchGetEntries(
        ConformanceUser,
        Array.from({ length: next }, (_, id) => ({ id })),
      )
    ).filter((e) => e !== undefined)
    expect(held.map((e) => e.value.id)).toEqual(expect.arrayContaining(hot))
    const buffers = new Set(held.map((e) => (e.encoded as Uint8Array).buffer))
    let kept = 0
    for (const buffer of buffers) kept += buffer.byteLength
    expect(kept).toBeLessThanOrEqual(store.calculatedSize)
    expect(store.calculatedSize).toBeLessThanOrEqual(2 ** 20)
  })

  it('a batch of puts into a full store pushes out what one put after another does (its records are cut before any is held)', async () => {
    const users = Array.from({ length: 3000 }, (_, i) => makeUser(i))
    const one = new ProcessMemoryStore({ maxSize: 256 * 1024 })
    for (const user of users) await one.put(user)
    const batch = new ProcessMemoryStore({ maxSize: 256 * 1024 })
    await batch.batchPut(users)
    expect(batch.size).toBeGreaterThan(100)
    expect([batch.size, batch.calculatedSize]).toEqual([one.size, one.calculatedSize])
    const held = await batch.batchGetEntries(
      ConformanceUser,
      users.map((u) => ({ id: u.id })),
    )
    expect(held.filter((e) => e !== undefined).map((e) => e.value.id)).toEqual(users.slice(-batch.size).map((u) => u.id))
  })

  it('the process grows by about maxSize when a hot few outlive the rest, after a burst of deletes, under sustained backfills, and with long alternate keys (child process, --expose-gc)', async () => {
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        [
          '--expose-gc',
          fileURLToPath(new URL('./fixtures/memory-growth.mjs', import.meta.url)),
          'hot-few',
          'deletes',
          'backfills',
          'long-keys',
        ],
        { env: { ...process.env, NODE_OPTIONS: '' }, timeout: 60_000 },
        (error, out, stderr) => (error === null ? resolve(out) : reject(new Error(`${error.message}\n${stderr}`))),
      )
    })
    const runs = JSON.parse(stdout.trim()) as { scenario: string; maxSize: number; calculated: number; grew: number }[]
    for (const run of runs) {
      expect(run.calculated, run.scenario).toBeLessThanOrEqual(run.maxSize)
      // what it really holds, heap + external after a full GC, within a fifth of the bound
      expect(run.grew, run.scenario).toBeLessThan(run.maxSize * 1.2)
    }
  }, 90_000)

  it('defaults to a bound, and warns once when asked to be unbounded', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    new ProcessMemoryStore({ unbounded: true })
    new ProcessMemoryStore({ unbounded: true })
    expect(warn.mock.calls.filter((c) => (c[1] as { code?: string })?.code === 'STOCKPYLE_UNBOUNDED')).toHaveLength(1)
    warn.mockRestore()
    const store = new ProcessMemoryStore()
    await store.put(makeUser(1))
    expect(store.calculatedSize).toBeGreaterThan(0)
  })

  it('expires on the injected clock without sleeping; lifetimes never end early', async () => {
    const clock = new ManualClock(1_000_000)
    const store = new ProcessMemoryStore({ clock, lifetime: 0.5 })
    await store.put(makeUser(1))
    clock.advance(499)
    expect(await store.get(ConformanceUser, { id: 1 })).toBeDefined()
    clock.advance(1)
    expect(await store.get(ConformanceUser, { id: 1 })).toBeUndefined()
    expect(store.size).toBe(0)
  })

  it('returns instances without calling the constructor', async () => {
    let calls = 0
    class Tracked {
      static readonly stockpyleName = 'MemTracked'
      static readonly stockpyleKeys = keys('id')
      constructor(public id: number) {
        calls++
      }
    }
    const store = new ProcessMemoryStore()
    await store.put(new Tracked(1))
    calls = 0
    const got = await store.get(Tracked, { id: 1 })
    expect(got).toBeInstanceOf(Tracked)
    expect(calls).toBe(0)
  })
})

describe('ProcessMemoryStore (polymorphic): a base-model record and a subclass object at one key', () => {
  class PolyAnimal {
    static readonly stockpyleName: string = 'MemPolyAnimal'
    static readonly stockpyleKeys = keys('id')
    constructor(
      public id: number,
      public name: string,
    ) {}
  }
  class PolyDog extends PolyAnimal {
    static override readonly stockpyleName: string = 'MemPolyDog'
  }
  registerModel(PolyAnimal, PolyDog)
  const animalKey = async (id: number) => {
    const { describeModel } = await import('../../src/index.js')
    const { keyOfObjectFor } = await import('../../src/core/key-encoding.js')
    return keyOfObjectFor(describeModel(PolyAnimal).primary, { id }) as string
  }

  it('batchInvalidate and evict (the bus) of the base key leave nothing under it (they dropped the subclass and kept the old base record)', async () => {
    for (const drop of ['invalidate', 'evict'] as const) {
      const store = new ProcessMemoryStore({ polymorphic: true, max: 100 })
      await store.put(new PolyAnimal(3, 'old'))
      await store.put(new PolyDog(3, 'doggo'))
      if (drop === 'invalidate') await store.batchInvalidate(PolyAnimal, [{ id: 3 }])
      else store.evict([await animalKey(3)])
      expect(await store.get(PolyAnimal, { id: 3 }), drop).toBeUndefined()
      await store.close()
    }
  })
})
