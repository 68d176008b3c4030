import KeyvPostgres from '@keyv/postgres'
import KeyvSqlite from '@keyv/sqlite'
import { Cluster, Redis } from 'ioredis'
import Keyv, { type KeyvStoreAdapter } from 'keyv'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { isStockpyleError } from '../../src/core/errors.js'
import { AsyncLocalStore, ChainedStore, KeyValueStore, ProcessMemoryStore } from '../../src/index.js'
import { KeyvStore } from '../../src/stores/keyv/index.js'
import { MemcacheStore } from '../../src/stores/memcache/index.js'
import { RedisStore } from '../../src/stores/redis/index.js'
import { prefixPattern } from '../../src/stores/redis/redis-clear.js'
import { ConformanceUser, MapBackend, makeUser } from '../../src/testing/index.js'
import { freePort, type MemcachedServers, selectedStores, startMemcached } from '../harness/servers.js'

const stores = selectedStores()
let prefixes = 0
const prefix = (): string => `clr${process.pid}x${++prefixes}`
const users = (from: number, count: number): ConformanceUser[] => Array.from({ length: count }, (_, i) => makeUser(from + i))
const unsupported = (err: unknown): boolean => isStockpyleError(err, 'E_UNSUPPORTED')

/** Every key matching `pattern` on a node, by cursor (the test's own check, independent of the code under test). */
async function scanAll(node: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, page] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = next
    keys.push(...page)
  } while (cursor !== '0')
  return keys
}

describe('clear() of in-process stores', () => {
  it('ProcessMemoryStore empties at once, including aliases; the store works afterwards', async () => {
    const store = new ProcessMemoryStore()
    const all = users(1, 50)
    await store.batchPut(all)
    const cleared = store.clear()
    expect(store.size).toBe(0)
    await cleared
    expect(await store.get(ConformanceUser, { email: (all[3] as ConformanceUser).email })).toBeUndefined()
    await store.put(all[0] as ConformanceUser)
    expect(await store.get(ConformanceUser, { id: 1 })).toEqual(all[0])
  })

  it('AsyncLocalStore clears every live scope: nested, enclosing, concurrent, and from outside any', async () => {
    const store = new AsyncLocalStore()
    await store.run(async () => {
      await store.put(makeUser(1))
      await store.run(async () => {
        await store.put(makeUser(2))
        await store.clear()
        expect(await store.get(ConformanceUser, { id: 2 })).toBeUndefined()
      })
      // the enclosing scope's copy went too: a chain's clearCaches() leaves no copy in any request
      expect(await store.get(ConformanceUser, { id: 1 })).toBeUndefined()
    })
    let cleared = () => {}
    const isCleared = new Promise<void>((resolve) => {
      cleared = resolve
    })
    let held = () => {}
    const isHeld = new Promise<void>((resolve) => {
      held = resolve
    })
    const request = store.run(async () => {
      await store.put(makeUser(3))
      held()
      await isCleared
      return store.get(ConformanceUser, { id: 3 })
    })
    await isHeld
    await store.clear() // outside a scope
    cleared()
    expect(await request).toBeUndefined()
  })

  it('KeyValueStore over a backend without clear(prefix) refuses with E_UNSUPPORTED and keeps its data', async () => {
    const backend = new MapBackend()
    const noClear = {
      getMany: backend.getMany.bind(backend),
      setMany: backend.setMany.bind(backend),
      deleteMany: backend.deleteMany.bind(backend),
      close: backend.close.bind(backend),
    }
    const store = new KeyValueStore(noClear)
    await store.put(makeUser(1))
    await expect(store.clear()).rejects.toSatisfy(unsupported)
    expect(await store.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1))
  })

  it('KeyValueStore over MapBackend removes its prefix and nothing else', async () => {
    const backend = new MapBackend()
    const a = new KeyValueStore(backend, { prefix: 'a' })
    const ab = new KeyValueStore(backend, { prefix: 'ab' })
    await a.batchPut(users(1, 10))
    await ab.batchPut(users(1, 10))
    const before = backend.size
    await a.clear()
    expect(backend.size).toBe(before / 2)
    expect(await a.get(ConformanceUser, { id: 1 })).toBeUndefined()
    expect(await ab.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1))
  })
})

describe('prefixPattern', () => {
  it('escapes glob characters so the pattern matches the literal prefix only', () => {
    expect(prefixPattern('app:')).toBe('app:*')
    expect(prefixPattern('a*b?[c]\\:')).toBe('a\\*b\\?\\[c\\]\\\\:*')
  })
})

describe.runIf(stores.has('redis'))('RedisStore.clear() on a Redis server', () => {
  let raw: Redis
  beforeAll(() => {
    raw = new Redis(inject('redis').url)
  })
  afterAll(async () => {
    await raw.quit()
  })

  it('removes every key of its prefix in bounded batches (1,200 objects) and leaves another prefix and foreign keys alone', async () => {
    const mine = prefix()
    const other = `${mine}x` // shares the first characters: must survive
    const store = new RedisStore({ url: inject('redis').url, prefix: mine, timeout: 10_000 })
    const neighbour = new RedisStore({ url: inject('redis').url, prefix: other, timeout: 10_000 })
    try {
      await store.batchPut(users(1, 1200))
      await store.acquireLeases(ConformanceUser, [{ id: 5000 }], 60_000)
      await neighbour.batchPut(users(1, 20))
      await raw.set(mine, 'no colon: not under the prefix')
      expect((await scanAll(raw, `${mine}:*`)).length).toBe(1200 * 3 + 1)
      const monitor = await raw.duplicate()
      // Other test files share the server: look at the commands that name this prefix, and at any flush.
      const commands: string[][] = []
      await monitor.monitor().then((m) => m.on('monitor', (_t: string, args: string[]) => commands.push(args.map(String))))
      await store.clear()
      await monitor.disconnect()
      expect(await scanAll(raw, `${mine}:*`)).toEqual([])
      expect(await raw.get(mine)).toBe('no colon: not under the prefix')
      expect((await scanAll(raw, `${other}:*`)).length).toBe(20 * 3)
      expect(await neighbour.get(ConformanceUser, { email: makeUser(7).email })).toEqual(makeUser(7))
      expect(await store.get(ConformanceUser, { id: 7 })).toBeUndefined()
      const named = (name: string) => commands.filter((c) => c[0]?.toLowerCase() === name)
      // (the test's own scanAll uses COUNT 1000 and may still be seen by the monitor)
      const scans = named('scan').filter((c) => c.includes(`${mine}:*`) && c.includes('500'))
      expect(scans.length).toBeGreaterThan(1) // a cursor walked in pages of COUNT 500, not one call
      expect(
        named('unlink')
          .filter((c) => c[1]?.startsWith(`${mine}:`))
          .every((c) => c.length - 1 <= 500),
      ).toBe(true)
      expect(named('unlink').some((c) => c.slice(1).every((k) => k.startsWith(`${mine}:`)))).toBe(true)
      expect(named('keys').filter((c) => c[1]?.startsWith(mine))).toEqual([])
      expect([...named('flushdb'), ...named('flushall')]).toEqual([])
      await store.put(makeUser(7))
      expect(await store.get(ConformanceUser, { email: makeUser(7).email })).toEqual(makeUser(7))
    } finally {
      await raw.del(mine)
      await neighbour.clear()
      await store.clear()
      await store.close()
      await neighbour.close()
    }
  })

  it('a command refused during the clear (here UNLINK, by an ACL) rejects with a stockpyle error naming the store, the reply as its cause', async () => {
    const user = `noclear${process.pid}`
    await raw.call('ACL', 'SETUSER', user, 'on', '>pw', '~*', '&*', '+@all', '-unlink')
    const store = new RedisStore({
      url: inject('redis').url,
      username: user,
      password: 'pw',
      prefix: `noclear-${process.pid}`,
      timeout: 10_000,
    })
    try {
      await store.batchPut([makeUser(1), makeUser(2)])
      const err = await store.clear().catch((e: unknown) => e)
      expect(isStockpyleError(err)).toBe(true)
      expect((err as Error).message).toMatch(/^redis\(127\.0\.0\.1:\d+\) store clear/)
      expect(String((err as Error).cause)).toMatch(/NOPERM/)
      expect(await store.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1))
    } finally {
      await store.close()
      await raw.call('ACL', 'DELUSER', user)
    }
  })

  it('refuses with E_UNSUPPORTED when the store has no prefix, and says so in capabilities: a chain refuses clearCaches() before clearing anything (review: it cleared the other layers first)', async () => {
    const store = new RedisStore({ url: inject('redis').url, prefix: '' })
    const memory = new ProcessMemoryStore()
    const chain = new ChainedStore([memory, store, new ProcessMemoryStore({ name: 'database' })])
    try {
      expect(store.capabilities.clearable).toBe(false)
      await expect(store.clear()).rejects.toSatisfy(unsupported)
      await expect(store.clear()).rejects.toThrow(/it has no prefix, and removing every key of its backend is refused/)
      await memory.put(makeUser(1))
      await expect(chain.clearCaches()).rejects.toThrow(/cache layer 1 .*capabilities\.clearable is false/)
      expect(await memory.get(ConformanceUser, { id: 1 })).toBeDefined()
    } finally {
      await chain.close()
    }
  })
})

describe.runIf(stores.has('redis-cluster'))('RedisStore.clear() on a Redis Cluster (every master)', () => {
  it('removes its prefix from every master and leaves another prefix alone', async () => {
    const nodes = inject('redisCluster')
    const mine = prefix()
    const other = `${mine}y`
    const store = new RedisStore({ cluster: nodes, prefix: mine, timeout: 10_000 })
    const neighbour = new RedisStore({ cluster: nodes, prefix: other, timeout: 10_000 })
    const cluster = new Cluster(nodes)
    try {
      await store.batchPut(users(1, 600))
      await neighbour.batchPut(users(1, 30))
      const masters = cluster.nodes('master')
      expect(masters.length).toBe(3)
      const before = await Promise.all(masters.map((m) => scanAll(m, `${mine}:*`)))
      expect(before.every((keys) => keys.length > 0)).toBe(true)
      expect(before.flat().length).toBe(600 * 3)
      await store.clear()
      const after = await Promise.all(masters.map((m) => scanAll(m, `${mine}:*`)))
      expect(after.flat()).toEqual([])
      const survived = await Promise.all(masters.map((m) => scanAll(m, `${other}:*`)))
      expect(survived.flat().length).toBe(30 * 3)
      expect(await neighbour.get(ConformanceUser, { id: 3 })).toEqual(makeUser(3))
      expect(await store.get(ConformanceUser, { id: 3 })).toBeUndefined()
    } finally {
      await neighbour.clear()
      await store.close()
      await neighbour.close()
      await cluster.quit()
    }
  })
})

describe('KeyvStore.clear()', () => {
  it('an iterable adapter (Map): removes its prefix in the namespace, keeps another prefix and keys outside the namespace', async () => {
    const map = new Map<string, unknown>()
    const keyv = new Keyv({ store: map, namespace: 'app' })
    const store = new KeyvStore({ keyv, prefix: 'p1' })
    const neighbour = new KeyvStore({ keyv, prefix: 'p1x' })
    await store.batchPut(users(1, 700))
    await neighbour.batchPut(users(1, 5))
    // (Keyv's iterator deserializes every value of the Map, so these are Keyv-serialized too)
    const foreign = JSON.stringify({ value: 'foreign' })
    map.set('other:p1:ConformanceUser|id=n1', foreign)
    map.set('p1:ConformanceUser|id=n1', foreign)
    expect(map.size).toBe(700 * 3 + 5 * 3 + 2)
    await store.clear()
    expect(map.size).toBe(5 * 3 + 2)
    expect(map.get('other:p1:ConformanceUser|id=n1')).toBe(foreign)
    expect(map.get('p1:ConformanceUser|id=n1')).toBe(foreign)
    expect(await store.get(ConformanceUser, { id: 1 })).toBeUndefined()
    expect(await neighbour.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1))
  })

  /** A Keyv adapter over a Map that cannot list its keys. */
  function opaqueAdapter(): KeyvStoreAdapter & { data: Map<string, unknown>; cleared: number } {
    const data = new Map<string, unknown>()
    const adapter = {
      opts: {},
      namespace: undefined as string | undefined,
      data,
      cleared: 0,
      get: async (key: string) => data.get(key),
      set: async (key: string, value: unknown) => {
        data.set(key, value)
        return true
      },
      delete: async (key: string) => data.delete(key),
      clear: async () => {
        adapter.cleared++
        data.clear()
      },
      on: () => adapter,
    }
    return adapter as unknown as KeyvStoreAdapter & { data: Map<string, unknown>; cleared: number }
  }

  it('an adapter that cannot list keys: refused with E_UNSUPPORTED unless ownsNamespace, then keyv.clear()', async () => {
    const adapter = opaqueAdapter()
    const keyv = new Keyv({ store: adapter, namespace: 'app' })
    expect(keyv.iterator).toBeUndefined()
    const store = new KeyvStore({ keyv, prefix: 'q' })
    await store.put(makeUser(1))
    await expect(store.clear()).rejects.toSatisfy(unsupported)
    expect(await store.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1))
    const owner = new KeyvStore({ keyv, prefix: 'q', ownsNamespace: true })
    await owner.clear()
    expect(adapter.cleared).toBe(1)
    expect(await store.get(ConformanceUser, { id: 1 })).toBeUndefined()
  })

  it('declares capabilities.clearable only when clear() can work: a chain refuses clearCaches() before clearing any layer', async () => {
    const adapter = opaqueAdapter()
    const keyv = new Keyv({ store: adapter, namespace: 'app' })
    const opaque = new KeyvStore({ keyv, prefix: 'c' })
    expect(opaque.capabilities.clearable).toBe(false)
    expect(new KeyvStore({ keyv, prefix: 'c', ownsNamespace: true }).capabilities.clearable).toBe(true)
    expect(new KeyvStore({ keyv: new Keyv() }).capabilities.clearable).toBe(true)
    const memory = new ProcessMemoryStore()
    const chain = new ChainedStore([memory, opaque, new ProcessMemoryStore({ name: 'db' })])
    await chain.put(makeUser(1))
    await expect(chain.clearCaches()).rejects.toSatisfy(unsupported)
    expect(await memory.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1)) // nothing was cleared
    expect(await opaque.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1))
    await chain.close()
  })

  it('concurrent clears share one error listener per emitter (no MaxListenersExceededWarning), removed when the last ends', async () => {
    const adapter = new KeyvSqlite('sqlite://:memory:')
    const keyv = new Keyv(adapter, { namespace: 'app' })
    const store = new KeyvStore({ keyv, prefix: 'p', timeout: 10_000 })
    await store.batchPut(users(1, 50))
    const emitter = adapter as unknown as { listenerCount(event: string): number }
    const before = emitter.listenerCount('error')
    const warnings: string[] = []
    const onWarning = (w: Error) => warnings.push(w.name)
    process.on('warning', onWarning)
    try {
      const clears = Array.from({ length: 20 }, () => store.clear())
      expect(emitter.listenerCount('error')).toBeLessThanOrEqual(before + 1)
      await Promise.all(clears)
      await new Promise((r) => setImmediate(r))
      expect(warnings).not.toContain('MaxListenersExceededWarning')
      expect(emitter.listenerCount('error')).toBe(before)
    } finally {
      process.off('warning', onWarning)
      await store.close()
      await keyv.disconnect()
    }
  })
  it.runIf(stores.has('sqlite'))(
    '@keyv/sqlite (pages by LIMIT/OFFSET): every key of the prefix goes, however many, and nothing else',
    async () => {
      const keyv = new Keyv(new KeyvSqlite('sqlite://:memory:'), { namespace: 'app' })
      const store = new KeyvStore({ keyv, prefix: 'p', timeout: 10_000 })
      const neighbour = new KeyvStore({ keyv, prefix: 'q', timeout: 10_000 })
      const all = users(1, 1200)
      for (let i = 0; i < all.length; i += 200) await store.batchPut(all.slice(i, i + 200))
      await neighbour.batchPut(users(1, 5))
      await store.clear()
      const byId = await store.batchGet(
        ConformanceUser,
        all.map((u) => ({ id: u.id })),
      )
      const byEmail = await store.batchGet(
        ConformanceUser,
        all.map((u) => ({ email: u.email })),
      )
      expect(byId.filter(Boolean).length + byEmail.filter(Boolean).length).toBe(0)
      let left = 0
      for await (const [key] of (keyv.iterator as unknown as () => AsyncGenerator<[string, unknown]>)()) if (key.startsWith('p:')) left++
      expect(left).toBe(0)
      expect((await neighbour.batchGet(ConformanceUser, [{ id: 1 }, { id: 5 }])).map((u) => u?.id)).toEqual([1, 5])
      await store.close()
      await keyv.disconnect()
    },
  )

  it.runIf(stores.has('postgres'))(
    '@keyv/postgres with its server unreachable: clear() rejects with StoreUnavailableError (its iterator only emits the error)',
    async () => {
      const keyv = new Keyv(new KeyvPostgres({ uri: `postgresql://postgres@127.0.0.1:${await freePort()}/postgres`, table: 'keyv_gone' }))
      const store = new KeyvStore({ keyv, timeout: 5000 })
      const failure = await store.clear().then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(isStockpyleError(failure, 'E_STORE_UNAVAILABLE')).toBe(true)
      expect((failure as Error).message).toMatch(/^keyv\(keyv\) store clear failed: .*ECONNREFUSED/)
      const chain = new ChainedStore([new ProcessMemoryStore(), store, new ProcessMemoryStore({ name: 'db' })])
      await expect(chain.clearCaches()).rejects.toSatisfy((e: unknown) => isStockpyleError(e, 'E_STORE_UNAVAILABLE'))
      await chain.close()
      await keyv.disconnect()
    },
  )

  it('without a prefix: refused with E_UNSUPPORTED and clearable false (every key of the namespace would go), unless ownsNamespace: then keyv.clear() (review: the app’s own keys and other stores’ went)', async () => {
    const keyv = new Keyv({ store: new Map(), namespace: 'app' })
    await keyv.set('session:1', 'the app’s own')
    const neighbour = new KeyvStore({ keyv, prefix: 'other' })
    await neighbour.put(makeUser(2))
    const store = new KeyvStore({ keyv, prefix: '' })
    await store.put(makeUser(1))
    expect(store.capabilities.clearable).toBe(false)
    await expect(store.clear()).rejects.toSatisfy(unsupported)
    await expect(store.clear()).rejects.toThrow(/without a prefix: that would remove every key of the Keyv namespace.*ownsNamespace: true/)
    expect(await keyv.get('session:1')).toBe('the app’s own')
    expect(await neighbour.get(ConformanceUser, { id: 2 })).toEqual(makeUser(2))
    expect(await store.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1))
    const owner = new KeyvStore({ keyv, prefix: '', ownsNamespace: true })
    expect(owner.capabilities.clearable).toBe(true)
    await owner.clear()
    expect(await owner.get(ConformanceUser, { id: 1 })).toBeUndefined()
  })

  it.runIf(stores.has('redis'))(
    '@keyv/redis without a prefix: refused, nothing removed; with ownsNamespace, keyv.clear() empties the namespace and nothing outside it',
    async () => {
      const { default: KeyvRedis } = await import('@keyv/redis')
      const namespace = prefix()
      const keyv = new Keyv(new KeyvRedis(inject('redis').url), { namespace })
      const outside = new Keyv(new KeyvRedis(inject('redis').url), { namespace: `${namespace}y` })
      const store = new KeyvStore({ keyv, prefix: '' })
      const neighbour = new KeyvStore({ keyv, prefix: 'other' })
      try {
        await keyv.set('session:1', 'the app’s own')
        await outside.set('k', 'outside the namespace')
        await store.batchPut(users(1, 20))
        await neighbour.put(makeUser(1))
        expect(store.capabilities.clearable).toBe(false)
        await expect(store.clear()).rejects.toSatisfy(unsupported)
        expect(await keyv.get('session:1')).toBe('the app’s own')
        expect(await neighbour.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1))
        expect(await store.get(ConformanceUser, { id: 20 })).toEqual(makeUser(20))
        const owner = new KeyvStore({ keyv, prefix: '', ownsNamespace: true })
        expect(owner.capabilities.clearable).toBe(true)
        await owner.clear()
        expect(await store.get(ConformanceUser, { id: 20 })).toBeUndefined()
        expect(await keyv.get('session:1')).toBeUndefined()
        expect(await outside.get('k')).toBe('outside the namespace')
      } finally {
        await outside.clear()
        await keyv.disconnect()
        await outside.disconnect()
      }
    },
  )

  it('rejects a non-boolean ownsNamespace synchronously', () => {
    expect(() => new KeyvStore({ keyv: new Keyv(), ownsNamespace: 'yes' as never })).toThrow(/`ownsNamespace`/)
  })
})

describe.runIf(stores.has('memcached'))('MemcacheStore.clear()', () => {
  let own: MemcachedServers
  beforeAll(async () => {
    own = await startMemcached(2)
  })
  afterAll(async () => {
    await own?.stop()
  })

  it('without ownsServers: refused with E_UNSUPPORTED, nothing removed (shared harness servers, two prefixes)', async () => {
    const servers = inject('memcachedServers')
    const store = new MemcacheStore({ servers, prefix: prefix() })
    const neighbour = new MemcacheStore({ servers, prefix: prefix() })
    try {
      await store.batchPut(users(1, 30))
      await neighbour.batchPut(users(1, 30))
      await expect(store.clear()).rejects.toSatisfy(unsupported)
      await expect(store.clear()).rejects.toThrow(/ownsServers/)
      expect(await store.batchGet(ConformanceUser, [{ id: 1 }, { id: 30 }])).toEqual([makeUser(1), makeUser(30)])
      expect(await neighbour.get(ConformanceUser, { id: 2 })).toEqual(makeUser(2))
    } finally {
      await store.batchDelete(users(1, 30))
      await neighbour.batchDelete(users(1, 30))
      await store.close()
      await neighbour.close()
    }
  })

  it('with ownsServers: flush_all on every server of the pool (servers started for this test)', async () => {
    const store = new MemcacheStore({ servers: own.servers, prefix: prefix(), ownsServers: true })
    const other = new MemcacheStore({ servers: own.servers, prefix: prefix() })
    try {
      const all = users(1, 200)
      await store.batchPut(all)
      await other.batchPut(all)
      const owners = new Set(all.map((u) => store.backend.serverFor(`${u.id}`)))
      expect(owners.size).toBe(2)
      await store.clear()
      expect(
        (
          await store.batchGet(
            ConformanceUser,
            all.map((u) => ({ id: u.id })),
          )
        ).every((u) => u === undefined),
      ).toBe(true)
      // flush_all empties the servers: what another store kept there goes too (that is what ownsServers says).
      expect(await other.get(ConformanceUser, { id: 1 })).toBeUndefined()
    } finally {
      await store.close()
      await other.close()
    }
  })

  it('rejects a non-boolean ownsServers synchronously', () => {
    expect(() => new MemcacheStore({ servers: ['127.0.0.1:1'], ownsServers: 1 as never })).toThrow(/`ownsServers`/)
  })
})
