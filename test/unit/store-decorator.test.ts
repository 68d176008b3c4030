import { describe, expect, it } from 'vitest'
import {
  BaseStore,
  ChainedStore,
  type DecoratedOperation,
  InvalidOptionError,
  KeyValueStore,
  type LeaseCapable,
  type Model,
  ProcessMemoryStore,
  type Store,
  StoreDecorator,
  type TransactionCapable,
} from '../../src/index.js'
import { createTable, SqlStore } from '../../src/stores/sql/index.js'
import { ConformanceUser, conformanceTables, MapBackend, makeUser } from '../../src/testing/index.js'

/** Records every call that passes its hook. */
class Recording extends StoreDecorator {
  readonly seen: [DecoratedOperation, readonly unknown[]][] = []
  protected override around<T>(operation: DecoratedOperation, args: readonly unknown[], call: () => Promise<T>): Promise<T> {
    this.seen.push([operation, args])
    return call()
  }
  ops(): DecoratedOperation[] {
    return this.seen.map(([op]) => op)
  }
}

describe('StoreDecorator', () => {
  it('forwards every operation of the entry-level contract to the same method of the wrapped store, through around()', async () => {
    const inner = new ProcessMemoryStore({ lifetime: 60 })
    const store = new Recording(inner)
    const user = makeUser(1)
    const expiresAt = Date.now() + 1000
    await store.put(user)
    await store.batchPut([makeUser(2)])
    expect(await store.get(ConformanceUser, { id: 1 })).toEqual(user)
    expect(await store.batchGet(ConformanceUser, [{ id: 2 }, { id: 3 }])).toEqual([makeUser(2), undefined])
    await store.batchPutEntries([{ value: makeUser(3), expiresAt }], { backfill: true })
    const [entry] = await store.batchGetEntries(ConformanceUser, [{ id: 3 }], { stale: true })
    expect(entry?.expiresAt).toBe(expiresAt) // the cap reached the wrapped store
    await store.batchInvalidate?.(ConformanceUser, [{ id: 3 }])
    expect(await inner.get(ConformanceUser, { id: 3 })).toBeUndefined()
    await store.delete(user)
    await store.batchDelete([makeUser(2)])
    expect(await inner.batchGet(ConformanceUser, [{ id: 1 }, { id: 2 }])).toEqual([undefined, undefined])
    await store[Symbol.asyncDispose]()
    expect(inner.closed).toBe(true)
    expect(store.ops()).toEqual([
      'put',
      'batchPut',
      'get',
      'batchGet',
      'batchPutEntries',
      'batchGetEntries',
      'batchInvalidate',
      'delete',
      'batchDelete',
      'close',
    ])
    expect(store.seen[4]?.[1]).toEqual([[{ value: makeUser(3), expiresAt }], { backfill: true }])
    expect(store.seen[5]?.[1][2]).toEqual({ stale: true })
  })

  it('declares the wrapped store capabilities and name (or its own name)', () => {
    const inner = new ProcessMemoryStore({ polymorphic: true })
    expect(new StoreDecorator(inner).capabilities).toBe(inner.capabilities)
    expect(new StoreDecorator(inner).name).toBe('memory')
    expect(new StoreDecorator(inner, { name: 'logged' }).name).toBe('logged')
  })

  it('has leases and transactions exactly when the wrapped store has them, and forwards them', async () => {
    const memory = new StoreDecorator(new ProcessMemoryStore())
    const memoryView = memory as unknown as Partial<LeaseCapable & TransactionCapable>
    expect(memoryView.acquireLeases).toBeUndefined()
    expect(memoryView.leasesHeld).toBeUndefined()
    expect(memoryView.transaction).toBeUndefined()
    expect(typeof memory.batchInvalidate).toBe('function')

    const kv = new Recording(new KeyValueStore(new MapBackend()))
    expect(kv.capabilities.leases).toBe(true)
    const leases = kv as unknown as LeaseCapable
    expect(await leases.acquireLeases(ConformanceUser, [{ id: 1 }], 1000)).toEqual([true])
    expect(await leases.acquireLeases(ConformanceUser, [{ id: 1 }], 1000)).toEqual([false])
    expect(await leases.leasesHeld(ConformanceUser, [{ id: 1 }])).toEqual([true])
    await leases.releaseLeases(ConformanceUser, [{ id: 1 }])
    expect(await leases.leasesHeld(ConformanceUser, [{ id: 1 }])).toEqual([false])
    expect(kv.ops()).toEqual(['acquireLeases', 'acquireLeases', 'leasesHeld', 'releaseLeases', 'leasesHeld'])
    // A chain accepts the decorated layer as its lease layer.
    const chain = new ChainedStore([new ProcessMemoryStore(), kv, new ProcessMemoryStore()], { leases: true })
    await chain.put(makeUser(5))
    await chain.close()

    const sql = new SqlStore({ url: 'sqlite::memory:' })
    for (const t of conformanceTables) await createTable(sql, t.model as Model, { table: t.table, columns: t.columns })
    const db = new Recording(sql)
    const viaChain = new ChainedStore([new ProcessMemoryStore(), db])
    await viaChain.transaction(async (tx) => {
      await tx.put(makeUser(7))
    })
    expect(db.ops()).toContain('transaction')
    expect(await viaChain.get(ConformanceUser, { id: 7 })).toEqual(makeUser(7))
    await viaChain.close()
  })

  it('lets errors of the wrapped store through unchanged', async () => {
    const inner = new ProcessMemoryStore()
    const store = new StoreDecorator(inner)
    await inner.close()
    await expect(store.get(ConformanceUser, { id: 1 })).rejects.toMatchObject({ code: 'E_STORE_CLOSED' })
    await expect(store.get(ConformanceUser, { nope: 1 } as never)).rejects.toMatchObject({ code: 'E_STORE_CLOSED' })
  })

  it('refuses to wrap something that is not a store', () => {
    expect(() => new StoreDecorator({ name: 'x' } as unknown as Store)).toThrow(InvalidOptionError)
    expect(() => new StoreDecorator(new ProcessMemoryStore(), { name: '' })).toThrow(/option `name`/)
  })
})

describe('a BaseStore subclass without the primitives', () => {
  // What the original library's tests did: extend the base and delegate the public methods.
  const Base = BaseStore as unknown as abstract new () => object
  class NaiveLoggingStore extends Base {
    readonly name = 'naive'
    readonly #inner: Store
    constructor(inner: Store) {
      super()
      this.#inner = inner
    }
    get = (m: Model, l: object) => this.#inner.get(m, l as never)
    put = (o: object) => this.#inner.put(o)
    delete = (o: object) => this.#inner.delete(o)
    close = () => this.#inner.close()
  }

  it('fails at construction with InvalidOptionError saying what to implement or to extend StoreDecorator', () => {
    const make = () => new NaiveLoggingStore(new ProcessMemoryStore())
    expect(make).toThrow(InvalidOptionError)
    expect(make).toThrow(
      /NaiveLoggingStore extends BaseStore but does not implement readMany, writeMany, removeMany: .*to wrap another store, extend StoreDecorator instead/,
    )
  })

  it('names only the primitives that are missing', () => {
    class HalfStore extends Base {
      readonly name = 'half'
      protected async readMany() {
        return []
      }
    }
    expect(() => new HalfStore()).toThrow(/HalfStore extends BaseStore but does not implement writeMany, removeMany:/)
  })
})
