import { types } from 'node:util'
import { deserialize, serialize } from 'node:v8'
import { describe, expect, it } from 'vitest'
import { show } from '../../src/core/errors.js'
import {
  AsyncLocalStore,
  type CacheErrorEvent,
  ChainedStore,
  ConstraintViolationError,
  CorruptEntryError,
  canonicalKey,
  errors,
  InvalidArgumentError,
  InvalidKeyError,
  InvalidOptionError,
  isCallerError,
  isStockpyleError,
  KeyConflictError,
  KeyValueStore,
  keys,
  type Lifetime,
  MissingKeyAttributeError,
  PartialFailureError,
  ProcessMemoryStore,
  SchemaError,
  StockpyleError,
  type StockpyleErrorCode,
  StoreDecorator,
  StoreUnavailableError,
  UnknownKeyError,
  UnknownModelError,
  UnsupportedOperationError,
} from '../../src/index.js'
import { MemcacheStore } from '../../src/stores/memcache/index.js'
import { MapBackend } from '../../src/testing/index.js'

class Account {
  static readonly stockpyleName = 'MessagesAccount'
  static readonly stockpyleKeys = ['id', 'email'] as const
  constructor(
    public id: number,
    public email: string,
  ) {}
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p
  } catch (err) {
    return err as Error
  }
  throw new Error('expected a rejection')
}

describe('error messages', () => {
  it('show() renders offending values faithfully', () => {
    expect(show(Number.NaN)).toBe('`NaN`')
    expect(show(-0)).toBe('`-0`')
    expect(show(Number.NEGATIVE_INFINITY)).toBe('`-Infinity`')
    expect(show(undefined)).toBe('`undefined`')
    expect(show(12n)).toBe('`12n`')
    expect(show({ id: Number.NaN, n: [undefined, -0, 1n], s: 'x' })).toBe('`{id:NaN,n:[undefined,-0,1n],s:"x"}`')
    expect(show(new Account(1, 'a'))).toBe('`Account {id:1,email:"a"}`')
  })

  it('a chain names itself, not its first layer, for a bad lookup (get and batchGet), and shows the value', async () => {
    const chain = new ChainedStore([new ProcessMemoryStore(), new ProcessMemoryStore({ name: 'db' })], { name: 'app' })
    const unknown = await rejection(chain.get(Account, { nope: 1 } as never))
    expect(unknown).toBeInstanceOf(UnknownKeyError)
    expect(unknown.message).toMatch(/^app store get of model `MessagesAccount`/)
    const nan = await rejection(chain.get(Account, { id: Number.NaN }))
    expect(nan).toBeInstanceOf(InvalidKeyError)
    expect(nan.message).toMatch(/^app store get of model `MessagesAccount` got an invalid value `NaN` for key field `id`/)
    const inf = await rejection(chain.batchGet(Account, [{ id: -0 }, { id: Number.POSITIVE_INFINITY }]))
    expect(inf.message).toMatch(/^app store get .* `Infinity`/)
    const undef = await rejection(chain.get(Account, { id: undefined } as never))
    expect(undef.message).toMatch(/`undefined`/)
  })

  it('a class that is not a model, given to a read, a delete by key or an invalidation, is refused naming the store called and the operation; a chain counts it against no layer', async () => {
    class Plain {
      constructor(public id: number) {}
    }
    const model = Plain as never
    const notModel = '`[function Plain]` is not a model: a model is a class with a static stockpyleKeys array'
    const events: CacheErrorEvent[] = []
    const fast = new ChainedStore([new ProcessMemoryStore({ name: 'cache' }), new ProcessMemoryStore({ name: 'db' })], { name: 'app' })
    const slow = new ChainedStore([new KeyValueStore(new MapBackend(), { name: 'kv-cache' }), new ProcessMemoryStore({ name: 'db' })], {
      name: 'app2',
    })
    for (const chain of [fast, slow]) chain.events.on('cacheError', (e: CacheErrorEvent) => events.push(e))
    const stores = [new ProcessMemoryStore({ name: 'mem' }), new KeyValueStore(new MapBackend(), { name: 'kv' }), fast, slow]
    for (const store of stores) {
      for (const [operation, call] of [
        ['get', () => store.get(model, { id: 1 } as never)],
        ['get', () => store.batchGet(model, [{ id: 1 }] as never)],
        ['delete', () => store.delete(model, { id: 1 } as never)],
        ['delete', () => store.batchDelete(model, [{ id: 1 }] as never)],
        ['invalidate', () => store.batchInvalidate(model, [{ id: 1 }] as never)],
      ] as const) {
        const err = await rejection(call())
        expect(err).toBeInstanceOf(UnknownModelError)
        expect(err.message).toBe(`${store.name} store ${operation}: ${notModel}`)
        expect((err.cause as Error | undefined)?.message).toBe(notModel)
      }
    }
    expect(events).toEqual([])
    for (const chain of [fast, slow]) expect(chain.stats().map((s) => s.errors)).toEqual([0, 0])
    expect(() => canonicalKey(model, { id: 1 } as never)).toThrow(`canonicalKey: ${notModel}`)
    const local = new AsyncLocalStore({ name: 'local' })
    await local.run(async () => {
      expect((await rejection(local.get(model, { id: 1 } as never))).message).toBe(`local store get: ${notModel}`)
    })
  })

  it('MissingKeyAttributeError names the attribute really missing when the database generates the primary key', async () => {
    // a chain whose last layer generates keys: `id` may be missing, `email` may not
    const generating = new ProcessMemoryStore({ name: 'db' })
    Object.defineProperty(generating, 'capabilities', { value: { ...generating.capabilities, generatesKeys: true, authoritative: true } })
    const chain = new ChainedStore([new ProcessMemoryStore(), generating])
    const err = await rejection(chain.put(new Account(undefined as never, undefined as never)))
    expect(err).toBeInstanceOf(MissingKeyAttributeError)
    expect(err.message).toMatch(/without key attribute `email` \(`undefined`\)/)
    const err2 = await rejection(chain.put(new Account(99, undefined as never)))
    expect(err2.message).toMatch(/without key attribute `email`/)
  })

  it('every code has exactly one class, and every class its own code', () => {
    const codes = Object.keys(errors) as StockpyleErrorCode[]
    expect(new Set(codes.map((c) => errors[c])).size).toBe(codes.length)
    for (const code of codes) {
      const Class = errors[code] as unknown as new (m: string, ...rest: unknown[]) => Error
      const err = code === 'E_LAYER_SKIPPED' ? new Class('m', 'circuit-open') : new Class('m')
      expect(isStockpyleError(err, code)).toBe(true)
    }
    for (const Class of [
      KeyConflictError,
      SchemaError,
      ConstraintViolationError,
      CorruptEntryError,
      InvalidArgumentError,
      UnsupportedOperationError,
    ]) {
      expect(errors[Class.code]).toBe(Class)
    }
  })

  it('a lifetime callback result that is not a lifetime is refused at put, naming store, model and value, before anything is written', async () => {
    for (const [label, make] of [
      ['mem', (lifetime: Lifetime) => new ProcessMemoryStore({ name: 'mem', lifetime })],
      ['kv', (lifetime: Lifetime) => new KeyValueStore(new MapBackend(), { name: 'kv', lifetime })],
    ] as const) {
      for (const [result, shown] of [
        [Number.POSITIVE_INFINITY, '`Infinity`'],
        [1e300, '`1e+300`'],
        [new Date(Number.NaN), '`Invalid Date`'],
        ['soon', '`"soon"`'],
      ] as const) {
        const store = make((obj) => ((obj as Account).id === 2 ? (result as never) : 60))
        const err = await rejection(store.batchPut([new Account(1, 'a'), new Account(2, 'b')]))
        expect(err).toBeInstanceOf(InvalidOptionError)
        expect(err.message).toContain(`${label} store put of model \`MessagesAccount\`: the \`lifetime\` callback returned ${shown}`)
        expect(await store.get(Account, { id: 1 })).toBeUndefined()
      }
    }
  })

  it('a lifetime callback that throws reaches the caller as a StockpyleError keeping the cause', async () => {
    const cause = new Error('cb exploded')
    const store = new ProcessMemoryStore({
      name: 'mem',
      lifetime: () => {
        throw cause
      },
    })
    const err = await rejection(store.put(new Account(1, 'a')))
    expect(err).toBeInstanceOf(StockpyleError)
    expect((err as StockpyleError).code).toBe('E_STOCKPYLE')
    expect(err.message).toBe('mem store put of model `MessagesAccount`: the `lifetime` callback threw: cb exploded; nothing was written')
    expect(err.cause).toBe(cause)
  })

  it('calls after close() name the method called; clear() after close() rejects too; a non-array names batchGet', async () => {
    for (const store of [new ProcessMemoryStore({ name: 'mem' }), new KeyValueStore(new MapBackend(), { name: 'kv' })]) {
      await store.close()
      expect((await rejection(store.get(Account, { id: 1 }))).message).toMatch(/store is closed: get was called after close\(\)$/)
      expect((await rejection(store.batchGet(Account, [{ id: 1 }]))).message).toMatch(/: batchGet was called after close\(\)$/)
      const clear = await rejection(store.clear())
      expect(isStockpyleError(clear, 'E_STORE_CLOSED')).toBe(true)
      expect(clear.message).toMatch(/: clear was called after close\(\)$/)
    }
    const err = await rejection(new ProcessMemoryStore({ name: 'mem' }).batchGet(Account, { id: 1 } as never))
    expect(err).toBeInstanceOf(InvalidArgumentError)
    expect(err.message).toBe('mem store: batchGet takes an array of lookups, got `{id:1}`')
  })

  it('a non-array given to batchPut, batchDelete or batchPutEntries names the method called, on every store and a chain', async () => {
    const stores = [
      new ProcessMemoryStore({ name: 'mem' }),
      new KeyValueStore(new MapBackend(), { name: 'kv' }),
      new ChainedStore([new ProcessMemoryStore(), new ProcessMemoryStore()]),
    ]
    for (const store of stores) {
      const account = new Account(1, 'a@example.com')
      for (const method of ['batchPut', 'batchDelete'] as const) {
        const err = await rejection(store[method](account as never))
        expect(err).toBeInstanceOf(InvalidArgumentError)
        expect(err.message).toBe(`${store.name} store: ${method} takes an array of objects, got ${show(account)}`)
      }
      const err = await rejection(store.batchPutEntries({ value: account, expiresAt: undefined } as never))
      expect(err).toBeInstanceOf(InvalidArgumentError)
      expect(err.message).toMatch(new RegExp(`^${store.name} store: batchPutEntries takes an array of entries, got `))
      await store.close()
    }
  })

  it('a caller error of another copy of stockpyle is told by its code: a chain hands it to the caller, never counted against the layer', async () => {
    const brand = Symbol.for('stockpyle.error')
    const foreign = Object.assign(new Error('bad key (another copy)'), { code: 'E_INVALID_KEY', [brand]: true })
    expect(isCallerError(foreign)).toBe(true)
    expect(isCallerError(new InvalidKeyError('here'))).toBe(true)
    expect(isCallerError(Object.assign(new Error('down'), { code: 'E_STORE_UNAVAILABLE', [brand]: true }))).toBe(false)
    expect(isCallerError(Object.assign(new Error('not ours'), { code: 'E_INVALID_KEY' }))).toBe(false)
    class ForeignFailing extends MapBackend {
      override async getMany(): Promise<(Uint8Array | undefined)[]> {
        throw foreign
      }
    }
    const below = new KeyValueStore(new MapBackend(), { name: 'below' })
    await below.put(new Account(1, 'a@example.com'))
    const chain = new ChainedStore([new KeyValueStore(new ForeignFailing(), { name: 'cache' }), below])
    const err = await rejection(chain.get(Account, { id: 1 }))
    // a copy named after the chain (the layer's own error may be shared by other callers), told by its code
    expect(isCallerError(err)).toBe(true)
    expect((err as Error).message).toBe('chain store get: bad key (another copy) (raised by its layer `cache`)')
    expect(foreign.message).toBe('bad key (another copy)')
    expect(chain.stats()[0]?.errors).toBe(0)
  })

  it('two objects of a batch put claiming one alternate key: KeyConflictError naming the key and both objects, nothing written; backfills are not checked', async () => {
    class Animal {
      static readonly stockpyleName: string = 'MessagesAnimal'
      static readonly stockpyleKeys = keys('tag')
      constructor(public tag: string) {}
    }
    class Dog extends Animal {
      static override readonly stockpyleName: string = 'MessagesDog'
      static override readonly stockpyleKeys = keys('chip')
      constructor(
        tag: string,
        public chip: number,
      ) {
        super(tag)
      }
    }
    const stores = [
      new ProcessMemoryStore({ polymorphic: true }),
      new KeyValueStore(new MapBackend(), { name: 'kv', polymorphic: true }),
      new AsyncLocalStore({ polymorphic: true }),
    ]
    for (const store of stores) {
      const body = async () => {
        const where = `${store.name} store put`
        const email = await rejection(store.batchPut([new Account(1, 'a@x'), new Account(2, 'b@x'), new Account(3, 'a@x')]))
        expect(email).toBeInstanceOf(KeyConflictError)
        expect(email.message).toBe(
          `${where} of model \`MessagesAccount\`: two objects of the batch, \`MessagesAccount\` \`{id:1}\` and \`MessagesAccount\` \`{id:3}\`, claim the unique key \`{email:"a@x"}\`; nothing was written`,
        )
        // an ancestor's key, under which a polymorphic store indexes the object too
        const tag = await rejection(store.batchPut([new Dog('t', 1), new Dog('t', 2)]))
        expect(tag.message).toBe(
          `${where} of model \`MessagesDog\`: two objects of the batch, \`MessagesDog\` \`{chip:1}\` and \`MessagesDog\` \`{chip:2}\`, claim the unique key \`{tag:"t"}\` of model \`MessagesAnimal\`; nothing was written`,
        )
        expect(await store.batchGet(Account, [{ id: 1 }, { id: 2 }, { email: 'b@x' }])).toEqual([undefined, undefined, undefined])
        expect(await store.batchGet(Dog, [{ chip: 1 }])).toEqual([undefined])
        // copies of what a layer below holds are not checked (it is authoritative): the call resolves
        await store.batchPutEntries(
          [new Account(4, 'c@x'), new Account(5, 'c@x')].map((value) => ({ value, expiresAt: undefined })),
          { backfill: true },
        )
        // (where each lands is the store's: a key-value store keeps one of two copies claiming one alias)
        expect((await store.get(Account, { id: 4 }))?.id).toBe(4)
      }
      await (store instanceof AsyncLocalStore ? store.run(body) : body())
      await store.close()
    }
  })

  it('ProcessMemoryStore and AsyncLocalStore check their name like every store', () => {
    for (const name of ['', 5]) {
      expect(() => new ProcessMemoryStore({ name } as never)).toThrow(/^memory: option `name` must be a non-empty string/)
      expect(() => new AsyncLocalStore({ name } as never)).toThrow(/^async-local: option `name` must be a non-empty string/)
      // (an empty name was its own label: the message began with ": option")
      expect(() => new MemcacheStore({ servers: ['127.0.0.1:1'], name } as never)).toThrow(
        /^memcache: option `name` must be a non-empty string/,
      )
    }
  })
})

/** A layer that rejects every call but `close` with `raise()`'s error (one object for every call when it returns one). */
class Down extends StoreDecorator {
  constructor(readonly raise: () => Error) {
    super(new ProcessMemoryStore({ name: 'db' }), { name: 'db' })
  }
  protected override around<T>(operation: string, _args: readonly unknown[], call: () => Promise<T>): Promise<T> {
    return operation === 'close' ? call() : Promise.reject(this.raise())
  }
}

describe("a chain's copy of a layer's error", () => {
  it('is a native error: cloned (structuredClone, v8.serialize, a worker) it keeps its message and stack, not `{}`', async () => {
    const cause = new Error('ECONNREFUSED')
    const chain = new ChainedStore([new ProcessMemoryStore(), new Down(() => new StoreUnavailableError('db store is down', { cause }))], {
      name: 'app',
    })
    const err = await rejection(chain.get(Account, { id: 1 }))
    expect(err).toBeInstanceOf(StoreUnavailableError)
    expect(err.message).toBe('app store get: db store is down (raised by its layer `db`)')
    expect(types.isNativeError(err)).toBe(true)
    expect(Object.prototype.toString.call(err)).toBe('[object Error]')
    expect(err.cause).toBe(cause)
    for (const clone of [structuredClone(err), deserialize(serialize(err)) as Error]) {
      expect(clone).toBeInstanceOf(Error)
      expect(clone.message).toBe(err.message)
      expect(clone.stack).toBe(err.stack)
    }
    await chain.close()
  })

  it('keeps the fields of a PartialFailureError and the `errors` of an AggregateError (another copy of stockpyle may raise one)', async () => {
    const partial = new PartialFailureError('db store: node a:1 failed', { failed: [0], results: [undefined], nodes: ['a:1'] })
    const brand = Symbol.for('stockpyle.error')
    const inner = [new Error('a:1 down'), new Error('b:2 down')]
    const aggregate = Object.assign(new AggregateError(inner, 'db store: every node failed'), {
      code: 'E_STORE_UNAVAILABLE',
      [brand]: true,
    })
    for (const raised of [partial, aggregate]) {
      const chain = new ChainedStore([new ProcessMemoryStore(), new Down(() => raised)], { name: 'app' })
      const err = await rejection(chain.get(Account, { id: 1 }))
      expect(err).not.toBe(raised)
      expect(Object.getPrototypeOf(err)).toBe(Object.getPrototypeOf(raised))
      expect(err.message).toBe(`app store get: ${raised.message} (raised by its layer \`db\`)`)
      expect(types.isNativeError(err)).toBe(true)
      expect(structuredClone(err).message).toBe(err.message)
      if (raised === partial) {
        expect(err).toBeInstanceOf(PartialFailureError)
        expect(err).toMatchObject({ failed: [0], results: [undefined], nodes: ['a:1'], code: 'E_STORE_UNAVAILABLE' })
      } else {
        expect(err).toBeInstanceOf(AggregateError)
        expect((err as AggregateError).errors).toEqual(inner)
      }
      await chain.close()
    }
  })

  it('one error object a layer gives to calls of several operations (a connection that failed to open) names each call its own operation', async () => {
    const shared = new StoreUnavailableError('db store could not connect: ECONNREFUSED')
    const chain = new ChainedStore([new ProcessMemoryStore(), new Down(() => shared)], { name: 'app' })
    const get = await rejection(chain.get(Account, { id: 1 }))
    const put = await rejection(chain.put(new Account(2, 'b@x')))
    const del = await rejection(chain.delete(Account, { id: 3 }))
    expect(get.message).toBe('app store get: db store could not connect: ECONNREFUSED (raised by its layer `db`)')
    expect(put.message).toBe('app store put: db store could not connect: ECONNREFUSED (raised by its layer `db`)')
    expect(del.message).toBe('app store delete: db store could not connect: ECONNREFUSED (raised by its layer `db`)')
    // met again by the same operation, it is the same copy
    expect(await rejection(chain.get(Account, { id: 4 }))).toBe(get)
    expect(shared.message).toBe('db store could not connect: ECONNREFUSED')
    await chain.close()
  })

  it("a message with `$&`, `$'`, `` $` `` or `$$` (a lookup's value) is the stack's first line as it is", async () => {
    const message = 'db store get of `{email:"a$\'b$&c$`d$$e"}` failed'
    const raised = new StoreUnavailableError(message)
    const chain = new ChainedStore([new ProcessMemoryStore(), new Down(() => raised)], { name: 'app' })
    const err = await rejection(chain.get(Account, { id: 1 }))
    expect(err.message).toBe(`app store get: ${message} (raised by its layer \`db\`)`)
    const [first, ...rest] = (err.stack as string).split('\n')
    expect(first).toBe(`StoreUnavailableError: ${err.message}`)
    expect(rest).toEqual((raised.stack as string).split('\n').slice(1))
    await chain.close()
  })
})
