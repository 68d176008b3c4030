import { describe, expect, it } from 'vitest'
import {
  ChainedStore,
  KeyConflictError,
  KeyValueStore,
  LoaderStore,
  ProcessMemoryStore,
  type Store,
  StoreDecorator,
  StoreUnavailableError,
} from '../../src/index.js'
import { ConformanceUser, FaultStore, ManualClock, MapBackend, makeUser } from '../../src/testing/index.js'

/** outer [memory, inner [memory, source]], the inner chain plain or wrapped in a decorator. */
function nested(wrapped: boolean) {
  const rows = new Map([[1, makeUser(1)]])
  const source = new LoaderStore({
    model: ConformanceUser,
    load: async (lookups) => lookups.map((l) => rows.get((l as { id: number }).id)),
  })
  const innerMemory = new ProcessMemoryStore({ name: 'inner-memory' })
  const inner = new ChainedStore([innerMemory, source], { name: 'inner' })
  const outer = new ChainedStore([new ProcessMemoryStore({ name: 'outer-memory' }), wrapped ? new StoreDecorator(inner) : (inner as Store)])
  return { rows, innerMemory, outer }
}

describe('a chain as the last layer of another', () => {
  for (const wrapped of [false, true]) {
    const how = wrapped ? 'wrapped in a decorator' : 'as it is'
    it(`batchInvalidate drops the copies in its caches too (${how})`, async () => {
      const { rows, innerMemory, outer } = nested(wrapped)
      expect((await outer.get(ConformanceUser, { id: 1 }))?.name).toBe(makeUser(1).name)
      rows.set(1, Object.assign(makeUser(1), { name: 'changed at the source' }))
      await outer.batchInvalidate(ConformanceUser, [{ id: 1 }])
      expect(await innerMemory.get(ConformanceUser, { id: 1 })).toBeUndefined()
      expect((await outer.get(ConformanceUser, { id: 1 }))?.name).toBe('changed at the source')
    })

    it(`clearCaches() clears its caches too (${how})`, async () => {
      const { innerMemory, outer } = nested(wrapped)
      await outer.get(ConformanceUser, { id: 1 })
      expect(innerMemory.size).toBe(1)
      await outer.clearCaches()
      expect(innerMemory.size).toBe(0)
    })
  }

  it("serveStale: while the source fails, the outer chain serves the expired copies the nested chain's caches keep", async () => {
    const clock = new ManualClock()
    const rows = new Map([[1, makeUser(1)]])
    let failing = false
    const source = new LoaderStore({
      model: ConformanceUser,
      load: async (lookups) => {
        if (failing) throw new Error('source down')
        return lookups.map((l) => rows.get((l as { id: number }).id))
      },
    })
    const inner = new ChainedStore([new ProcessMemoryStore({ clock, lifetime: 1, grace: 3600 }), source], { clock })
    const outer = new ChainedStore([new ProcessMemoryStore({ clock, lifetime: 1 }), inner], { clock, serveStale: true })
    expect((await outer.get(ConformanceUser, { id: 1 }))?.name).toBe(makeUser(1).name)
    clock.advance(2000)
    failing = true
    expect((await outer.get(ConformanceUser, { id: 1 }))?.name).toBe(makeUser(1).name)
  })

  it('an error from the nested chain names the outer chain (the store the caller called), then the nested chain and the layer it arose in', async () => {
    const db = new FaultStore(new KeyValueStore(new MapBackend(), { name: 'dbkv' }), { name: 'db' })
    const inner = new ChainedStore([new ProcessMemoryStore({ name: 'inner-memory' }), db], { name: 'inner' })
    const outer = new ChainedStore([new ProcessMemoryStore({ name: 'outer-memory' }), inner], { name: 'outer' })
    db.fail('get', 'put')
    const get = await outer.get(ConformanceUser, { id: 1 }).catch((e: unknown) => e)
    expect(get).toBeInstanceOf(StoreUnavailableError)
    expect((get as Error).message).toBe('outer store get: inner store get: db store is failing get (injected) (raised by its layer `db`)')
    expect((get as Error).stack?.split('\n')[0]).toBe(`StoreUnavailableError: ${(get as Error).message}`)
    const put = await outer.put(makeUser(1)).catch((e: unknown) => e)
    expect((put as Error).message).toBe('outer store put: inner store put: db store is failing put (injected) (raised by its layer `db`)')
    // a chain nested deeper still: each chain names itself once, the outermost first
    const top = new ChainedStore([new ProcessMemoryStore({ name: 'top-memory' }), outer], { name: 'top' })
    const deep = await top.get(ConformanceUser, { id: 2 }).catch((e: unknown) => e)
    expect((deep as Error).message).toBe(
      'top store get: outer store get: inner store get: db store is failing get (injected) (raised by its layer `db`)',
    )
  })

  it('a nested chain shared by two chains: each caller of a read joined in the nested chain sees only the chains it called through', async () => {
    let loads = 0
    const source = new LoaderStore({
      name: 'db',
      model: ConformanceUser,
      load: async () => {
        loads++
        await new Promise((resolve) => setImmediate(resolve))
        throw new Error('source down')
      },
    })
    const inner = new ChainedStore([new ProcessMemoryStore({ name: 'inner-memory' }), source], { name: 'inner' })
    const one = new ChainedStore([new ProcessMemoryStore({ name: 'm1' }), inner], { name: 'one' })
    const two = new ChainedStore([new ProcessMemoryStore({ name: 'm2' }), inner], { name: 'two' })
    const [a, b] = await Promise.all(
      [one.get(ConformanceUser, { id: 1 }), two.get(ConformanceUser, { id: 1 })].map((p) => p.catch((e: unknown) => e)),
    )
    expect(loads).toBe(1)
    const tail = 'inner store get: db store load of model `ConformanceUser` failed: source down (raised by its layer `db`)'
    expect(a).toBeInstanceOf(StoreUnavailableError)
    expect(b).toBeInstanceOf(StoreUnavailableError)
    expect((a as Error).message).toBe(`one store get: ${tail}`)
    expect((b as Error).message).toBe(`two store get: ${tail}`)
    expect((a as Error).stack?.split('\n')[0]).toBe(`StoreUnavailableError: one store get: ${tail}`)
    expect((a as Error).cause).toBe((b as Error).cause)
  })

  it("two chains over one store that hands both callers the same error: each names only itself, the store's caller sees it unchanged", async () => {
    const shared = new StoreUnavailableError('db store get of model `ConformanceUser` could not reach the database (injected)')
    class SharedFailure extends StoreDecorator {
      protected override around<T>(operation: string, args: readonly unknown[], call: () => Promise<T>): Promise<T> {
        return operation === 'put' || operation === 'batchPut' ? super.around(operation as never, args, call) : Promise.reject(shared)
      }
    }
    const db = new SharedFailure(new KeyValueStore(new MapBackend(), { name: 'kv' }), { name: 'db' })
    const a = new ChainedStore([new ProcessMemoryStore(), db], { name: 'a' })
    const b = new ChainedStore([new ProcessMemoryStore(), db], { name: 'b' })
    const [fromA, fromB, fromDb] = await Promise.all(
      [a.get(ConformanceUser, { id: 1 }), b.get(ConformanceUser, { id: 1 }), db.get(ConformanceUser, { id: 1 })].map((p) =>
        p.catch((e: unknown) => e),
      ),
    )
    const tail = 'db store get of model `ConformanceUser` could not reach the database (injected) (raised by its layer `db`)'
    expect(fromA).toBeInstanceOf(StoreUnavailableError)
    expect((fromA as Error).message).toBe(`a store get: ${tail}`)
    expect((fromB as Error).message).toBe(`b store get: ${tail}`)
    expect(fromDb).toBe(shared)
    expect(shared.message).toBe('db store get of model `ConformanceUser` could not reach the database (injected)')
  })

  it('a caller error from the nested chain keeps its class and code, and each chain names itself once however often it passes', async () => {
    const conflict = new KeyConflictError('db store put of model `ConformanceUser` collides with another row (injected)')
    class Refusing extends MapBackend {
      override async setMany(): Promise<void> {
        throw conflict
      }
    }
    const inner = new ChainedStore([new ProcessMemoryStore({ name: 'inner-memory' }), new KeyValueStore(new Refusing(), { name: 'db' })], {
      name: 'inner',
    })
    const outer = new ChainedStore([new ProcessMemoryStore({ name: 'outer-memory' }), inner], { name: 'outer' })
    const named =
      'outer store put: inner store put: db store put of model `ConformanceUser` collides with another row (injected) (raised by its layer `db`)'
    for (let i = 0; i < 2; i++) {
      const err = await outer.put(makeUser(1)).catch((e: unknown) => e)
      // the outer chain names a copy: the nested chain's error may be shared by callers of other chains
      expect(err).toBeInstanceOf(KeyConflictError)
      expect(err).toMatchObject({ code: 'E_KEY_CONFLICT', message: named })
    }
    const direct = await inner.put(makeUser(1)).catch((e: unknown) => e)
    expect(direct).toBeInstanceOf(KeyConflictError)
    expect((direct as Error).message).toBe(
      'inner store put: db store put of model `ConformanceUser` collides with another row (injected) (raised by its layer `db`)',
    )
    // the layer's own error is never changed: the store may hand it to other callers too
    expect(conflict.message).toBe('db store put of model `ConformanceUser` collides with another row (injected)')
    expect(outer.stats().map((s) => s.errors)).toEqual([0, 0])
    expect(inner.stats().map((s) => s.errors)).toEqual([0, 0])
  })
})
