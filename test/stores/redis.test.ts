import { inspect } from 'node:util'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest'
import { InvalidOptionError, StoreClosedError } from '../../src/core/errors.js'
import { KeyValueStore } from '../../src/index.js'
import { RedisBackend, RedisStore, redisSlot } from '../../src/stores/redis/index.js'
import { ConformanceUser, ManualClock, makeUser } from '../../src/testing/index.js'
import { selectedStores } from '../harness/servers.js'

const stores = selectedStores()
let prefixes = 0
const uniquePrefix = (): string => `rt${process.pid}x${++prefixes}`

describe('RedisStore options', () => {
  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['url', { url: 'http://x' }, /`url`/],
    ['url', { url: 42 }, /`url`/],
    ['port', { port: 0 }, /`port`/],
    ['port', { port: 1.5 }, /`port`/],
    ['host', { host: '' }, /`host`/],
    ['timeout', { timeout: 0 }, /`timeout`/],
    ['timeout', { timeout: Number.POSITIVE_INFINITY }, /`timeout`/],
    ['cluster', { cluster: [] }, /`cluster`/],
    ['cluster[1].port', { cluster: [{ host: 'a', port: 1 }, { host: 'b' }] }, /`cluster\[1\]\.port`/],
    ['client', { client: {} }, /`client`/],
    ['exclusive', { url: 'redis://a', cluster: [{ host: 'a', port: 1 }] }, /`cluster` and `url` are exclusive/],
    ['exclusive', { url: 'redis://a', port: 1 }, /exclusive/],
    ['db with cluster', { cluster: [{ host: 'a', port: 1 }], db: 1 }, /`db`/],
    ['db', { db: -1 }, /`db`/],
    // SELECT takes a 32-bit signed integer: a larger one failed only at the first call
    ['db', { db: 2 ** 31 }, /option `db` must be an integer from 0 to 2\^31 − 1/],
    ['db', { db: 2 ** 40 }, /option `db` must be an integer from 0 to 2\^31 − 1/],
    ['tls', { tls: 'yes' }, /`tls`/],
    ['redisOptions', { redisOptions: [] }, /`redisOptions`/],
    ['prefix', { prefix: 'has space' }, /`prefix`/],
    ['lifetime', { lifetime: -1 }, /`lifetime`/],
    // ioredis would SELECT NaN after connecting, with no handler: an uncaught error ended the host
    ['url path', { url: 'redis://127.0.0.1:6379/abc' }, /`url`.*database number/],
    ['url path', { url: 'redis://127.0.0.1:6379/1/2' }, /`url`.*database number/],
    // ioredis takes query parameters as client options over the store's own
    ['url query', { url: 'redis://127.0.0.1:6379?enableOfflineQueue=true' }, /`url`.*query/],
    ['db and url', { url: 'redis://127.0.0.1:6379/1', db: 2 }, /`db` cannot be combined with a database in `url`/],
    ['password and url', { url: 'redis://u:secret@127.0.0.1:6379', password: 'x' }, /credentials in `url`/],
    ['username and url', { url: 'redis://:secret@127.0.0.1:6379', username: 'x' }, /credentials in `url`/],
    ['retryDelay without cluster', { url: 'redis://127.0.0.1:6379', retryDelay: 500 }, /`retryDelay` must be absent without a cluster/],
    // ioredis would use TLS all the same (the URL's scheme asks for it): two answers, one silently lost
    ['tls false with rediss', { url: 'rediss://127.0.0.1:6379', tls: false }, /`tls: false` cannot be combined with a `rediss:\/\/` `url`/],
  ]
  for (const [what, options, message] of bad) {
    it(`rejects ${what} ${JSON.stringify(options)} synchronously with InvalidOptionError`, () => {
      expect(() => new RedisStore(options as never)).toThrow(InvalidOptionError)
      expect(() => new RedisStore(options as never)).toThrow(message)
    })
  }

  // ioredis prefixes commands with keyPrefix but not SCAN patterns (clear() found nothing to remove),
  // and the store's own settings (db, tls, credentials, fail-fast behaviour) must not be replaced
  const owned: [string, unknown, string][] = [
    ['keyPrefix', 'app:', '`prefix`'],
    ['db', 2, '`db`'],
    ['tls', {}, '`tls`'],
    ['password', 'x', '`password`'],
    ['username', 'x', '`username`'],
    ['host', '127.0.0.1', '`host`'],
    ['port', 6380, '`port`'],
    ['lazyConnect', false, 'connects on first use'],
    ['enableOfflineQueue', true, 'fails fast'],
    ['maxRetriesPerRequest', 3, 'fails fast'],
    ['retryStrategy', () => 100, 'reconnects'],
    ['commandTimeout', 500, '`timeout`'],
  ]
  for (const [key, value, instead] of owned) {
    for (const where of [{ url: 'redis://127.0.0.1:6379', db: 1 }, { cluster: [{ host: '127.0.0.1', port: 7000 }] }]) {
      it(`refuses redisOptions.${key} (${Object.keys(where)[0]}), naming the option to use instead`, () => {
        const make = () => new RedisStore({ ...where, redisOptions: { [key]: value } } as never)
        expect(make).toThrow(InvalidOptionError)
        expect(make).toThrow(`option \`redisOptions.${key}\``)
        expect(make).toThrow(instead)
      })
    }
  }

  it('still passes other ioredis options through redisOptions', async () => {
    const store = new RedisStore({ url: 'redis://127.0.0.1:6379', redisOptions: { connectionName: 'mine', connectTimeout: 3000 } })
    const options = (store.client as Redis).options
    expect(options.connectionName).toBe('mine')
    expect(options.connectTimeout).toBe(3000)
    expect(options.enableOfflineQueue).toBe(false)
    await store.close()
  })

  it('connects with TLS for a rediss:// URL in any case (ioredis looks for lower-case rediss:// only)', async () => {
    for (const url of ['rediss://127.0.0.1:6379', 'REDISS://127.0.0.1:6379']) {
      const store = new RedisStore({ url })
      expect((store.client as Redis).options.tls).toBeTruthy()
      await store.close()
    }
  })

  it('never shows a URL password in the message of a refused URL', () => {
    expect(() => new RedisStore({ url: 'redis://u:hunter2@127.0.0.1:6379/x' })).toThrow(/redis:\/\/.*127\.0\.0\.1/)
    expect(() => new RedisStore({ url: 'redis://u:hunter2@127.0.0.1:6379/x' })).not.toThrow(/hunter2/)
  })

  it('takes a database in the URL or in `db`, and a URL without one', async () => {
    for (const options of [
      { url: 'redis://127.0.0.1:6379/3' },
      { url: 'redis://127.0.0.1:6379/', db: 3 },
      { url: 'redis://127.0.0.1:6379' },
    ]) {
      const store = new RedisStore(options)
      await store.close()
    }
  })

  it('connects lazily: constructing a store for an unreachable server neither throws nor connects', async () => {
    const store = new RedisStore({ host: '127.0.0.1', port: 1 })
    expect(store.client.status).toBe('wait')
    await store.close()
  })

  it('names the store after its server', async () => {
    const store = new RedisStore({ url: 'redis://127.0.0.1:7777' })
    expect(store.name).toBe('redis(127.0.0.1:7777)')
    await store.close()
  })
})

describe('RedisBackend options (a public export, for KeyValueStore)', () => {
  const refused = (options: unknown): string => {
    try {
      new RedisBackend(options as never)
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidOptionError)
      return (err as Error).message
    }
    throw new Error('expected an InvalidOptionError')
  }

  it('refuses unknown, missing and bad options synchronously, naming them (an unknown one was accepted, a missing client was a TypeError)', () => {
    const client = new Redis({ lazyConnect: true, port: 1 })
    try {
      expect(refused({ client, ttl: 5 })).toMatch(
        /^RedisBackend: unknown option `ttl`: did you mean `lifetime` \(seconds\), an option of the KeyValueStore over the backend/,
      )
      expect(refused({ client, tiemout: 100 })).toMatch(/^RedisBackend: unknown option `tiemout`: did you mean `timeout` \(ms\)\?/)
      expect(refused({ url: 'redis://127.0.0.1:1' })).toMatch(
        /^RedisBackend: unknown option `url` \(known options: clearable, client, clock/,
      )
      expect(refused({})).toMatch(/^RedisBackend: option `client` must be an ioredis Redis or Cluster instance, got `undefined`/)
      expect(refused(undefined)).toMatch(/^RedisBackend: options must be an object with `client`/)
      expect(refused({ client: {} })).toMatch(/option `client` must be an ioredis Redis or Cluster instance/)
      expect(refused({ client, timeout: 0 })).toMatch(/option `timeout` must be a number of ms > 0/)
      expect(refused({ client, timeout: 2 ** 31 })).toMatch(/option `timeout`/)
      expect(refused({ client, clock: { now: 5 } })).toMatch(/option `clock` must have a now\(\) method/)
      expect(refused({ client, name: '' })).toMatch(/option `name` must be a non-empty string/)
      expect(refused({ client, ownsClient: 'yes' })).toMatch(/option `ownsClient` must be a boolean/)
      expect(refused({ client, clearable: 1 })).toMatch(/option `clearable` must be a boolean/)
      expect(refused({ client, retryDelay: 500 })).toMatch(/option `retryDelay` must be absent without a cluster/)
    } finally {
      client.disconnect()
    }
  })

  it.runIf(stores.has('redis'))(
    'defaults the clock to the system clock and timeout to 1000 ms, and never closes the client: a KeyValueStore over it works',
    async () => {
      const client = new Redis(inject('redis').url)
      const backend = new RedisBackend({ client })
      const { host, port } = inject('redis')
      expect(backend.name).toBe(`redis(${host}:${port})`)
      const store = new KeyValueStore(backend, { lifetime: 60, prefix: uniquePrefix() })
      await store.put(makeUser(1))
      expect((await store.get(ConformanceUser, { id: 1 }))?.id).toBe(1)
      await store.close()
      expect(await client.ping()).toBe('PONG')
      await client.quit()
    },
  )
})

describe('redisSlot', () => {
  it('follows the hash tag rules', () => {
    expect(redisSlot('{user1000}.following')).toBe(redisSlot('user1000'))
    expect(redisSlot('foo{}{bar}')).not.toBe(redisSlot('bar'))
    expect(redisSlot('123456789')).toBe(0x31c3 % 16384)
  })
})

describe.runIf(stores.has('redis'))('RedisStore on a single node', () => {
  let raw: Redis
  beforeAll(() => {
    raw = new Redis(inject('redis').url)
  })
  afterAll(async () => {
    await raw.quit()
  })

  async function keysOf(prefix: string): Promise<string[]> {
    return (await raw.keys(`${prefix}:*`)).sort()
  }

  it('sets the lifetime on the server (PX, rounded up), checked against PTTL', async () => {
    const prefix = uniquePrefix()
    const store = new RedisStore({ url: inject('redis').url, prefix, lifetime: 60 })
    await store.put(makeUser(1))
    const keys = await keysOf(prefix)
    expect(keys).toHaveLength(3) // record + email alias + (orgId, slug) alias
    for (const key of keys) {
      const pttl = await raw.pttl(key)
      expect(pttl).toBeGreaterThan(58_000)
      expect(pttl).toBeLessThanOrEqual(60_000)
    }
    await store.close()
  })

  it('derives the server lifetime from the store clock, not the server clock', async () => {
    const prefix = uniquePrefix()
    const clock = new ManualClock(Date.UTC(2001, 0, 1)) // far in the past: PXAT would expire at once
    const store = new RedisStore({
      url: inject('redis').url,
      prefix,
      clock,
      lifetime: (u) => new Date(clock.now() + 30_000 + (u as ConformanceUser).id),
    })
    await store.put(makeUser(7))
    const [record] = await raw.keys(`${prefix}:ConformanceUser|id=*`)
    const pttl = await raw.pttl(record as string)
    expect(pttl).toBeGreaterThan(29_000)
    expect(pttl).toBeLessThanOrEqual(30_007)
    expect((await store.get(ConformanceUser, { id: 7 }))?.email).toBe('user7@example.com')
    clock.advance(31_000)
    expect(await store.get(ConformanceUser, { id: 7 })).toBeUndefined()
    await store.close()
  })

  it('stores entries without lifetime persistently and deletes every key', async () => {
    const prefix = uniquePrefix()
    const store = new RedisStore({ url: inject('redis').url, prefix, tombstoneLifetime: 10 })
    const user = makeUser(2)
    await store.put(user)
    const keys = await keysOf(prefix)
    expect(keys).toHaveLength(3)
    for (const key of keys) expect(await raw.pttl(key)).toBe(-1)
    await store.delete(user)
    // the aliases are gone; the record key holds a tombstone for `tombstoneLifetime` (10 s)
    const left = await keysOf(prefix)
    expect(left).toEqual([`${prefix}:ConformanceUser|id=n2`])
    const pttl = await raw.pttl(left[0] as string)
    expect(pttl).toBeGreaterThan(9_000)
    expect(pttl).toBeLessThanOrEqual(10_000)
    expect(await store.get(ConformanceUser, { id: 2 })).toBeUndefined()
    await store.close()
  })

  it('with tombstoneLifetime 0 a delete removes every key', async () => {
    const prefix = uniquePrefix()
    const store = new RedisStore({ url: inject('redis').url, prefix, tombstoneLifetime: 0 })
    const user = makeUser(2)
    await store.put(user)
    await store.delete(user)
    expect(await keysOf(prefix)).toEqual([])
    await store.close()
  })

  it('backend addMany: SET NX per entry, results in order, first of duplicates wins', async () => {
    const prefix = uniquePrefix()
    const backend = new RedisBackend({ client: raw, ownsClient: false, timeout: 1000, clock: { now: Date.now }, name: 'raw' })
    const k = (s: string): string => `${prefix}:${s}`
    await backend.setMany([{ key: k('held'), value: Buffer.from('old'), expiresAt: undefined }])
    const added = await backend.addMany([
      { key: k('new'), value: Buffer.from('a'), expiresAt: Date.now() + 5_000 },
      { key: k('held'), value: Buffer.from('b'), expiresAt: undefined },
      { key: k('new'), value: Buffer.from('c'), expiresAt: undefined },
      { key: k('expired'), value: Buffer.from('d'), expiresAt: Date.now() - 1 },
      { key: k('forever'), value: new Uint8Array([1, 2]), expiresAt: undefined },
    ])
    expect(added).toEqual([true, false, false, false, true])
    const got = await backend.getMany([k('new'), k('held'), k('expired'), k('forever')])
    expect(got.map((v) => (v === undefined ? undefined : Buffer.from(v).toString('hex')))).toEqual([
      '61',
      Buffer.from('old').toString('hex'),
      undefined,
      '0102',
    ])
    expect(await raw.pttl(k('new'))).toBeGreaterThan(4_000)
    expect(await raw.pttl(k('forever'))).toBe(-1)
    expect(await backend.addMany([])).toEqual([])
    await backend.deleteMany([k('new'), k('held'), k('forever')])
  })

  it('backend addWithAliases: each record SET NX, its aliases only where it was stored, in one round trip; NOSCRIPT reloads', async () => {
    const prefix = uniquePrefix()
    const backend = new RedisBackend({ client: raw, ownsClient: false, timeout: 1000, clock: { now: Date.now }, name: 'raw' })
    const k = (s: string): string => `${prefix}:${s}`
    const v = (s: string): Buffer => Buffer.from(s)
    await backend.setMany([
      { key: k('held'), value: v('old'), expiresAt: undefined },
      { key: k('stale-alias'), value: v('old'), expiresAt: undefined },
    ])
    await raw.script('FLUSH')
    const later = Date.now() + 5_000
    const sent: string[] = []
    const monitor = (command: { name: string }): void => void sent.push(command.name)
    const original = raw.sendCommand.bind(raw)
    raw.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
      monitor(command)
      return (original as (...a: unknown[]) => unknown)(command, ...rest)
    }) as typeof raw.sendCommand
    let added: boolean[]
    try {
      added = await backend.addWithAliases!([
        {
          record: { key: k('new'), value: v('a'), expiresAt: later },
          aliases: [{ key: k('new-alias'), value: v('→new'), expiresAt: later }],
        },
        {
          record: { key: k('held'), value: v('b'), expiresAt: undefined },
          aliases: [{ key: k('held-alias'), value: v('→held'), expiresAt: undefined }],
        },
        {
          record: { key: k('expired'), value: v('c'), expiresAt: Date.now() - 1 },
          aliases: [{ key: k('expired-alias'), value: v('x'), expiresAt: undefined }],
        },
        { record: { key: k('forever'), value: new Uint8Array([1, 2]), expiresAt: undefined }, aliases: [] },
        {
          // an alias already expired is deleted; one without a lifetime never expires; an empty value is a value
          record: { key: k('fresh'), value: new Uint8Array(0), expiresAt: later },
          aliases: [
            { key: k('stale-alias'), value: v('s'), expiresAt: Date.now() - 1 },
            { key: k('plain-alias'), value: v('p'), expiresAt: undefined },
          ],
        },
      ])
    } finally {
      raw.sendCommand = original
    }
    expect(added).toEqual([true, false, false, true, true])
    expect(sent).toEqual(['evalsha', 'eval'])
    expect(await raw.getBuffer(k('fresh'))).toEqual(Buffer.alloc(0))
    expect(await raw.exists(k('stale-alias'))).toBe(0)
    expect(await raw.get(k('plain-alias'))).toBe('p')
    expect(await raw.pttl(k('plain-alias'))).toBe(-1)
    const got = await backend.getMany([
      k('new'),
      k('new-alias'),
      k('held'),
      k('held-alias'),
      k('expired'),
      k('expired-alias'),
      k('forever'),
    ])
    expect(got.map((b) => (b === undefined ? undefined : Buffer.from(b).toString()))).toEqual([
      'a',
      '→new',
      'old',
      undefined,
      undefined,
      undefined,
      '\x01\x02',
    ])
    expect(await raw.pttl(k('new'))).toBeGreaterThan(4_000)
    expect(await raw.pttl(k('new-alias'))).toBeGreaterThan(4_000)
    expect(await raw.pttl(k('forever'))).toBe(-1)
    // the script is loaded now: one EVALSHA for a batch of 600 (three script calls in one round trip)
    const many = Array.from({ length: 600 }, (_, i) => ({
      record: { key: k(`r${i}`), value: v(`${i}`), expiresAt: later },
      aliases: [{ key: k(`a${i}`), value: v(`→${i}`), expiresAt: later }],
    }))
    expect((await backend.addWithAliases!(many)).every((a) => a)).toBe(true)
    expect((await backend.getMany([k('a599'), k('r0')])).map((b) => b?.toString())).toEqual(['→599', '0'])
    expect(await backend.addWithAliases!([])).toEqual([])
    await raw.del(...(await keysOf(prefix)))
  })

  it('a lifetime that is already over stores no copy, only the tombstone a delete leaves (none with tombstoneLifetime 0)', async () => {
    const prefix = uniquePrefix()
    const store = new RedisStore({ url: inject('redis').url, prefix, lifetime: () => new Date(0) })
    await store.put(makeUser(3))
    // a tombstone, not the record: a copy read before the put must not be backfilled after it (review)
    expect(await keysOf(prefix)).toEqual([`${prefix}:ConformanceUser|id=n3`])
    expect(await store.get(ConformanceUser, { id: 3 })).toBeUndefined()
    const pttl = await raw.pttl(`${prefix}:ConformanceUser|id=n3`)
    expect(pttl).toBeGreaterThan(1_000)
    expect(pttl).toBeLessThanOrEqual(2_000)
    await store.close()
    const plain = uniquePrefix()
    const untombstoned = new RedisStore({ url: inject('redis').url, prefix: plain, lifetime: () => new Date(0), tombstoneLifetime: 0 })
    await untombstoned.put(makeUser(3))
    expect(await keysOf(plain)).toEqual([])
    await untombstoned.close()
  })

  it('backend: order, duplicates, misses, later writes win', async () => {
    const prefix = uniquePrefix()
    const backend = new RedisBackend({ client: raw, ownsClient: false, timeout: 1000, clock: { now: Date.now }, name: 'raw' })
    const k = (s: string): string => `${prefix}:${s}`
    await backend.setMany([
      { key: k('a'), value: Buffer.from('1'), expiresAt: undefined },
      { key: k('b'), value: new Uint8Array([0, 13, 10, 255]), expiresAt: Date.now() + 10_000 },
      { key: k('a'), value: Buffer.from('2'), expiresAt: undefined },
    ])
    const got = await backend.getMany([k('a'), k('missing'), k('b'), k('a')])
    expect(got.map((v) => (v === undefined ? undefined : [...v]))).toEqual([[0x32], undefined, [0, 13, 10, 255], [0x32]])
    expect(Buffer.isBuffer(got[0])).toBe(true)
    expect(await backend.getMany([])).toEqual([])
    await backend.deleteMany([k('a'), k('a'), k('nope')])
    expect(await backend.getMany([k('a'), k('b')])).toEqual([undefined, expect.any(Buffer)])
    await backend.deleteMany([k('b')])
  })

  it('backend: batches larger than one MGET chunk', async () => {
    const prefix = uniquePrefix()
    const backend = new RedisBackend({ client: raw, ownsClient: false, timeout: 5000, clock: { now: Date.now }, name: 'raw' })
    const keys = Array.from({ length: 1234 }, (_, i) => `${prefix}:k${i}`)
    await backend.setMany(keys.filter((_, i) => i % 3 !== 0).map((key) => ({ key, value: Buffer.from(key), expiresAt: undefined })))
    const got = await backend.getMany(keys)
    expect(got.map((v) => v?.toString())).toEqual(keys.map((key, i) => (i % 3 === 0 ? undefined : key)))
    await backend.deleteMany(keys)
    expect((await backend.getMany(keys)).every((v) => v === undefined)).toBe(true)
  })

  it('a put of an object with aliases sends its few SETs in one write to the socket', async () => {
    const client = new Redis(inject('redis').url)
    expect(await client.ping()).toBe('PONG')
    const store = new RedisStore({ client, prefix: uniquePrefix() })
    // the socket's Writable implementation: each call is one write to the kernel
    const stream = client.stream as unknown as Record<'_write' | '_writev', (...args: unknown[]) => unknown>
    let writes = 0
    for (const method of ['_write', '_writev'] as const) {
      const original = stream[method]
      stream[method] = function (this: unknown, ...args: unknown[]) {
        writes++
        return original.apply(this, args)
      }
    }
    await store.put(makeUser(6)) // the record and two aliases: three SETs
    expect(writes).toBe(1)
    expect((await store.get(ConformanceUser, { email: 'user6@example.com' }))?.id).toBe(6)
    await store.close()
    await client.quit()
  })

  it('never closes a client it does not own', async () => {
    const client = new Redis(inject('redis').url)
    const store = new RedisStore({ client, prefix: uniquePrefix() })
    await store.put(makeUser(4))
    expect((await store.get(ConformanceUser, { email: 'user4@example.com' }))?.id).toBe(4)
    await store.close()
    await store.close() // idempotent
    await expect(store.get(ConformanceUser, { id: 4 })).rejects.toThrow(StoreClosedError)
    expect(await client.ping()).toBe('PONG')
    await client.quit()
  })

  it('a database the server refuses to SELECT fails every call: nothing is read or written in database 0', async () => {
    const prefix = uniquePrefix()
    for (const options of [{ url: `${inject('redis').url}/99` }, { url: inject('redis').url, db: 99 }]) {
      const store = new RedisStore({ ...options, prefix, timeout: 2000 })
      const put = store.put(makeUser(1))
      await expect(put).rejects.toThrow(/DB index is out of range/)
      await expect(put).rejects.toMatchObject({ code: 'E_STORE_UNAVAILABLE' })
      await expect(store.get(ConformanceUser, { id: 1 })).rejects.toMatchObject({ code: 'E_STORE_UNAVAILABLE' })
      await store.close()
    }
    expect(await keysOf(prefix)).toEqual([])
  })

  it('closing a store whose SELECT was refused prints no ioredis "Unhandled error event" (the ready check fails after close)', async () => {
    const printed = vi.spyOn(console, 'error').mockImplementation(() => {})
    try {
      const store = new RedisStore({ url: inject('redis').url, db: 99, prefix: uniquePrefix(), timeout: 2000 })
      await expect(store.get(ConformanceUser, { id: 1 })).rejects.toThrow(/DB index is out of range/)
      const client = store.client
      await store.close()
      // the client the store owned keeps a listener: an error it emits now (its ready check's) goes nowhere
      expect(client.listenerCount('error')).toBeGreaterThan(0)
      await new Promise((resolve) => setTimeout(resolve, 100))
      expect(printed.mock.calls.filter((call) => String(call[0]).includes('[ioredis]'))).toEqual([])
    } finally {
      printed.mockRestore()
    }
  })

  it('a refused password never appears in the error or its causes', async () => {
    const { host, port } = inject('redis')
    for (const options of [{ url: `redis://alice:hunter2@${host}:${port}` }, { host, port, username: 'alice', password: 'hunter2' }]) {
      const store = new RedisStore({ ...options, prefix: uniquePrefix(), timeout: 2000 })
      const failure = await store.get(ConformanceUser, { id: 1 }).then(
        () => undefined,
        (err: unknown) => err,
      )
      expect(failure).toMatchObject({ code: 'E_STORE_UNAVAILABLE', message: expect.stringMatching(/WRONGPASS/) })
      expect(inspect(failure, { depth: 20 })).toContain('WRONGPASS')
      expect(inspect(failure, { depth: 20 })).not.toContain('hunter2')
      await store.close()
    }
  })

  it('closes its own client', async () => {
    const store = new RedisStore({ url: inject('redis').url, prefix: uniquePrefix() })
    await store.put(makeUser(5))
    const client = store.client
    await store.close()
    expect(client.status).toBe('end')
  })
})

describe.runIf(stores.has('redis-cluster'))('RedisStore on a cluster', () => {
  it('routes keys of every slot (record and aliases live on different nodes)', async () => {
    const store = new RedisStore({ cluster: inject('redisCluster'), prefix: uniquePrefix(), lifetime: 60 })
    const users = Array.from({ length: 200 }, (_, i) => makeUser(i + 1))
    await store.batchPut(users)
    const byEmail = await store.batchGet(
      ConformanceUser,
      users.map((u) => ({ email: u.email })),
    )
    expect(byEmail.map((u) => u?.id)).toEqual(users.map((u) => u.id))
    await store.batchDelete(users)
    expect((await store.batchGet(ConformanceUser, [{ id: 1 }, { id: 200 }])).every((u) => u === undefined)).toBe(true)
    await store.close()
  })

  it('backfills across slots: no single-node script (addWithAliases undefined), records added NX, aliases where added', async () => {
    const prefix = uniquePrefix()
    const store = new RedisStore({ cluster: inject('redisCluster'), prefix, lifetime: 60 })
    expect((store.backend as RedisBackend).addWithAliases).toBeUndefined()
    const users = Array.from({ length: 20 }, (_, i) => makeUser(i + 1))
    const held = makeUser(1)
    held.name = 'held'
    await store.put(held)
    await store.batchPutEntries(
      users.map((value) => ({ value, expiresAt: undefined })),
      { backfill: true },
    )
    const got = await store.batchGet(
      ConformanceUser,
      users.map((u) => ({ email: u.email })),
    )
    expect(got.map((u) => u?.name)).toEqual(users.map((u, i) => (i === 0 ? 'held' : u.name)))
    await store.batchDelete(users)
    await store.close()
  })

  it('backend addMany across slots and nodes', async () => {
    const prefix = uniquePrefix()
    const store = new RedisStore({ cluster: inject('redisCluster'), prefix })
    const backend = store.backend as RedisBackend
    const keys = Array.from({ length: 60 }, (_, i) => `${prefix}:k${i}`)
    await backend.setMany(keys.filter((_, i) => i % 2 === 0).map((key) => ({ key, value: Buffer.from('held'), expiresAt: undefined })))
    const added = await backend.addMany(keys.map((key) => ({ key, value: Buffer.from('new'), expiresAt: Date.now() + 60_000 })))
    expect(added).toEqual(keys.map((_, i) => i % 2 === 1))
    const got = await backend.getMany(keys)
    expect(got.map((v) => v?.toString())).toEqual(keys.map((_, i) => (i % 2 === 0 ? 'held' : 'new')))
    await backend.deleteMany(keys)
    await store.close()
  })
})
