import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { envelopeKind, KIND_TOMBSTONE } from '../../src/core/codec.js'
import { CorruptEntryError, InvalidKeyError, InvalidOptionError, StoreClosedError, ValueTooLargeError } from '../../src/core/errors.js'
import { PartialFailureError } from '../../src/core/partial-failure.js'
import { type CacheErrorEvent, ChainedStore, ProcessMemoryStore } from '../../src/index.js'
import {
  DEFAULT_MEMCACHE_MAX_VALUE_BYTES,
  MEMCACHE_MAX_RELATIVE_EXPTIME,
  MemcacheBackend,
  MemcacheStore,
  memcacheExptime,
} from '../../src/stores/memcache/index.js'
import { startedAfter, startedBefore, uptimeShowsRestart } from '../../src/stores/memcache/memcache-restart-watch.js'
import { MemcacheRing } from '../../src/stores/memcache/memcache-ring.js'
import { ConformanceUser, ManualClock, makeUser } from '../../src/testing/index.js'
import { selectedStores } from '../harness/servers.js'

const stores = selectedStores()
let prefixes = 0
const uniquePrefix = (): string => `mt${process.pid}x${++prefixes}`

/** Sends one text-protocol request to a memcached server and resolves with the reply up to `end`. */
function ask(server: string, request: string, end: RegExp = /\r\n$/): Promise<string> {
  const [host, port] = server.split(':') as [string, string]
  return new Promise((resolve, reject) => {
    let text = ''
    const socket = connect({ host, port: Number(port) })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no reply from ${server} to ${JSON.stringify(request)}: ${JSON.stringify(text)}`))
    }, 2000)
    socket.setEncoding('latin1')
    socket.once('connect', () => socket.write(request))
    socket.on('data', (chunk: string) => {
      text += chunk
      if (end.test(text)) {
        clearTimeout(timer)
        socket.destroy()
        resolve(text)
      }
    })
    socket.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
  })
}

/** `mg <key> t` (meta get): the item's remaining TTL in seconds (-1 = never), or undefined when absent. */
async function remainingSeconds(server: string, key: string): Promise<number | undefined> {
  const reply = await ask(server, `mg ${key} t\r\n`)
  if (reply.startsWith('EN')) return undefined
  const ttl = /^HD t(-?\d+)\r\n$/.exec(reply)
  if (ttl === null) throw new Error(`unexpected reply to mg ${key} t: ${JSON.stringify(reply)}`)
  return Number(ttl[1])
}

/** The canonical record key of a user by id, as KeyValueStore writes it. */
const userKey = (prefix: string, id: number): string => `${prefix}:ConformanceUser|id=n${id}`

describe('MemcacheStore options', () => {
  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['servers missing', {}, /`servers`/],
    ['servers empty', { servers: [] }, /`servers`/],
    ['servers not host:port', { servers: ['localhost'] }, /`servers`\[0\]/],
    ['servers port 0', { servers: ['a:1', 'b:0'] }, /`servers`\[1\]/],
    ['servers port too big', { servers: ['a:65536'] }, /`servers`\[0\]/],
    ['servers IPv6', { servers: ['[::1]:11211'] }, /`servers`\[0\]/],
    ['servers duplicate', { servers: ['a:1', 'a:1'] }, /`servers` lists `"a:1"` twice/],
    ['servers weight', { servers: [{ address: 'a:1', weight: 0 }] }, /`servers`\[0\]\.weight/],
    ['servers entry type', { servers: [42] }, /`servers`\[0\]/],
    [
      'a misspelt weight',
      { servers: ['a:1', { address: 'b:1', wieght: 5 }] },
      /`servers`\[1\]: unknown option `wieght`: did you mean `weight`/,
    ],
    ['a misspelt address', { servers: [{ adress: 'b:1' }] }, /`servers`\[0\]: unknown option `adress`: did you mean `address`/],
    ['an unknown setting of a weighted server', { servers: [{ address: 'b:1', port: 1 }] }, /`servers`\[0\]: unknown option `port`/],
    ['timeout 0', { servers: ['a:1'], timeout: 0 }, /`timeout`/],
    ['timeout NaN', { servers: ['a:1'], timeout: Number.NaN }, /`timeout`/],
    ['timeout string', { servers: ['a:1'], timeout: '1000' }, /`timeout`/],
    ['connectTimeout', { servers: ['a:1'], connectTimeout: -5 }, /`connectTimeout`/],
    ['retryDelay', { servers: ['a:1'], retryDelay: -1 }, /`retryDelay`/],
    ['maxValueBytes 0', { servers: ['a:1'], maxValueBytes: 0 }, /`maxValueBytes`/],
    ['maxValueBytes fraction', { servers: ['a:1'], maxValueBytes: 1.5 }, /`maxValueBytes`/],
    ['tls', { servers: ['a:1'], tls: 'yes' }, /`tls`/],
    ['hashing', { servers: ['a:1'], hashing: 'crc32' }, /`hashing`/],
    ['partialReads', { servers: ['a:1'], partialReads: 'yes' }, /`partialReads`/],
    ['onError', { servers: ['a:1'], onError: 'log' }, /`onError`/],
    ['name', { servers: ['a:1'], name: '' }, /`name`/],
    ['unknown option', { servers: ['a:1'], server: 'a:1' }, /unknown option `server`/],
    ['the backend option repairKey', { servers: ['a:1'], repairKey: () => 'keep' }, /unknown option `repairKey`/],
    ['prefix', { servers: ['a:1'], prefix: 'has space' }, /`prefix`/],
    [
      'a prefix over 40 characters',
      { servers: ['a:1'], prefix: 'p'.repeat(41) },
      /`prefix` must be at most 40 characters of \[A-Za-z0-9_.~:-\]/,
    ],
    ['a prefix with a character outside [A-Za-z0-9_.~:-]', { servers: ['a:1'], prefix: 'app/v2' }, /`prefix`/],
    ['lifetime', { servers: ['a:1'], lifetime: 0 }, /`lifetime`/],
    ['polymorphic', { servers: ['a:1'], polymorphic: 1 }, /`polymorphic`/],
    ['clock', { servers: ['a:1'], clock: {} }, /`clock`/],
  ]
  for (const [what, options, message] of bad) {
    it(`rejects ${what} synchronously with InvalidOptionError naming it`, () => {
      expect(() => new MemcacheStore(options as never)).toThrow(InvalidOptionError)
      expect(() => new MemcacheStore(options as never)).toThrow(message)
    })
  }

  it('accepts a prefix of up to 40 characters of [A-Za-z0-9_.~:-], and the empty prefix', async () => {
    for (const prefix of ['Az09_.~:-'.padEnd(40, 'x'), '']) await new MemcacheStore({ servers: ['127.0.0.1:1'], prefix }).close()
  })

  it('accepts weighted servers and host names, connects lazily, and is named after its servers', async () => {
    const store = new MemcacheStore({ servers: ['127.0.0.1:1', { address: 'cache-2.local:11211', weight: 2 }] })
    expect(store.name).toBe('memcache(127.0.0.1:1,cache-2.local:11211)')
    expect(store.backend.maxValueBytes).toBe(DEFAULT_MEMCACHE_MAX_VALUE_BYTES)
    expect(store.capabilities.secondResolution).toBe(true)
    expect(store.stats().map((s) => s.getRequests + s.setRequests)).toEqual([0, 0])
    await store.close()
    await store.close()
    await expect(store.get(ConformanceUser, { id: 1 })).rejects.toThrow(StoreClosedError)
  })
})

describe('memcached uptime signs of a restart', () => {
  // memcached 1.6 counts whole seconds from 2 s before it started, its clock ticking once a second:
  // 0.1 s after the start it says 2, at 1.1 s it says 3; a thawed server may answer once with the
  // uptime it had when frozen
  const at = (ranMs: number, uptime: number, startedAt = 10_000): { pid: string; uptime: number; sentAt: number; answeredAt: number } => ({
    pid: '1',
    uptime,
    sentAt: startedAt + ranMs,
    answeredAt: startedAt + ranMs + 1,
  })
  it('an uptime that grew with the time between two answers is the same process; a shorter one is another', () => {
    const known = at(60_000, 62)
    expect(uptimeShowsRestart(known, at(65_100, 67))).toBe(false)
    expect(uptimeShowsRestart(known, at(65_900, 67))).toBe(false)
    // restarted 0.5 s before the answer, 65.5 s after the first process started
    expect(uptimeShowsRestart(known, at(500, 2, 75_500))).toBe(true)
    // a process that had run 2 s cannot be told from its successor by uptime; one that had run 4.5 s can
    expect(uptimeShowsRestart(at(2_000, 4), at(500, 2, 12_500))).toBe(false)
    expect(uptimeShowsRestart(at(4_000, 6), at(500, 2, 14_500))).toBe(true)
    expect(uptimeShowsRestart(known, at(65_000, Number.NaN))).toBe(false)
  })
  it('tells a start after or before a time only with 2 s to spare', () => {
    const since = 20_000
    expect(startedAfter(at(100, 2, since + 500), since)).toBe(false) // counted as 1.9 s before it started
    expect(startedAfter(at(100, 2, since + 2_500), since)).toBe(true)
    expect(startedAfter(at(100, Number.NaN, since + 9_000), since)).toBe(false)
    expect(startedBefore(at(900, 2, since - 500), since)).toBe(false)
    expect(startedBefore(at(4_900, 6, since - 3_000), since)).toBe(true)
  })
})

describe('memcacheExptime', () => {
  const now = 1_700_000_000_000
  it('sends 0 for never and -1 for an expiry already reached', () => {
    expect(memcacheExptime(undefined, now)).toBe(0)
    expect(memcacheExptime(now, now)).toBe(-1)
    expect(memcacheExptime(now - 5000, now)).toBe(-1)
  })

  it('rounds the remaining time up to whole seconds and adds one second for the server clock', () => {
    expect(memcacheExptime(now + 1, now)).toBe(2)
    expect(memcacheExptime(now + 1000, now)).toBe(2)
    expect(memcacheExptime(now + 1001, now)).toBe(3)
    expect(memcacheExptime(now + 59_999, now)).toBe(61)
  })

  it('is relative up to 30 days and an absolute Unix time beyond, measured on the system clock', () => {
    const system = 1_800_000_000_500
    const limit = MEMCACHE_MAX_RELATIVE_EXPTIME
    expect(memcacheExptime(now + (limit - 1) * 1000, now, system)).toBe(limit)
    // the store clock (now) may differ from the system clock: only the remaining time matters
    expect(memcacheExptime(now + limit * 1000, now, system)).toBe(Math.ceil((system + limit * 1000) / 1000) + 1)
    expect(memcacheExptime(now + 40 * 86_400_000 + 1, now, system)).toBe(Math.ceil((system + 40 * 86_400_000 + 1) / 1000) + 1)
    expect(memcacheExptime(now + 40 * 86_400_000, now, system)).toBeGreaterThan(limit)
  })

  it('gives 0 (never; the envelope still expires it) past 2038', () => {
    expect(memcacheExptime(now + 100 * 365 * 86_400_000, now, now)).toBe(0)
  })
})

describe('MemcacheRing (ketama)', () => {
  /** libketama's continuum, written from its C source: an independent reference for the mapping. */
  function libketama(servers: readonly string[]): (key: string) => string {
    const points: { point: number; server: string }[] = []
    for (const server of servers) {
      const count = Math.floor((1 / servers.length) * 40 * servers.length)
      for (let i = 0; i < count; i++) {
        const digest = createHash('md5').update(`${server}-${i}`).digest()
        for (let h = 0; h < 4; h++) points.push({ point: digest.readUInt32LE(h * 4), server })
      }
    }
    points.sort((a, b) => a.point - b.point)
    return (key) => {
      const hash = createHash('md5').update(key).digest().readUInt32LE(0)
      const found = points.find((p) => p.point >= hash) ?? points[0]
      return (found as { server: string }).server
    }
  }

  it('maps keys exactly as libketama does', () => {
    const servers = ['127.0.0.1:11211', '127.0.0.1:11212', '10.1.2.3:22122']
    const ring = new MemcacheRing(servers.map((address) => ({ address, weight: 1 })))
    const reference = libketama(servers)
    for (let i = 0; i < 5000; i++) {
      const key = `stockpyle:ConformanceUser|id=n${i}`
      expect(ring.serverFor(key)).toBe(reference(key))
    }
  })

  // Fixtures produced by python-ketama and pylibmc, shipped in the hashring package's tests.
  const fixtures = createRequire(import.meta.url)
    .resolve('hashring')
    .replace(/index\.js$/, 'tests/fixtures/')
  it.runIf(existsSync(`${fixtures}ketama.txt`))('matches python-ketama with weights', () => {
    const lines = readFileSync(`${fixtures}ketama.txt`, 'utf8').split('\n')
    const ring = new MemcacheRing([1, 2, 3, 4, 5].map((w) => ({ address: `0.0.0.${w}`, weight: w })))
    for (let i = 0; i < 20_000; i++) expect(`${i} ${ring.serverFor(String(i))}`).toBe(lines[i])
  })

  it.runIf(existsSync(`${fixtures}pylibmc.txt`))("matches pylibmc (libmemcached) with hashing: 'libmemcached'", () => {
    const lines = readFileSync(`${fixtures}pylibmc.txt`, 'utf8').split('\n')
    const servers = ['0.0.0.1:11211', '0.0.0.2:11211', '0.0.0.3', '0.0.0.4:11213', '0.0.0.5:11212']
    const ring = new MemcacheRing(
      servers.map((address) => ({ address, weight: 1 })),
      'libmemcached',
    )
    for (let i = 0; i < 20_000; i++) expect(`${i} ${ring.serverFor(String(i))}`).toBe(lines[i])
  })
})

describe.runIf(stores.has('memcached'))('MemcacheStore on 3 memcached servers', () => {
  let servers: string[]
  const open: { close(): Promise<void> }[] = []
  type Options = Partial<ConstructorParameters<typeof MemcacheStore>[0]>
  const make = (options: Options = {}): { store: MemcacheStore; prefix: string } => {
    const prefix = uniquePrefix()
    const store = new MemcacheStore({ servers, prefix, ...options })
    open.push(store)
    return { store, prefix }
  }
  const backend = (options: Partial<ConstructorParameters<typeof MemcacheBackend>[0]> = {}): MemcacheBackend => {
    const b = new MemcacheBackend({ servers, ...options })
    open.push(b)
    return b
  }
  beforeAll(() => {
    servers = inject('memcachedServers')
  })
  afterAll(async () => {
    await Promise.all(open.map((s) => s.close()))
  })

  it('spreads keys over the 3 servers, each record on the server the ring names and nowhere else', async () => {
    const { store, prefix } = make()
    const users = Array.from({ length: 300 }, (_, i) => makeUser(i))
    await store.batchPut(users)
    const perServer = new Map(servers.map((a) => [a, 0]))
    for (const user of users) {
      const owner = store.backend.serverFor(userKey(prefix, user.id))
      perServer.set(owner, (perServer.get(owner) as number) + 1)
    }
    expect([...perServer.keys()].sort()).toEqual([...servers].sort())
    for (const count of perServer.values()) expect(count).toBeGreaterThan(50)
    for (const user of users.slice(0, 30)) {
      const key = userKey(prefix, user.id)
      const owner = store.backend.serverFor(key)
      for (const server of servers) {
        const exp = await remainingSeconds(server, key)
        if (server === owner)
          expect(exp).toBe(-1) // no lifetime: never expires (not memcache-client's 60 s)
        else expect(exp).toBeUndefined()
      }
    }
  })

  it('sends one multi-get per server for a batchGet of 100 keys', async () => {
    const { store } = make()
    const users = Array.from({ length: 100 }, (_, i) => makeUser(1000 + i))
    await store.batchPut(users)
    const before = store.stats()
    const got = await store.batchGet(
      ConformanceUser,
      users.map((u) => ({ id: u.id })),
    )
    expect(got).toEqual(users)
    const after = store.stats()
    expect(after.map((s, i) => s.getRequests - (before[i]?.getRequests ?? 0))).toEqual([1, 1, 1])
    expect(after.reduce((n, s, i) => n + s.keysRead - (before[i]?.keysRead ?? 0), 0)).toBe(100)
    expect(after.reduce((n, s, i) => n + s.hits - (before[i]?.hits ?? 0), 0)).toBe(100)
  })

  it('reads only the servers a batch needs, and a big batch (3000 keys, long lines) still in one request each', async () => {
    const b = backend()
    const prefix = uniquePrefix()
    const key = (i: number) => `${prefix}:${'k'.repeat(150)}:${i}`
    const entries = Array.from({ length: 3000 }, (_, i) => ({ key: key(i), value: Buffer.from(`v${i}`), expiresAt: undefined }))
    await b.setMany(entries)
    const before = b.stats()
    const values = await b.getMany(entries.map((e) => e.key))
    expect(values.map((v) => Buffer.from(v as Uint8Array).toString())).toEqual(entries.map((_, i) => `v${i}`))
    expect(b.stats().map((s, i) => s.getRequests - (before[i]?.getRequests ?? 0))).toEqual([1, 1, 1])
    // a key alone asks only its owner
    const owner = servers.indexOf(b.serverFor(key(7)))
    const mid = b.stats()
    await b.getMany([key(7)])
    expect(b.stats().map((s, i) => s.getRequests - (mid[i]?.getRequests ?? 0))).toEqual(servers.map((_, i) => (i === owner ? 1 : 0)))
  })

  it('keeps bytes exact, answers repeated keys, and lets the last of repeated entries win', async () => {
    const b = backend()
    const prefix = uniquePrefix()
    const nasty = Buffer.from('a\r\nEND\r\nVALUE x 0 1\r\n\u0000\u00ff', 'latin1')
    await b.setMany([
      { key: `${prefix}:a`, value: Buffer.from('first'), expiresAt: undefined },
      { key: `${prefix}:b`, value: new Uint8Array(nasty), expiresAt: undefined },
      { key: `${prefix}:a`, value: Buffer.from('second'), expiresAt: undefined },
    ])
    const [a1, b1, missing, a2] = await b.getMany([`${prefix}:a`, `${prefix}:b`, `${prefix}:none`, `${prefix}:a`])
    expect(Buffer.from(a1 as Uint8Array).toString()).toBe('second')
    expect(Buffer.from(b1 as Uint8Array).equals(nasty)).toBe(true)
    expect(missing).toBeUndefined()
    expect(Buffer.from(a2 as Uint8Array).toString()).toBe('second')
    await b.deleteMany([`${prefix}:a`, `${prefix}:none`, `${prefix}:a`])
    expect(await b.getMany([`${prefix}:a`, `${prefix}:b`])).toEqual([undefined, expect.anything()])
    expect(await b.getMany([])).toEqual([])
  })

  it('addMany stores only where a key holds nothing, and says which entries it stored', async () => {
    const b = backend()
    const prefix = uniquePrefix()
    const keys = Array.from({ length: 30 }, (_, i) => `${prefix}:add${i}`)
    await b.setMany(keys.filter((_, i) => i % 3 === 0).map((key) => ({ key, value: Buffer.from('newer'), expiresAt: undefined })))
    const before = b.stats()
    const entries = [
      ...keys.map((key) => ({ key, value: Buffer.from('backfill'), expiresAt: Date.now() + 60_000 })),
      { key: keys[1] as string, value: Buffer.from('second'), expiresAt: undefined },
    ]
    const stored = await b.addMany(entries)
    expect(stored).toEqual([...keys.map((_, i) => i % 3 !== 0), false])
    expect(b.stats().reduce((n, s, i) => n + s.addRequests - (before[i]?.addRequests ?? 0), 0)).toBe(31)
    const values = (await b.getMany(keys)).map((v) => Buffer.from(v as Uint8Array).toString())
    expect(values).toEqual(keys.map((_, i) => (i % 3 === 0 ? 'newer' : 'backfill')))
    const ttl = await remainingSeconds(b.serverFor(keys[1] as string), keys[1] as string)
    expect(ttl).toBeGreaterThanOrEqual(60)
    expect(ttl).toBeLessThanOrEqual(61)
    expect(await b.addMany([])).toEqual([])
    await expect(b.addMany([{ key: `${prefix}:big`, value: Buffer.alloc(b.maxValueBytes + 1), expiresAt: undefined }])).rejects.toThrow(
      ValueTooLargeError,
    )
  })

  it('rejects keys memcached cannot hold with InvalidKeyError before sending', async () => {
    const b = backend()
    await expect(b.getMany(['has space'])).rejects.toThrow(InvalidKeyError)
    await expect(b.setMany([{ key: 'x'.repeat(251), value: Buffer.from('v'), expiresAt: undefined }])).rejects.toThrow(InvalidKeyError)
    await expect(b.deleteMany(['ctl\u0001'])).rejects.toThrow(InvalidKeyError)
    expect(b.stats().every((s) => s.getRequests + s.setRequests + s.deleteRequests === 0)).toBe(true)
  })

  it('passes lifetimes as relative seconds rounded up (plus 1 s), and past 30 days as an absolute time', async () => {
    const { store, prefix } = make({
      lifetime: (obj) => {
        const id = (obj as ConformanceUser).id
        if (id === 1) return 1.2
        if (id === 2) return 40 * 86_400
        if (id === 3) return new Date(Date.now() + 10_000)
        return undefined
      },
    })
    await store.batchPut([1, 2, 3, 4].map(makeUser))
    const exp = async (id: number) => remainingSeconds(store.backend.serverFor(userKey(prefix, id)), userKey(prefix, id))
    // memcached reports the remaining seconds on its own (coarse) clock: the sent value or one less
    expect(await exp(1)).toBeGreaterThanOrEqual(2)
    expect(await exp(1)).toBeLessThanOrEqual(3)
    // sent as an absolute Unix time (as a relative value it would read as 1970 and be gone at once);
    // the server's clock ticks at its own sub-second phase, so allow a few seconds either way
    const forty = await exp(2)
    expect(forty).toBeGreaterThanOrEqual(40 * 86_400 - 1)
    expect(forty).toBeLessThanOrEqual(40 * 86_400 + 3)
    expect(await exp(3)).toBeGreaterThanOrEqual(10)
    expect(await exp(3)).toBeLessThanOrEqual(11)
    expect(await exp(4)).toBe(-1)
  })

  it('measures the remaining lifetime on the store clock, so a manual clock works', async () => {
    const clock = new ManualClock(Date.UTC(2001, 0, 1))
    const { store, prefix } = make({ lifetime: 5, clock })
    await store.put(makeUser(9))
    const key = userKey(prefix, 9)
    const exp = await remainingSeconds(store.backend.serverFor(key), key)
    expect(exp).toBeGreaterThanOrEqual(5)
    expect(exp).toBeLessThanOrEqual(6)
    clock.advance(5000)
    expect(await store.get(ConformanceUser, { id: 9 })).toBeUndefined()
  })

  it('never lets memcached drop an entry before its lifetime ends (real time)', async () => {
    const b = backend()
    const prefix = uniquePrefix()
    // five entries written at different sub-second phases of the server's clock
    const written: { key: string; at: number }[] = []
    for (let i = 0; i < 5; i++) {
      const key = `${prefix}:life${i}`
      const at = Date.now()
      await b.setMany([{ key, value: Buffer.from('x'), expiresAt: at + 1000 }])
      written.push({ key, at })
      await new Promise((r) => setTimeout(r, 190))
    }
    const goneAt = new Map<string, number>()
    while (goneAt.size < written.length) {
      const values = await b.getMany(written.map((w) => w.key))
      const now = Date.now()
      values.forEach((v, i) => {
        const w = written[i] as { key: string }
        if (v === undefined && !goneAt.has(w.key)) goneAt.set(w.key, now)
      })
      await new Promise((r) => setTimeout(r, 20))
    }
    for (const w of written) expect((goneAt.get(w.key) as number) - w.at).toBeGreaterThanOrEqual(1000)
  })

  it('rejects a value over maxValueBytes with ValueTooLargeError before sending anything', async () => {
    const { store } = make({ maxValueBytes: 2000 })
    const small = makeUser(20)
    const big = makeUser(21)
    big.avatar = Buffer.alloc(5000)
    const before = store.stats()
    await expect(store.batchPut([small, big])).rejects.toThrow(ValueTooLargeError)
    expect(store.stats().map((s) => s.setRequests)).toEqual(before.map((s) => s.setRequests))
    expect(await store.get(ConformanceUser, { id: 20 })).toBeUndefined()
  })

  it('names every value it refused as too large by its position (ValueTooLargeError.failed), writing none of the batch', async () => {
    const { store } = make({ maxValueBytes: 2000 })
    const users = Array.from({ length: 6 }, (_, i) => Object.assign(makeUser(60 + i), { avatar: Buffer.alloc(i % 3 === 1 ? 5000 : 10) }))
    const err = await store.batchPut(users).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ValueTooLargeError)
    expect((err as ValueTooLargeError).failed).toEqual([1, 4])
    expect((err as Error).message).toMatch(/ConformanceUser\|id=n61.*and 1 more/)
    expect(await store.batchGet(ConformanceUser, [{ id: 60 }, { id: 62 }])).toEqual([undefined, undefined])
  })

  it("a chain's batchGet backfills every object but the one too large for memcached, and reports only that one", async () => {
    const { store } = make({ maxValueBytes: 2000 })
    const db = new ProcessMemoryStore({ name: 'db' })
    const chain = new ChainedStore([store, db])
    const users = Array.from({ length: 10 }, (_, i) => Object.assign(makeUser(70 + i), { avatar: Buffer.alloc(i === 4 ? 5000 : 10) }))
    await db.batchPut(users)
    const errors: string[] = []
    chain.events.on('cacheError', (e: CacheErrorEvent) => errors.push(`${e.operation}:${(e.error as Error).name}`))
    const ids = users.map((u) => ({ id: u.id }))
    expect(await chain.batchGet(ConformanceUser, ids)).toEqual(users)
    expect(errors).toEqual(['backfill:ValueTooLargeError'])
    expect((await store.batchGet(ConformanceUser, ids)).map((u) => u?.id)).toEqual(users.map((u, i) => (i === 4 ? undefined : u.id)))
    expect(chain.stats()[0]).toMatchObject({ backfills: 9, skipped: 0, pendingRepairs: 0 })
    // the next read is answered by memcached but for the one it cannot hold
    expect(await chain.batchGet(ConformanceUser, ids)).toEqual(users)
    expect(chain.stats().map((s) => s.hits)).toEqual([9, 11])
    await chain.close()
  })

  it("a chain's batchPut of one object twice, both copies too large for memcached: one refusal, reported once, and no copy left", async () => {
    const { store } = make({ maxValueBytes: 2000 })
    const db = new ProcessMemoryStore({ name: 'db' })
    const chain = new ChainedStore([store, db])
    await chain.put(Object.assign(makeUser(90), { name: 'v1' }))
    const errors: string[] = []
    chain.events.on('cacheError', (e: CacheErrorEvent) => errors.push(`${e.operation}:${(e.error as Error).name}`))
    // (a database writes what it stored back onto earlier copies: here both copies are too large)
    const earlier = Object.assign(makeUser(90), { name: 'v2', email: 'earlier-90@example.com', avatar: Buffer.alloc(5000) })
    const big = Object.assign(makeUser(90), { name: 'v3', avatar: Buffer.alloc(5000) })
    await chain.batchPut([earlier, big, makeUser(91)])
    expect(errors).toEqual(['put:ValueTooLargeError'])
    expect((await store.batchGet(ConformanceUser, [{ id: 90 }, { id: 91 }])).map((u) => u?.id)).toEqual([undefined, 91])
    expect(await chain.get(ConformanceUser, { id: 90 })).toEqual(big)
    await chain.close()
  })

  it("a chain's batchPut writes every object but the one too large for memcached, whose old copy is gone under every key", async () => {
    const { store } = make({ maxValueBytes: 2000 })
    const db = new ProcessMemoryStore({ name: 'db' })
    const chain = new ChainedStore([store, db])
    const v1 = Array.from({ length: 10 }, (_, i) => Object.assign(makeUser(80 + i), { name: 'v1' }))
    await chain.batchPut(v1)
    const v2 = v1.map((u, i) => Object.assign(makeUser(u.id), { name: 'v2', avatar: Buffer.alloc(i === 4 ? 5000 : 10) }))
    const errors: string[] = []
    chain.events.on('cacheError', (e: CacheErrorEvent) => errors.push(`${e.operation}:${(e.error as Error).name}`))
    await chain.batchPut(v2)
    expect(errors).toEqual(['put:ValueTooLargeError'])
    const cached = await store.batchGet(ConformanceUser, [...v2.map((u) => ({ id: u.id })), { email: (v2[4] as ConformanceUser).email }])
    expect(cached.map((u) => u?.name)).toEqual([...v2.map((_, i) => (i === 4 ? undefined : 'v2')), undefined])
    expect(
      await db.batchGet(
        ConformanceUser,
        v2.map((u) => ({ id: u.id })),
      ),
    ).toEqual(v2)
    expect(
      await chain.batchGet(
        ConformanceUser,
        v2.map((u) => ({ id: u.id })),
      ),
    ).toEqual(v2)
    // under onCacheError: 'throw' the put rejects with the refusal, after the same writes
    const strict = new ChainedStore([store, db], { onCacheError: 'throw' })
    const v3 = v2.map((u) => Object.assign(makeUser(u.id), { name: 'v3', avatar: u.avatar }))
    await expect(strict.batchPut(v3)).rejects.toThrow(ValueTooLargeError)
    expect(
      (
        await store.batchGet(
          ConformanceUser,
          v3.map((u) => ({ id: u.id })),
        )
      ).map((u) => u?.name),
    ).toEqual(v3.map((_, i) => (i === 4 ? undefined : 'v3')))
    await chain.close()
    await strict.close()
  })

  it('stores a value of the default maxValueBytes under a 250-byte key on a server started with -I 1m', async () => {
    const b = backend()
    const key = `${uniquePrefix()}:${'k'.repeat(230)}`.slice(0, 250).padEnd(250, 'k')
    const value = Buffer.alloc(DEFAULT_MEMCACHE_MAX_VALUE_BYTES, 7)
    await b.setMany([{ key, value, expiresAt: Date.now() + 60_000 }])
    const [got] = await b.getMany([key])
    expect(Buffer.from(got as Uint8Array).equals(value)).toBe(true)
    await expect(b.setMany([{ key, value: Buffer.alloc(DEFAULT_MEMCACHE_MAX_VALUE_BYTES + 1), expiresAt: undefined }])).rejects.toThrow(
      ValueTooLargeError,
    )
  })

  for (const [label, options] of [
    ['over maxValueBytes (refused before sending)', { maxValueBytes: 2000 }],
    ["over the server's item size (refused by memcached)", { maxValueBytes: 4 * 1024 * 1024 }],
  ] as const) {
    it(`a chain's put of a value ${label}: the database takes it, no old copy is left in memcached, memory holds the new one`, async () => {
      const { store } = make(options)
      const memory = new ProcessMemoryStore()
      const db = new ProcessMemoryStore({ name: 'db' })
      const chain = new ChainedStore([memory, store, db])
      const v1 = makeUser(22)
      await chain.put(v1)
      expect(await store.get(ConformanceUser, { id: 22 })).toEqual(v1)
      const v2 = Object.assign(makeUser(22), { avatar: Buffer.alloc(options.maxValueBytes === 2000 ? 5000 : 2 * 1024 * 1024, 3) })
      const errors: string[] = []
      chain.events.on('cacheError', (e: CacheErrorEvent) => errors.push(`${e.operation}:${(e.error as Error).name}`))
      await chain.put(v2)
      expect(errors).toEqual(['put:ValueTooLargeError'])
      // (megabyte buffers compared with Buffer.equals: a deep equality walks them byte by byte for seconds)
      const same = (got: ConformanceUser | undefined) => {
        const { avatar, ...rest } = got ?? ({} as ConformanceUser)
        const { avatar: wanted, ...wantedRest } = v2
        expect(rest).toEqual(wantedRest)
        expect(Buffer.from(avatar as Uint8Array).equals(Buffer.from(wanted as Uint8Array))).toBe(true)
      }
      same(await db.get(ConformanceUser, { id: 22 }))
      expect(await store.get(ConformanceUser, { id: 22 })).toBeUndefined()
      same(await memory.get(ConformanceUser, { id: 22 }))
      // another process (no memory layer) reads the database's value
      same(await new ChainedStore([store, db]).get(ConformanceUser, { id: 22 }))
      await chain.close()
    })
  }

  it("values every server of a pool refuses as too large: ValueTooLargeError (not an unavailable pool), and a chain's circuit stays closed", async () => {
    const { store, prefix } = make({ maxValueBytes: 4 * 1024 * 1024 })
    const big = (id: number) => Object.assign(makeUser(id), { avatar: Buffer.alloc(2 * 1024 * 1024, 1) })
    const ids = Array.from({ length: 12 }, (_, i) => 40 + i)
    expect(new Set(ids.map((id) => store.backend.serverFor(userKey(prefix, id)))).size).toBeGreaterThan(1)
    const err = await store.batchPut(ids.map(big)).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ValueTooLargeError)
    const db = new ProcessMemoryStore({ name: 'db' })
    const chain = new ChainedStore([store, db])
    const errors: string[] = []
    chain.events.on('cacheError', (e: CacheErrorEvent) => errors.push(`${e.operation}:${(e.error as Error).name}`))
    await chain.batchPut(ids.map(big))
    expect(errors).toEqual(['put:ValueTooLargeError'])
    expect(chain.stats()[0]).toMatchObject({ skipped: 0, pendingRepairs: 0 })
    const got = await chain.get(ConformanceUser, { id: 40 })
    expect(got?.id).toBe(40)
    expect(Buffer.from(got?.avatar as Uint8Array).equals(Buffer.from(big(40).avatar as Uint8Array))).toBe(true)
    await chain.close()
  })

  it("maps the server's own too-large refusal to ValueTooLargeError and keeps the connection usable", async () => {
    const b = backend({ maxValueBytes: 4 * 1024 * 1024 })
    const prefix = uniquePrefix()
    const key = `${prefix}:huge`
    await b.setMany([{ key, value: Buffer.from('old'), expiresAt: undefined }])
    await expect(b.setMany([{ key, value: Buffer.alloc(2 * 1024 * 1024, 1), expiresAt: undefined }])).rejects.toThrow(ValueTooLargeError)
    // memcached drops the old value on a failed set; either way the old bytes are never served again
    const [after] = await b.getMany([key])
    expect(after).toBeUndefined()
    await b.setMany([{ key: `${prefix}:next`, value: Buffer.from('ok'), expiresAt: undefined }])
    expect(Buffer.from((await b.getMany([`${prefix}:next`]))[0] as Uint8Array).toString()).toBe('ok')
  })

  it('reads what other clients stored under any flags as its bytes, in the same multi-get as its own values, never failing or marking the server', async () => {
    const b = backend({ servers: servers.slice(0, 1) })
    const prefix = uniquePrefix()
    // the flags other clients write: memcache-client's JSON (2), numbers (4) and compression (1), also
    // python-memcached's and pylibmc's pickles (1) and PHP's longs (1): none is decoded by them
    const foreign: [number, string][] = [
      [0, 'plain'],
      [1, 'pickle'],
      [2, 'notjson'],
      [2, '{"a":1}'],
      [3, 'zstd?'],
      [4, 'NaN!'],
      [8, 'binary'],
      [16, 'other'],
    ]
    for (const [i, [flags, body]] of foreign.entries())
      expect(await ask(servers[0] as string, `set ${prefix}:f${i} ${flags} 0 ${body.length}\r\n${body}\r\n`)).toBe('STORED\r\n')
    await b.setMany([{ key: `${prefix}:mine`, value: Buffer.from('ok'), expiresAt: undefined }])
    const keys = [...foreign.map((_, i) => `${prefix}:f${i}`), `${prefix}:mine`]
    const text = (values: (Uint8Array | undefined)[]) => values.map((v) => (v === undefined ? v : Buffer.from(v).toString()))
    expect(text(await b.getMany(keys))).toEqual([...foreign.map(([, body]) => body), 'ok'])
    expect(text(await b.getMany([`${prefix}:f2`]))).toEqual(['notjson'])
    expect(b.stats()[0]).toMatchObject({ getRequests: 2, hits: keys.length + 1, errors: 0, down: false })
  })

  for (const [pool, flags] of [
    ['3 servers', 2],
    ['1 server', 1],
  ] as const) {
    it(`a value another client stored under the prefix with flags ${flags} (${pool}): a CorruptEntryError for its key alone, replaced by a tombstone, read from below and backfilled once the tombstone ends; the server's other keys are served and the circuit stays closed`, async () => {
      const clock = new ManualClock(Date.now())
      const { store, prefix } = make({ servers: pool === '1 server' ? servers.slice(0, 1) : servers, clock, tombstoneLifetime: 1 })
      const db = new ProcessMemoryStore({ name: 'db', clock })
      const chain = new ChainedStore([store, db], { clock })
      const users = Array.from({ length: 12 }, (_, i) => makeUser(500 + i))
      const ids = users.map((u) => ({ id: u.id }))
      await chain.batchPut(users)
      const poisoned = userKey(prefix, 500)
      const server = store.backend.serverFor(poisoned)
      const neighbours = users.filter((u) => u.id !== 500 && store.backend.serverFor(userKey(prefix, u.id)) === server)
      expect(neighbours.length).toBeGreaterThan(0)
      expect(await ask(server, `set ${poisoned} ${flags} 0 7\r\nnotjson\r\n`)).toBe('STORED\r\n')
      // the store alone: the poisoned key fails alone, its neighbours on that server are read
      const neighbour = neighbours[0] as ConformanceUser
      expect(await store.get(ConformanceUser, { id: neighbour.id })).toEqual(neighbour)
      expect(await ask(server, `set ${poisoned} ${flags} 0 7\r\nnotjson\r\n`)).toBe('STORED\r\n')
      const err = await store.batchGet(ConformanceUser, ids).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(CorruptEntryError)
      expect((err as Error).message).toContain(poisoned)
      expect(store.stats().reduce((n, s) => n + s.errors, 0)).toBe(0)
      // in a chain: reported once, answered from below; the key holds a tombstone (as after a delete), which
      // refuses the chain's backfill until it ends
      expect(await ask(server, `set ${poisoned} ${flags} 0 7\r\nnotjson\r\n`)).toBe('STORED\r\n')
      const errors: string[] = []
      chain.events.on('cacheError', (e: CacheErrorEvent) => errors.push(`${e.operation}:${(e.error as Error).name}`))
      expect(await chain.batchGet(ConformanceUser, ids)).toEqual(users)
      expect(errors).toEqual(['get:CorruptEntryError'])
      const [held] = await store.backend.getMany([poisoned])
      expect(held !== undefined && envelopeKind(held) === KIND_TOMBSTONE).toBe(true)
      expect(await store.get(ConformanceUser, { id: 500 })).toBeUndefined()
      // the next read of a healthy key is sent to memcached: the circuit did not open
      const before = store.stats().reduce((n, s) => n + s.getRequests, 0)
      expect(await chain.get(ConformanceUser, { id: neighbour.id })).toEqual(neighbour)
      expect(store.stats().reduce((n, s) => n + s.getRequests, 0)).toBe(before + 1)
      expect(chain.stats()[0]).toMatchObject({ skipped: 0 })
      clock.advance(1_000) // the tombstone has ended (by the store's clock): the next read refills the key
      expect(await chain.batchGet(ConformanceUser, ids)).toEqual(users)
      expect(await store.batchGet(ConformanceUser, ids)).toEqual(users)
      expect(errors).toEqual(['get:CorruptEntryError'])
      expect(store.stats().reduce((n, s) => n + s.errors, 0)).toBe(0)
      await chain.close()
    })
  }

  it("keeps each lease on its record's server: acquired, held, taken over and released there, nowhere else", async () => {
    const clock = new ManualClock(Date.UTC(2030, 0, 1))
    const { store, prefix } = make({ clock })
    const other = make({ prefix, clock }).store
    const ids = Array.from({ length: 60 }, (_, i) => 700 + i)
    const lookups = ids.map((id) => ({ id }))
    const leaseKey = (id: number) => `${prefix}:lease:ConformanceUser|id=n${id}`
    const owner = (id: number) => store.backend.serverFor(userKey(prefix, id))
    // hashed by itself, a lease key would land on another server than its record for most ids
    expect(ids.filter((id) => store.backend.serverFor(leaseKey(id)) !== owner(id)).length).toBeGreaterThan(20)
    const placed = async () => {
      const where: string[] = []
      for (const id of ids) {
        for (const server of servers) if ((await remainingSeconds(server, leaseKey(id))) !== undefined) where.push(`${id}@${server}`)
      }
      return where
    }
    expect(await store.acquireLeases(ConformanceUser, lookups, 5000)).toEqual(ids.map(() => true))
    expect(await placed()).toEqual(ids.map((id) => `${id}@${owner(id)}`))
    expect(await other.acquireLeases(ConformanceUser, lookups, 5000)).toEqual(ids.map(() => false))
    expect(await other.leasesHeld(ConformanceUser, lookups)).toEqual(ids.map(() => true))
    // past its ttl a lease still on the server is taken over (gets + cas on the record's server)
    clock.advance(5001)
    expect(await other.leasesHeld(ConformanceUser, lookups)).toEqual(ids.map(() => false))
    expect(await other.acquireLeases(ConformanceUser, lookups, 5000)).toEqual(ids.map(() => true))
    expect(await placed()).toEqual(ids.map((id) => `${id}@${owner(id)}`))
    expect(await store.leasesHeld(ConformanceUser, lookups)).toEqual(ids.map(() => true))
    await other.releaseLeases(ConformanceUser, lookups)
    expect(await placed()).toEqual([])
    expect(await store.leasesHeld(ConformanceUser, lookups)).toEqual(ids.map(() => false))
  })

  it("places an entry with a routeKey on the route key's server, reads and deletes it there by routeKeys, and names those positions when that server fails", async () => {
    const dead = '127.0.0.1:1' // nothing listens there
    const b = backend({ servers: [servers[0] as string, servers[1] as string, dead], retryDelay: 60_000, onError: () => {} })
    const prefix = uniquePrefix()
    const routes = Array.from({ length: 40 }, (_, i) => `${prefix}:record${i}`)
    const keys = routes.map((_, i) => `${prefix}:lease:record${i}`)
    const onDead = routes.flatMap((route, i) => (b.serverFor(route) === dead ? [i] : []))
    expect(onDead.length).toBeGreaterThan(3)
    expect(keys.filter((key, i) => b.serverFor(key) !== b.serverFor(routes[i] as string)).length).toBeGreaterThan(10)
    const entries = keys.map((key, i) => ({ key, value: Buffer.from(`l${i}`), expiresAt: undefined, routeKey: routes[i] }))
    const added = await b.addMany(entries).catch((e: unknown) => e)
    expect(added).toBeInstanceOf(PartialFailureError)
    expect((added as PartialFailureError).failed).toEqual(onDead)
    for (const [i, key] of keys.entries()) {
      const server = b.serverFor(routes[i] as string)
      if (server !== dead) expect(await remainingSeconds(server, key)).toBe(-1)
    }
    const read = await b.getMany(keys, { routeKeys: routes, partial: true }).catch((e: unknown) => e)
    expect((read as PartialFailureError).failed).toEqual(onDead)
    const values = (read as PartialFailureError).results as (Uint8Array | undefined)[]
    expect(values.map((v) => (v === undefined ? undefined : Buffer.from(v).toString()))).toEqual(
      keys.map((_, i) => (onDead.includes(i) ? undefined : `l${i}`)),
    )
    const deleted = await b.deleteMany(keys, { routeKeys: routes }).catch((e: unknown) => e)
    expect((deleted as PartialFailureError).failed).toEqual(onDead)
    const live = keys.flatMap((key, i) => (onDead.includes(i) ? [] : [{ key, route: routes[i] as string }]))
    expect(
      await b.getMany(
        live.map((l) => l.key),
        { routeKeys: live.map((l) => l.route) },
      ),
    ).toEqual(live.map(() => undefined))
  })

  it('isolates prefixes on the same servers', async () => {
    const a = make().store
    const b = make().store
    const user = makeUser(30)
    await a.put(user)
    expect(await b.get(ConformanceUser, { id: 30 })).toBeUndefined()
    expect(await b.get(ConformanceUser, { email: user.email })).toBeUndefined()
    await b.delete(user)
    expect(await a.get(ConformanceUser, { email: user.email })).toEqual(user)
  })
})
