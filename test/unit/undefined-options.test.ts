/**
 * `undefined` for an option means the default, for every option every constructor knows (read from its
 * own "known options" message, so an option added later is covered too): `{ url: process.env.X }` is
 * the same as leaving `url` out. The types say so too (test/types/options.test-d.ts).
 */
import { Keyv } from 'keyv'
import { describe, expect, it } from 'vitest'
import {
  AsyncLocalStore,
  ChainedStore,
  InvalidOptionError,
  KeyValueStore,
  LoaderStore,
  ProcessMemoryStore,
  type Store,
  StoreDecorator,
} from '../../src/index.js'
import { installInvalidationTriggers, PostgresBus, RedisBus, watchDatabase } from '../../src/invalidation/index.js'
import { KeyvStore } from '../../src/stores/keyv/index.js'
import { MemcacheStore } from '../../src/stores/memcache/index.js'
import { RedisStore } from '../../src/stores/redis/index.js'
import { CacheSyncPlugin, createTable, SqlStore } from '../../src/stores/sql/index.js'
import { MapBackend, runBusConformance, runStoreConformance } from '../../src/testing/index.js'

class Thing {
  static readonly stockpyleName = 'UndefinedOptionsThing'
  static readonly stockpyleKeys = ['id', 'code'] as const
  constructor(
    public id: number,
    public code: string,
  ) {}
}

type Options = Record<string, unknown>

/** The option names in a constructor's unknown-option message (`… (known options: a, b, c)`). */
async function knownOptions(make: (options: Options) => unknown): Promise<string[]> {
  let error: unknown
  try {
    await make({ zzzzzz: 1 })
  } catch (err) {
    error = err
  }
  expect(error).toBeInstanceOf(InvalidOptionError)
  const list = /\(known options: ([^)]*)\)/.exec((error as Error).message)?.[1]
  expect(list, (error as Error).message).toBeDefined()
  return (list as string).split(', ')
}

/** Every option `make` knows, but `given` (and `except`), set to `undefined`. */
async function allUndefined(make: (options: Options) => unknown, given: Options, except: string[] = []): Promise<Options> {
  const names = (await knownOptions((o) => make({ ...given, ...o }))).filter((n) => !(n in given) && !except.includes(n))
  expect(names.length).toBeGreaterThan(0)
  return Object.fromEntries(names.map((n) => [n, undefined]))
}

/** What a store shows of its configuration. */
function shape(store: Store): unknown {
  return { name: store.name, capabilities: store.capabilities }
}

async function expectSameStore(make: (options: Options) => Store, given: Options = {}, except: string[] = []): Promise<void> {
  const undefinedOptions = await allUndefined(make, given, except)
  const plain = make(given)
  const withUndefined = make({ ...given, ...undefinedOptions })
  try {
    expect(shape(withUndefined)).toEqual(shape(plain))
  } finally {
    await plain.close()
    await withUndefined.close()
  }
}

describe('undefined options mean the default', () => {
  it('ProcessMemoryStore and AsyncLocalStore', async () => {
    await expectSameStore((o) => new ProcessMemoryStore(o))
    const memory = new ProcessMemoryStore(await allUndefined((o) => new ProcessMemoryStore(o), {}))
    await memory.put(new Thing(1, 'a'))
    expect(await memory.get(Thing, { code: 'a' })).toEqual(new Thing(1, 'a'))
    await memory.close()
    // AsyncLocalStore refuses a `bus`; `bus: undefined` is no bus
    await expectSameStore((o) => new AsyncLocalStore(o))
  })

  it('KeyValueStore: same name, capabilities, prefix and encoding (each reads what the other wrote)', async () => {
    const backend = new MapBackend()
    const make = (o: Options) => new KeyValueStore(backend, o)
    await expectSameStore(make)
    const plain = make({})
    const withUndefined = make(await allUndefined(make, {}))
    await plain.put(new Thing(1, 'a'))
    await withUndefined.put(new Thing(2, 'b'))
    expect(await withUndefined.get(Thing, { code: 'a' })).toEqual(new Thing(1, 'a'))
    expect(await plain.get(Thing, { code: 'b' })).toEqual(new Thing(2, 'b'))
  })

  it('RedisStore, MemcacheStore, KeyvStore (constructed without connecting)', async () => {
    await expectSameStore((o) => new RedisStore(o))
    expect(new RedisStore({ url: undefined, lifetime: 300 }).name).toBe('redis(127.0.0.1:6379)')
    await expectSameStore((o) => new RedisStore(o), { url: 'redis://127.0.0.1:1' })
    await expectSameStore((o) => new RedisStore(o), { cluster: [{ host: '127.0.0.1', port: 1 }] })
    // `repairKey` is the backend's, set by the store itself: refused as an option whatever its value
    await expectSameStore((o) => new MemcacheStore(o as never), { servers: ['127.0.0.1:1'] }, ['repairKey'])
    await expectSameStore((o) => new KeyvStore(o as never), { keyv: new Keyv() })
  })

  it('ChainedStore, its breaker and leases, and StoreDecorator', async () => {
    const make = (o: Options) => new ChainedStore([new ProcessMemoryStore(), new ProcessMemoryStore()], o)
    await expectSameStore(make)
    const chain = make({ breaker: { failures: undefined, halfOpenAfter: undefined } })
    expect(chain.stats()).toEqual(make({}).stats())
    const leases = new ChainedStore([new ProcessMemoryStore(), new KeyValueStore(new MapBackend()), new ProcessMemoryStore()], {
      leases: { wait: undefined, ttl: undefined },
    })
    await leases.put(new Thing(1, 'a'))
    expect(await leases.get(Thing, { id: 1 })).toEqual(new Thing(1, 'a'))
    class Logged extends StoreDecorator {}
    const inner = new ProcessMemoryStore()
    expect(shape(new Logged(inner, { name: undefined }))).toEqual(shape(new Logged(inner)))
    await inner.close()
  })

  it('LoaderStore', async () => {
    const load = (lookups: readonly unknown[]) => lookups.map(() => undefined)
    await expectSameStore((o) => new LoaderStore(o as never), { model: Thing, load })
  })

  it('SqlStore, createTable and CacheSyncPlugin', async () => {
    await expectSameStore((o) => new SqlStore({ url: 'sqlite::memory:' }, o))
    const sql = new SqlStore({ url: 'sqlite::memory:' }, await allUndefined((o) => new SqlStore({ url: 'sqlite::memory:' }, o), {}))
    const columns = { id: 'integer', code: 'text' } as const
    await createTable(sql, Thing, { columns, ...(await allUndefined((o) => createTable(sql, Thing, o as never), { columns })) })
    const chain = new ChainedStore([new ProcessMemoryStore(), sql])
    await chain.put(new Thing(1, 'a'))
    expect(await sql.get(Thing, { code: 'a' })).toEqual(new Thing(1, 'a'))
    const given = { chain, models: [Thing] }
    expect(() => new CacheSyncPlugin({ ...given, store: undefined, onError: undefined })).not.toThrow()
    expect(await knownOptions((o) => new CacheSyncPlugin({ ...given, ...o } as never))).toEqual(['chain', 'models', 'onError', 'store'])
    await chain.close()
  })

  it('RedisBus and PostgresBus (constructed without connecting)', async () => {
    const same = async (make: (o: Options) => { name: string; channel: string; close(): Promise<void> }, given: Options) => {
      const plain = make(given)
      const withUndefined = make({ ...given, ...(await allUndefined(make, given)) })
      expect([withUndefined.name, withUndefined.channel]).toEqual([plain.name, plain.channel])
      await plain.close()
      await withUndefined.close()
    }
    await same((o) => new RedisBus(o), {})
    await same((o) => new PostgresBus(o), { url: 'postgres://u@127.0.0.1:1/db' })
  })

  it('watchDatabase and installInvalidationTriggers', async () => {
    const url = 'postgres://u@127.0.0.1:1/db'
    const given = { url, models: [Thing] }
    const watcher = watchDatabase(new ProcessMemoryStore(), {
      ...given,
      ...(await allUndefined((o) => watchDatabase([], o as never), given)),
    })
    await watcher.close()
    // the options are checked before the database is asked: undefined ones get as far as `{}` does
    const sql = new SqlStore({ url })
    const outcome = (options: Options) =>
      installInvalidationTriggers(sql, [Thing], options).then(
        () => 'installed',
        (err: Error) => err.name,
      )
    const names = await allUndefined((o) => installInvalidationTriggers(sql, [Thing], o), {})
    expect(names).toEqual({ camelCase: undefined, channel: undefined, tables: undefined })
    expect(await outcome(names)).toBe(await outcome({}))
    expect(await outcome(names)).not.toBe('InvalidOptionError')
    await sql.close()
  })

  it('runStoreConformance refuses a skip entry that names no case (it skipped nothing, silently), naming the cases that contain it', () => {
    const none = () => {}
    const target = { name: 'memory', createStore: () => new ProcessMemoryStore(), describe: none, test: none }
    // the short names docs/writing-a-store.md once gave: each is the start of a case's name, not a name
    const short = 'leases: a lease whose ttl has passed can be taken again'
    expect(() => runStoreConformance({ ...target, skip: [{ test: short, reason: 'server clock' }] })).toThrow(
      new RangeError(
        `runStoreConformance: skip names no case: "${short}" (a case's whole name is needed); did you mean "${short} (an add over an expired lease lands)"?`,
      ),
    )
    expect(() => runStoreConformance({ ...target, skip: [{ test: 'no such case', reason: 'x' }] })).toThrow(RangeError)
    expect(() =>
      runStoreConformance({ ...target, skip: [{ test: `${short} (an add over an expired lease lands)`, reason: 'x' }] }),
    ).not.toThrow()
  })

  it('runStoreConformance and runBusConformance register the same tests', () => {
    const registered = (register: (describe: (n: string, b: () => void) => void, test: (n: string) => void) => void) => {
      const names: string[] = []
      register(
        (name, body) => {
          names.push(name)
          body()
        },
        (name) => names.push(name),
      )
      return names
    }
    const target = { name: 'memory', createStore: () => new ProcessMemoryStore() }
    expect(registered((describe, test) => runStoreConformance({ ...target, describe, test, scope: undefined, skip: undefined }))).toEqual(
      registered((describe, test) => runStoreConformance({ ...target, describe, test })),
    )
    const bus = { name: 'bus', createBus: () => new RedisBus() }
    const busUndefined = { publishRaw: undefined, outage: undefined, timeoutMs: undefined }
    expect(registered((describe, test) => runBusConformance({ ...bus, describe, test, ...busUndefined }))).toEqual(
      registered((describe, test) => runBusConformance({ ...bus, describe, test })),
    )
  })
})
