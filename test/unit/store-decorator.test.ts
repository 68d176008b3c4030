import { describe, expect, it } from 'vitest'
import {
  BaseStore,
  ChainedStore,
  type DecoratedOperation,
  InvalidArgumentError,
  InvalidOptionError,
  KeyValueStore,
  type LeaseCapable,
  LoaderStore,
  type Lookup,
  type Model,
  ProcessMemoryStore,
  type Store,
  StoreDecorator,
  type StoreDecoratorOptions,
  type TransactionCapable,
} from '../../src/index.js'
import { createTable, SqlStore } from '../../src/stores/sql/index.js'
import { ConformanceUser, conformanceTables, FaultStore, MapBackend, makeUser } from '../../src/testing/index.js'

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

describe('StoreDecorator subclasses that implement optional methods themselves', () => {
  /** Adds clear() (of a memo of its own) and in-process leases in front of a store that has neither. */
  class WithClearAndLeases extends StoreDecorator {
    cleared = 0
    readonly #held = new Set<string>()
    override async clear(): Promise<void> {
      this.cleared++
    }
    override async acquireLeases<M extends Model>(_model: M, lookups: readonly Lookup<M>[]): Promise<boolean[]> {
      return lookups.map((l) => {
        const key = JSON.stringify(l)
        if (this.#held.has(key)) return false
        this.#held.add(key)
        return true
      })
    }
    override async releaseLeases<M extends Model>(_model: M, lookups: readonly Lookup<M>[]): Promise<void> {
      for (const l of lookups) this.#held.delete(JSON.stringify(l))
    }
    override async leasesHeld<M extends Model>(_model: M, lookups: readonly Lookup<M>[]): Promise<boolean[]> {
      return lookups.map((l) => this.#held.has(JSON.stringify(l)))
    }
  }
  const loader = () => new LoaderStore({ model: ConformanceUser, load: async (lookups) => lookups.map(() => undefined) })

  it('keep them when the wrapped store lacks them; the methods they do not implement stay absent', async () => {
    const inner = loader()
    expect(typeof (inner as Store).clear).toBe('undefined')
    const store = new WithClearAndLeases(inner)
    await store.clear()
    expect(store.cleared).toBe(1)
    expect(await store.acquireLeases(ConformanceUser, [{ id: 1 }, { id: 1 }])).toEqual([true, false])
    expect(await store.leasesHeld(ConformanceUser, [{ id: 1 }, { id: 2 }])).toEqual([true, false])
    await store.releaseLeases(ConformanceUser, [{ id: 1 }])
    expect(await store.leasesHeld(ConformanceUser, [{ id: 1 }])).toEqual([false])
    expect(store.transaction).toBeUndefined()
    expect(store.clearCaches).toBeUndefined()
    expect(store.onRemoteChange).toBeUndefined()
  })

  it("reaching StoreDecorator's forwarding of a method the wrapped store lacks (super.clear()) rejects with UnsupportedOperationError", async () => {
    class ClearsUnder extends StoreDecorator {
      override clear(): Promise<void> {
        return super.clear?.() as Promise<void>
      }
    }
    const store = new ClearsUnder(loader(), { name: 'clears-under' })
    await expect(store.clear()).rejects.toMatchObject({ code: 'E_UNSUPPORTED' })
    await expect(store.clear()).rejects.toThrow(
      /clears-under store: clear\(\) is not supported: the store it wraps \(loader\(ConformanceUser\)\) has no clear\(\)/,
    )
  })
})

describe('StoreDecorator options', () => {
  const inner = new ProcessMemoryStore()

  it('refuses unknown names, with a hint when one is close, and options that are not an object', () => {
    expect(() => new StoreDecorator(inner, { ttl: 5 } as StoreDecoratorOptions)).toThrow(InvalidOptionError)
    expect(() => new StoreDecorator(inner, { ttl: 5 } as StoreDecoratorOptions)).toThrow(
      'StoreDecorator: unknown option `ttl` (known options: name)',
    )
    expect(() => new StoreDecorator(inner, { nmae: 'x' } as StoreDecoratorOptions)).toThrow(
      'StoreDecorator: unknown option `nmae`: did you mean `name`?',
    )
    for (const bad of [null, 'x', 42, ['name']]) {
      expect(() => new StoreDecorator(inner, bad as StoreDecoratorOptions)).toThrow(InvalidOptionError)
      expect(() => new StoreDecorator(inner, bad as StoreDecoratorOptions)).toThrow(/^StoreDecorator: options must be an object, got /)
    }
    expect(() => new StoreDecorator(inner, { name: null } as unknown as StoreDecoratorOptions)).toThrow(/option `name` is null/)
    expect(new StoreDecorator(inner, { name: undefined }).name).toBe('memory')
    expect(new StoreDecorator(inner, undefined).name).toBe('memory')
  })

  it('a subclass extends optionNames and may pass its whole options object on; messages name the subclass', () => {
    class Leveled extends StoreDecorator {
      static override readonly optionNames = [...StoreDecorator.optionNames, 'level']
      readonly level: number
      constructor(store: Store, options: StoreDecoratorOptions & { level?: number } = {}) {
        super(store, options)
        this.level = options.level ?? 1
      }
    }
    const store = new Leveled(inner, { name: 'leveled', level: 3 })
    expect([store.name, store.level]).toEqual(['leveled', 3])
    expect(() => new Leveled(inner, { levle: 3 } as never)).toThrow('Leveled: unknown option `levle`: did you mean `level`?')
    expect(() => new Leveled(inner, { ttl: 3 } as never)).toThrow('Leveled: unknown option `ttl` (known options: level, name)')
    expect(() => new StoreDecorator(inner, { level: 3 } as never)).toThrow(/StoreDecorator: unknown option `level`/)
    expect(new FaultStore(inner).name).toBe('fault(memory)')
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

  it('says the primitives must be methods when they are class fields (not set yet when BaseStore checks)', () => {
    class FieldStore extends Base {
      readonly name = 'fields'
      readMany = async (_info: unknown, requests: readonly unknown[]) => requests.map(() => undefined)
      writeMany = async () => {}
      removeMany = async () => {}
    }
    expect(() => new FieldStore()).toThrow(InvalidOptionError)
    expect(() => new FieldStore()).toThrow(
      /^FieldStore extends BaseStore but defines readMany, writeMany, removeMany as class fields .*which are not set yet when BaseStore's constructor checks them: write them as methods \(`protected async readMany\(/,
    )
    class MixedStore extends Base {
      readonly name = 'mixed'
      protected async readMany() {
        return []
      }
      writeMany = async () => {}
    }
    expect(() => new MixedStore()).toThrow(
      /^MixedStore extends BaseStore but defines writeMany as a class field .*; it does not implement removeMany at all/,
    )
  })
})

describe('FaultStore arguments', () => {
  class Doc {
    static readonly stockpyleKeys = ['id'] as const
    constructor(public id: number) {}
  }

  it("takes StoreDecorator's options (a name) and refuses others, as every decorator does (a second argument was ignored)", async () => {
    const inner = new ProcessMemoryStore({ name: 'mem' })
    expect(new FaultStore(inner).name).toBe('fault(mem)')
    expect(new FaultStore(inner, {}).name).toBe('fault(mem)')
    expect(new FaultStore(inner, { name: 'flaky' }).name).toBe('flaky')
    expect(() => new FaultStore(inner, { name: 'x', ttl: 5 } as never)).toThrow(InvalidOptionError)
    expect(() => new FaultStore(inner, { name: 'x', ttl: 5 } as never)).toThrow(/FaultStore: unknown option `ttl`/)
    for (const bad of ['', 42]) {
      expect(() => new FaultStore(inner, { name: bad } as never)).toThrow(/FaultStore: option `name` must be a non-empty string/)
    }
    expect(() => new FaultStore(inner, 'flaky' as never)).toThrow(/FaultStore: options must be an object/)
    await inner.close()
  })

  it('refuses what is not an operation with InvalidArgumentError (was a plain RangeError/TypeError), before changing anything', async () => {
    const fault = new FaultStore(new ProcessMemoryStore({ lifetime: 60 }))
    await fault.put(new Doc(1))
    expect(() => fault.fail('gett' as 'get')).toThrow(InvalidArgumentError)
    expect(() => fault.fail('read' as 'get')).toThrow(`FaultStore.fail: "read" is not an operation: use 'get', 'put' or 'delete'`)
    expect(() => fault.fail('get', 'Put' as 'put')).toThrow(InvalidArgumentError)
    expect(() => fault.fail(1 as unknown as 'get')).toThrow(InvalidArgumentError)
    expect(() => fault.gate('write' as 'put')).toThrow(InvalidArgumentError)
    expect(() => fault.gate(undefined as unknown as 'put')).toThrow(InvalidArgumentError)
    // nothing was failed or gated by the refused calls ('get' of the second one included)
    expect(await fault.get(Doc, { id: 1 })).toEqual(new Doc(1))
    await fault.put(new Doc(2))
    expect(fault.waiting).toEqual({ get: 0, put: 0, delete: 0 })
    await fault.close()
  })

  it('refuses a delay or jitter that is not a finite number of ms from 0 to 2^30 with InvalidArgumentError', async () => {
    const fault = new FaultStore(new ProcessMemoryStore({ lifetime: 60 }))
    fault.delay(5)
    for (const method of ['delay', 'jitter'] as const) {
      // (2^31 ms and more: Node's setTimeout would fire after 1 ms instead)
      for (const bad of ['100', '5', undefined, null, 10n, -50, -0.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, 2 ** 30 + 1]) {
        expect(() => fault[method](bad as unknown as number), `${method}(${String(bad)})`).toThrow(InvalidArgumentError)
      }
    }
    expect(() => fault.delay(-50)).toThrow('FaultStore.delay: ms must be a finite number from 0 to 2^30 (1073741824), got -50')
    fault.delay(2 ** 30)
    fault.delay(5)
    expect(() => fault.delay('100' as unknown as number)).toThrow('FaultStore.delay: ms must be a number of milliseconds, got "100"')
    expect(() => fault.jitter(5, 'random' as unknown as () => number)).toThrow(InvalidArgumentError)
    // the delay set before is still the one applied (5 ms, not 1001 nor none)
    const started = performance.now()
    await fault.get(Doc, { id: 1 })
    const took = performance.now() - started
    expect(took).toBeGreaterThanOrEqual(4)
    expect(took).toBeLessThan(500)
    fault.delay(0)
    fault.jitter(0)
    await fault.close()
  })
})
