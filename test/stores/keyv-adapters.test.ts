/**
 * KeyvStore over the real Keyv adapters, beyond the conformance suite: what the backend detects in
 * each adapter, and the two ways @keyv/memcache would break stockpyle's promises without it — ttls
 * truncated to whole seconds (see real-time-lifetime.test.ts and the 30-day case here) and failed
 * reads settled as misses — against real servers (a memcached this file starts and SIGKILLs by PID).
 */
import KeyvMemcache from '@keyv/memcache'
import KeyvPostgres from '@keyv/postgres'
import KeyvRedis, { createKeyv } from '@keyv/redis'
import KeyvSqlite from '@keyv/sqlite'
import Keyv from 'keyv'
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest'
import { InvalidOptionError, StoreUnavailableError } from '../../src/core/errors.js'
import { ChainedStore, ProcessMemoryStore } from '../../src/index.js'
import { type KeyvBackend, KeyvStore } from '../../src/stores/keyv/index.js'
import { ConformanceUser, makeUser } from '../../src/testing/index.js'
import { type MemcachedServers, selectedStores, startMemcached, startRedis } from '../harness/servers.js'

const stores = selectedStores()
/** memjs options: no retries, and no console line per failure (the test asserts the failures). */
const quiet = { retries: 0, logger: { log: () => {} } }
let prefixes = 0
const prefix = (): string => `ka${process.pid}x${++prefixes}`

describe('adapter traits', () => {
  it.runIf(stores.has('redis') && stores.has('sqlite'))(
    'a storage adapter passed as `keyv` is refused: wrap it in a Keyv (review: @keyv/redis was accepted, and every get failed with a SerializationError)',
    async () => {
      const redis = new KeyvRedis(inject('redis').url)
      const sqlite = new KeyvSqlite('sqlite://:memory:')
      for (const [adapter, name] of [
        [redis, 'KeyvRedis'],
        [sqlite, 'KeyvSqlite'],
      ] as const) {
        expect(() => new KeyvStore({ keyv: adapter as never })).toThrow(InvalidOptionError)
        expect(() => new KeyvStore({ keyv: adapter as never })).toThrow(`got a storage adapter (${name}); wrap it: new Keyv(adapter)`)
      }
      await redis.disconnect()
      await sqlite.disconnect()
    },
  )

  it('the default Map needs no workaround', () => {
    const store = new KeyvStore({ keyv: new Keyv() })
    expect((store.backend as KeyvBackend).traits).toEqual({
      adapter: 'Map',
      secondResolution: false,
      batchHidesFailures: false,
      ownThrowOnErrors: false,
      maxKeyBytes: undefined,
      namespaceCopies: 1,
    })
    expect(store.capabilities.secondResolution).toBe(false)
  })

  it.runIf(stores.has('sqlite'))('@keyv/sqlite: none either', async () => {
    const keyv = new Keyv(new KeyvSqlite('sqlite://:memory:'))
    const store = new KeyvStore({ keyv, disconnect: true })
    expect((store.backend as KeyvBackend).traits).toMatchObject({
      adapter: 'KeyvSqlite',
      secondResolution: false,
      batchHidesFailures: false,
    })
    await store.close()
  })

  it.runIf(stores.has('postgres'))('@keyv/postgres: none either', async () => {
    const keyv = new Keyv(new KeyvPostgres({ uri: inject('postgresUrl'), table: 'keyv_traits' }))
    const store = new KeyvStore({ keyv, disconnect: true })
    expect((store.backend as KeyvBackend).traits).toMatchObject({
      adapter: 'KeyvPostgres',
      secondResolution: false,
      batchHidesFailures: false,
    })
    await store.close()
  })

  it.runIf(stores.has('redis'))(
    '@keyv/redis: its own throwOnErrors (off by default: failed gets read as misses) is switched on',
    async () => {
      const adapter = new KeyvRedis(inject('redis').url)
      expect(adapter.throwOnErrors).toBe(false)
      const store = new KeyvStore({ keyv: new Keyv(adapter), disconnect: true })
      expect(adapter.throwOnErrors).toBe(true)
      expect((store.backend as KeyvBackend).traits).toMatchObject({ adapter: 'KeyvRedis', ownThrowOnErrors: true, secondResolution: false })
      await store.close()
    },
  )

  it.runIf(stores.has('memcached'))('@keyv/memcache: whole-second ttls and batch methods that hide failures', async () => {
    const store = new KeyvStore({ keyv: new Keyv(new KeyvMemcache(inject('memcachedServers')[0])), disconnect: true })
    expect((store.backend as KeyvBackend).traits).toEqual({
      adapter: 'KeyvMemcache',
      secondResolution: true,
      batchHidesFailures: true,
      ownThrowOnErrors: false,
      maxKeyBytes: 250,
      namespaceCopies: 2,
    })
    expect(store.capabilities.secondResolution).toBe(true)
    await store.close()
  })
})

describe('Keyv namespace configurations over real adapters (review: Keyv 5.6 prefixes get/set, getMany/deleteMany and listed keys differently)', () => {
  const isUnsupported = (err: unknown): boolean => (err as { code?: string })?.code === 'E_UNSUPPORTED'
  const adapters: { name: string; store: string; connect: (namespace: string) => Keyv }[] = [
    { name: '@keyv/redis', store: 'redis', connect: (namespace) => new Keyv(new KeyvRedis(inject('redis').url), { namespace }) },
    { name: '@keyv/sqlite', store: 'sqlite', connect: (namespace) => new Keyv(new KeyvSqlite('sqlite://:memory:'), { namespace }) },
    {
      name: '@keyv/postgres',
      store: 'postgres',
      connect: (namespace) => new Keyv(new KeyvPostgres({ uri: inject('postgresUrl'), table: 'keyv_namespaces' }), { namespace }),
    },
    {
      name: '@keyv/memcache',
      store: 'memcached',
      connect: (namespace) => new Keyv(new KeyvMemcache(inject('memcachedServers')[0], quiet), { namespace }),
    },
  ]
  for (const adapter of adapters) {
    it.runIf(stores.has(adapter.store))(
      `${adapter.name}, a namespace equal to the prefix: reads find what puts wrote, deletes remove it, clear() removes it (every read missed)`,
      async () => {
        const namespace = prefix()
        const keyv = adapter.connect(namespace)
        const store = new KeyvStore({ keyv, prefix: namespace, tombstoneLifetime: 0, timeout: 5000, disconnect: true })
        const other = new KeyvStore({ keyv, prefix: `${namespace}y`, timeout: 5000 })
        try {
          await store.batchPut([makeUser(1), makeUser(2)])
          await other.put(makeUser(1))
          expect(await store.batchGet(ConformanceUser, [{ id: 1 }, { email: makeUser(2).email }])).toEqual([makeUser(1), makeUser(2)])
          await store.delete(makeUser(1))
          expect(await store.batchGet(ConformanceUser, [{ id: 1 }, { email: makeUser(1).email }])).toEqual([undefined, undefined])
          if (store.capabilities.clearable) {
            await store.clear()
            expect(await store.batchGet(ConformanceUser, [{ id: 2 }, { email: makeUser(2).email }])).toEqual([undefined, undefined])
          }
          expect(await other.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1))
        } finally {
          await store.delete(makeUser(2))
          await other.delete(makeUser(1))
          await other.close()
          await store.close()
        }
      },
    )
  }

  for (const adapter of adapters.slice(0, 2)) {
    it.runIf(stores.has(adapter.store))(
      `${adapter.name} without a namespace: clear() is refused and clearable false (it resolved and removed nothing)`,
      async () => {
        const keyv = adapter.connect('')
        expect(keyv.namespace).toBeUndefined()
        const store = new KeyvStore({ keyv, prefix: prefix(), tombstoneLifetime: 0, timeout: 5000 })
        try {
          await store.put(makeUser(1))
          expect(store.capabilities.clearable).toBe(false)
          await expect(store.clear()).rejects.toSatisfy(isUnsupported)
          expect(await store.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1))
        } finally {
          await store.delete(makeUser(1))
          await keyv.disconnect()
        }
      },
    )
  }

  it.runIf(stores.has('redis'))(
    '@keyv/redis with useKeyPrefix: false (its createKeyv): clear() removes the prefix’s keys, with a namespace or without one (a server of its own: it lists every key)',
    async () => {
      const own = await startRedis()
      try {
        for (const namespace of [prefix(), undefined]) {
          const keyv = createKeyv(own.url, namespace === undefined ? {} : { namespace })
          expect(keyv.useKeyPrefix).toBe(false)
          const store = new KeyvStore({ keyv, prefix: 'p', timeout: 5000 })
          const other = new KeyvStore({ keyv, prefix: 'q', timeout: 5000 })
          await store.batchPut([makeUser(1), makeUser(2)])
          await other.put(makeUser(1))
          expect(store.capabilities.clearable).toBe(true)
          await store.clear()
          expect(await store.batchGet(ConformanceUser, [{ id: 1 }, { email: makeUser(2).email }])).toEqual([undefined, undefined])
          expect(await other.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1))
          // without a namespace it lists only keys without its separator `::`: a prefix ending in `:` makes them
          if (namespace === undefined) expect(new KeyvStore({ keyv, prefix: 'p:' }).capabilities.clearable).toBe(false)
          await keyv.disconnect()
        }
      } finally {
        await own.stop()
      }
    },
  )

  it.runIf(stores.has('sqlite'))(
    '@keyv/sqlite with useKeyPrefix: false: clear() works without a namespace, and is refused with one (it lists only `<namespace>:` keys, which Keyv then does not write)',
    async () => {
      const plain = new Keyv(new KeyvSqlite('sqlite://:memory:'), { useKeyPrefix: false })
      plain.namespace = undefined
      const store = new KeyvStore({ keyv: plain, prefix: 'p', timeout: 5000 })
      await store.put(makeUser(1))
      expect(store.capabilities.clearable).toBe(true)
      await store.clear()
      expect(await store.get(ConformanceUser, { id: 1 })).toBeUndefined()
      await plain.disconnect()
      const named = new Keyv(new KeyvSqlite('sqlite://:memory:'), { namespace: 'app', useKeyPrefix: false })
      const refused = new KeyvStore({ keyv: named, prefix: 'p', timeout: 5000 })
      await refused.put(makeUser(1))
      expect(refused.capabilities.clearable).toBe(false)
      await expect(refused.clear()).rejects.toThrow(/useKeyPrefix: false/)
      expect(await refused.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1))
      await named.disconnect()
    },
  )
})

describe.runIf(stores.has('postgres'))('KeyvStore over @keyv/postgres', () => {
  it('two stores with `disconnect: true` on one URL: both close() resolve (the pool is shared: the second rejected "Called end on pool more than once")', async () => {
    const uri = inject('postgresUrl')
    const first = new KeyvStore({ keyv: new Keyv(new KeyvPostgres({ uri, table: 'keyv_close' })), disconnect: true, prefix: prefix() })
    const second = new KeyvStore({ keyv: new Keyv(new KeyvPostgres({ uri, table: 'keyv_close' })), disconnect: true, prefix: prefix() })
    await first.put(makeUser(1))
    await second.put(makeUser(2))
    await first.close()
    await expect(second.close()).resolves.toBeUndefined()
  })
})

describe.runIf(stores.has('memcached'))('KeyvStore over @keyv/memcache', () => {
  let own: MemcachedServers
  beforeAll(async () => {
    own = await startMemcached(1)
  })
  afterAll(async () => {
    await own?.stop()
  })

  it('a lifetime over 30 days is kept (memcached would read the seconds as a date in 1970)', async () => {
    const store = new KeyvStore({
      keyv: new Keyv(new KeyvMemcache(inject('memcachedServers')[0])),
      disconnect: true,
      prefix: prefix(),
      lifetime: 31 * 24 * 3600,
    })
    await store.put(makeUser(1))
    expect((await store.get(ConformanceUser, { email: 'user1@example.com' }))?.id).toBe(1)
    await store.close()
  })

  it('keys at the longest stockpyle makes fit under memcached’s 250 bytes with the namespaces Keyv and the adapter add', async () => {
    const keyv = new Keyv(new KeyvMemcache(inject('memcachedServers')[0]), { namespace: 'n'.repeat(20) })
    const store = new KeyvStore({ keyv, disconnect: true, prefix: 'p'.repeat(40) })
    const users = [makeUser(2), makeUser(3)]
    for (const [i, user] of users.entries()) user.email = `${'e'.repeat(400 + i)}@example.com`
    await store.batchPut(users)
    expect(
      (
        await store.batchGet(
          ConformanceUser,
          users.map((u) => ({ email: u.email })),
        )
      ).map((u) => u?.id),
    ).toEqual([2, 3])
    await store.delete(users[0] as ConformanceUser)
    expect(await store.get(ConformanceUser, { email: users[0]?.email as string })).toBeUndefined()
    await store.close()
  })

  it('a namespace too long to leave room for a key is refused at construction (every put failed, and broke the connection)', async () => {
    const adapter = new KeyvMemcache(inject('memcachedServers')[0])
    const make = (namespace: string) => new KeyvStore({ keyv: new Keyv(adapter, { namespace }), prefix: 'p' })
    expect(() => make('n'.repeat(110))).toThrow(InvalidOptionError)
    expect(() => make('n'.repeat(103))).toThrow(
      /Keyv namespace .* \(103 bytes\) leaves 42 of the 250 bytes .* use a namespace of at most 102 bytes/,
    )
    const store = make('n'.repeat(102)) // the longest that fits: every key shortened to `#` and its digest
    const user = makeUser(4)
    user.email = `${'e'.repeat(200)}@example.com`
    await store.put(user)
    expect((await store.get(ConformanceUser, { email: user.email }))?.id).toBe(4)
    await store.delete(user)
    adapter.client.close()
  })

  it('close() with `disconnect: true` closes the memjs sockets (the adapter has no disconnect(): they kept the process alive)', async () => {
    const adapter = new KeyvMemcache(inject('memcachedServers')[0])
    const store = new KeyvStore({ keyv: new Keyv(adapter), disconnect: true, prefix: prefix() })
    await store.put(makeUser(1))
    const servers = (adapter.client as unknown as { servers: { _socket?: unknown }[] }).servers
    expect(servers.some((s) => s._socket !== undefined)).toBe(true)
    await store.close()
    await vi.waitFor(() => expect(servers.every((s) => s._socket === undefined)).toBe(true), { timeout: 3000 })
  })

  it('a dead server: reads, writes and deletes reject with StoreUnavailableError, never a silent miss', async () => {
    const server = own.servers[0] as string
    const node = own.nodes[0] as MemcachedServers['nodes'][number]
    const keyv = new Keyv(new KeyvMemcache(server, quiet))
    const store = new KeyvStore({ keyv, disconnect: true, prefix: prefix(), timeout: 2000 })
    await store.batchPut([makeUser(1), makeUser(2)])
    expect((await store.batchGet(ConformanceUser, [{ id: 1 }, { email: 'user2@example.com' }])).map((u) => u?.id)).toEqual([1, 2])

    node.kill('SIGKILL')
    try {
      // what the adapter itself does: its getMany settles every get, so the failure reads as a miss
      const raw = new Keyv(new KeyvMemcache(server, quiet))
      raw.throwOnErrors = true
      raw.on('error', () => {})
      expect(await raw.getMany(['anything'])).toEqual([undefined])
      await raw.disconnect()

      for (const [what, call] of [
        ['get', () => store.get(ConformanceUser, { id: 1 })],
        ['batchGet', () => store.batchGet(ConformanceUser, [{ id: 1 }, { id: 2 }])],
        ['put', () => store.put(makeUser(3))],
        ['delete', () => store.delete(makeUser(1))],
      ] as const) {
        const error = await (call as () => Promise<unknown>)().then(
          () => undefined,
          (e: unknown) => e,
        )
        expect(error, what).toBeInstanceOf(StoreUnavailableError)
        // memjs either fails at once (connection refused) or leaves the call unanswered until `timeout`
        // (named after the store's call, its model and first key: the adapter knows neither)
        expect((error as Error).message, what).toMatch(
          /^keyv\(keyv\) store (get|put|delete) of model `ConformanceUser` (by )?`\{id:\d\}`( \(and 1 more\))?( failed: |: no answer within 2000 ms)/,
        )
      }
    } finally {
      await node.restart()
    }
    await store.close()
  })

  it('as a chain layer, a dead server is reported and skipped; the layer below answers', async () => {
    const node = own.nodes[0] as MemcachedServers['nodes'][number]
    const keyv = new Keyv(new KeyvMemcache(own.servers[0] as string, quiet))
    const chain = new ChainedStore([new KeyvStore({ keyv, disconnect: true, prefix: prefix(), timeout: 2000 }), new ProcessMemoryStore()])
    const errors: unknown[] = []
    chain.events.on('cacheError', (event: { error: unknown }) => errors.push(event.error))
    await chain.put(makeUser(5))
    node.kill('SIGKILL')
    try {
      expect((await chain.get(ConformanceUser, { id: 5 }))?.id).toBe(5)
      expect(chain.stats()[0]).toMatchObject({ hits: 0 })
      expect(chain.stats()[0]?.errors).toBeGreaterThanOrEqual(1)
      expect(errors[0]).toBeInstanceOf(StoreUnavailableError)
    } finally {
      await node.restart()
    }
    await chain.close()
  })
})
