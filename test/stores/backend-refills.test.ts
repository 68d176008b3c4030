import { MemcacheClient, type MultiCasRetrievalResponse } from 'memcache-client'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import type { KeyValueBackend } from '../../src/contracts/key-value-backend.js'
import { KeyValueStore } from '../../src/contracts/key-value-store.js'
import { encodeAlias, encodeRecord, encodeTombstone } from '../../src/core/codec.js'
import { canonicalKey } from '../../src/index.js'
import { addOnServer, NodeSetEntry } from '../../src/stores/memcache/memcache-node-refill.js'
import { RawMemcacheClient } from '../../src/stores/memcache/raw-memcache-client.js'
import { ConformanceUser, MapBackend, makeUser } from '../../src/testing/index.js'
import { selectedStores } from '../harness/servers.js'
import { type BackendTarget, serverTargets } from './backend-targets.js'

/**
 * `refillMany`: a backfill lands where the key holds nothing, an expired record kept only for stale
 * reads (or, on memcached, kept past its expiry by the rounding of `exptime`) or a tombstone (or lease)
 * whose expiry has passed, and nowhere else — checked and written in one step per key.
 */

canonicalKey(ConformanceUser, { id: 1 }) // registers the model: records can be encoded
let prefixes = 0
const uniquePrefix = (): string => `rf${process.pid}x${++prefixes}`

/** A backend with `refillMany` on a real server (or the in-process reference). */
type Target = BackendTarget<KeyValueBackend & Required<Pick<KeyValueBackend, 'refillMany'>>>

const targets = [['MapBackend', () => ({ backend: new MapBackend(), close: async () => {} })], ...serverTargets()] as [
  string,
  () => Target,
][]

describe.each(targets)('%s: refillMany, one atomic step per key', (_name, make) => {
  let target: Target
  beforeAll(() => {
    target = make()
  })
  afterAll(async () => {
    await target.close()
  })

  /** One key per thing a key can hold (spread over the servers, or hash slots, by their names), each kept a minute by the server. */
  async function holding(prefix: string, now: number) {
    const k = (s: string): string => `${prefix}:${s}`
    const kept = now + 60_000
    const written: Record<string, Uint8Array> = {
      expired: encodeRecord(makeUser(1), now - 1_000),
      justExpired: encodeRecord(makeUser(1), now),
      live: encodeRecord(makeUser(1), now + 1),
      forever: encodeRecord(makeUser(1), undefined),
      alias: encodeAlias(k('live'), now - 1_000),
      tombstone: encodeTombstone(now + 50_000),
      oldTombstone: encodeTombstone(now - 1_000),
      tombstoneJustExpired: encodeTombstone(now),
      foreign: Buffer.from('not an envelope'),
    }
    await target.backend.setMany(Object.entries(written).map(([name, value]) => ({ key: k(name), value, expiresAt: kept })))
    if (target.unreadable !== undefined) await target.unreadable(k('unreadable'))
    return { k, written }
  }

  it('stores over nothing and over a record or tombstone expired by expiredBy; never over a live or never-expiring record, an alias, a live tombstone, foreign or unreadable bytes', async () => {
    const now = Date.now()
    const { k, written } = await holding(uniquePrefix(), now)
    const names = ['nothing', 'expired', 'justExpired', ...Object.keys(written).slice(2), ...(target.unreadable ? ['unreadable'] : [])]
    const fresh = encodeRecord(makeUser(2), now + 5_000)
    const stored = await target.backend.refillMany(
      names.map((name) => ({ key: k(name), value: fresh, expiresAt: now + 5_000 })),
      now,
    )
    expect(Object.fromEntries(names.map((name, i) => [name, stored[i]]))).toEqual({
      nothing: true,
      expired: true,
      justExpired: true,
      live: false,
      forever: false,
      alias: false,
      tombstone: false,
      oldTombstone: true,
      tombstoneJustExpired: true,
      foreign: false,
      ...(target.unreadable ? { unreadable: false } : {}),
    })
    const readable = names.filter((name) => name !== 'unreadable')
    const held = await target.backend.getMany(readable.map(k))
    const expected = (name: string) => (stored[names.indexOf(name)] ? fresh : written[name])
    for (const [i, name] of readable.entries())
      expect(Buffer.from(held[i] as Uint8Array).equals(Buffer.from(expected(name) as Uint8Array)), name).toBe(true)
    if (target.pttl !== undefined) {
      // the refilled copy lives as long as the backfill says, not as long as the expired copy was kept
      for (const name of ['nothing', 'expired']) {
        expect(await target.pttl(k(name))).toBeGreaterThan(3_000)
        expect(await target.pttl(k(name))).toBeLessThanOrEqual(5_000)
      }
      expect(await target.pttl(k('live'))).toBeGreaterThan(50_000)
    }
    await target.backend.deleteMany([...names.map(k)])
  })

  it('of entries repeating a key only the first is stored, over an expired record too; an empty batch stores nothing', async () => {
    const now = Date.now()
    const { k } = await holding(uniquePrefix(), now)
    const [first, second] = [encodeRecord(makeUser(3), now + 5_000), encodeRecord(makeUser(4), now + 5_000)]
    for (const name of ['nothing', 'expired']) {
      const stored = await target.backend.refillMany(
        [
          { key: k(name), value: first, expiresAt: now + 5_000 },
          { key: k(name), value: second, expiresAt: now + 5_000 },
        ],
        now,
      )
      expect(stored, name).toEqual([true, false])
      const [held] = await target.backend.getMany([k(name)])
      expect(Buffer.from(held as Uint8Array).equals(first), name).toBe(true)
    }
    expect(await target.backend.refillMany([], now)).toEqual([])
    await target.backend.deleteMany(
      [
        'nothing',
        'expired',
        'justExpired',
        'live',
        'forever',
        'alias',
        'tombstone',
        'oldTombstone',
        'tombstoneJustExpired',
        'foreign',
        'unreadable',
      ].map(k),
    )
  })
})

describe.runIf(selectedStores().has('memcached'))(
  'memcached refill (add, gets, cas): a write of another client between the read and the write',
  () => {
    let client: RawMemcacheClient
    let other: MemcacheClient
    /** Runs once, right after the next `gets` of `racing` has read. */
    let between: (() => Promise<unknown>) | undefined
    let racing: RawMemcacheClient
    const expiredBy = Date.now()
    beforeAll(() => {
      const server = inject('memcachedServers')[0] as string
      client = new RawMemcacheClient({ server: { server, maxConnections: 1 } })
      other = new MemcacheClient({ server: { server, maxConnections: 1 } })
      racing = new Proxy(client, {
        get(target, property) {
          if (property === 'gets') {
            return async (keys: string[]) => {
              const found = await target.gets<MultiCasRetrievalResponse<unknown>>(keys)
              const run = between
              between = undefined
              await run?.()
              return found
            }
          }
          const value = Reflect.get(target, property)
          return typeof value === 'function' ? value.bind(target) : value
        },
      })
    })
    afterAll(() => {
      client.shutdown()
      other.shutdown()
    })

    const expired = encodeRecord(makeUser(5), expiredBy - 1_000)
    const fresh = encodeRecord(makeUser(6), expiredBy + 60_000)
    const replaceable = (held: Buffer) => held[1] === 1 && held.readDoubleBE(2) !== 0 && held.readDoubleBE(2) <= expiredBy
    const refill = (key: string) => addOnServer(racing, [new NodeSetEntry(key, fresh, 60)], replaceable)
    const held = async (key: string): Promise<Buffer | undefined> => (await client.get<Buffer>(key))?.value

    it('a put that lands between the read and the compare-and-swap is kept (the cas fails, and the key then holds a live copy)', async () => {
      const key = `${uniquePrefix()}:put`
      const put = encodeRecord(makeUser(7), expiredBy + 60_000)
      await client.set(key, expired, { lifetime: 60 })
      between = () => other.set(key, put, { lifetime: 60 })
      expect(await refill(key)).toEqual([false])
      expect(between).toBeUndefined()
      expect((await held(key))?.equals(put)).toBe(true)
    })

    it('a tombstone that lands between the read and the compare-and-swap is kept', async () => {
      const key = `${uniquePrefix()}:tombstone`
      const tombstone = encodeTombstone(expiredBy + 60_000)
      await client.set(key, expired, { lifetime: 60 })
      between = () => other.set(key, tombstone, { lifetime: 60 })
      expect(await refill(key)).toEqual([false])
      expect((await held(key))?.equals(tombstone)).toBe(true)
    })

    it('a key emptied between the read and the write is added to; one that got another expired copy is read again and replaced', async () => {
      const gone = `${uniquePrefix()}:gone`
      await client.set(gone, expired, { lifetime: 60 })
      between = () => other.delete(gone)
      expect(await refill(gone)).toEqual([true])
      expect((await held(gone))?.equals(fresh)).toBe(true)
      const changed = `${uniquePrefix()}:changed`
      await client.set(changed, expired, { lifetime: 60 })
      between = () => other.set(changed, encodeRecord(makeUser(8), expiredBy - 500), { lifetime: 60 })
      expect(await refill(changed)).toEqual([true])
      expect((await held(changed))?.equals(fresh)).toBe(true)
    })
  },
)

/**
 * An invalidation by an alternate key ({ email }, { orgId, slug }) of an object the cache does not hold
 * tombstones only that key: a backfill of a copy read before the change must not land over it, neither
 * its record (an empty key) nor its aliases (found by review, KVA-1).
 */
describe.each(targets)('%s: a backfill refused by its alias keys', (_name, make) => {
  let target: Target
  beforeAll(() => {
    target = make()
  })
  afterAll(async () => {
    await target.close()
  })
  const old = () => new ConformanceUser(1, 'ada@x', 1, 'ada')
  /** Two stores (two processes) over one backend (the second over `second`, default the same); never closed here (the backend is shared). */
  function stores(second: KeyValueBackend = target.backend) {
    const prefix = uniquePrefix()
    return [new KeyValueStore(target.backend, { prefix, lifetime: 300 }), new KeyValueStore(second, { prefix, lifetime: 300 })]
  }
  const backfill = (store: KeyValueStore, ...users: ConformanceUser[]) =>
    store.batchPutEntries(
      users.map((value) => ({ value, expiresAt: Date.now() + 300_000 })),
      { backfill: true },
    )
  const read = async (store: KeyValueStore) => [
    (await store.get(ConformanceUser, { id: 1 }))?.email,
    (await store.get(ConformanceUser, { email: 'ada@x' }))?.id,
    (await store.get(ConformanceUser, { orgId: 1, slug: 'ada' }))?.id,
  ]

  it.each([
    ['email', [{ email: 'ada@x' }]],
    ['composite', [{ orgId: 1, slug: 'ada' }]],
    ['moved (both emails the change touched)', [{ email: 'ada@x' }, { email: 'z@x' }]],
    ['id (control)', [{ id: 1 }]],
  ] as const)('invalidated by %s while nothing was cached: the old copy is not backfilled, by any key', async (_case, lookups) => {
    const [a, b] = stores() as [KeyValueStore, KeyValueStore]
    await a.batchInvalidate(ConformanceUser, lookups)
    await backfill(b, old())
    expect(await read(a)).toEqual([undefined, undefined, undefined])
  })

  it('an alias key left pointing to another record (its object took another email, or was deleted) does not keep a new owner of that email out', async () => {
    const [a, b] = stores() as [KeyValueStore, KeyValueStore]
    // Bob had ada@x, then took bob@x: ada@x still points to Bob's record (nothing cleans it up)
    await a.put(new ConformanceUser(2, 'ada@x', 2, 'bob'))
    await a.put(new ConformanceUser(2, 'bob@x', 2, 'bob'))
    await backfill(b, old())
    expect(await read(a)).toEqual(['ada@x', 1, 1])
    // Cy had cy@x and was deleted: the alias stays, pointing to a tombstone
    await a.put(new ConformanceUser(3, 'cy@x', 3, 'cy'))
    await a.delete(new ConformanceUser(3, 'cy@x', 3, 'cy'))
    await backfill(b, new ConformanceUser(4, 'cy@x', 4, 'dee'))
    expect((await a.get(ConformanceUser, { email: 'cy@x' }))?.id).toBe(4)
  })

  it.each([
    ['alias read', ['getMany']],
    ['record add', ['addMany', 'refillMany']],
  ] as const)(
    "without addWithAliases: an invalidation by email that lands right after the backfill's %s is not undone (its record is fenced)",
    async (_step, calls) => {
      if (target.backend.addWithAliases !== undefined) return // one script step on the server: nothing lands between
      let between: (() => Promise<unknown>) | undefined
      const racing = new Proxy(target.backend, {
        get(on, property) {
          const value = Reflect.get(on, property)
          if (typeof value !== 'function') return value
          if (!(calls as readonly unknown[]).includes(property)) return value.bind(on)
          return async (...args: unknown[]) => {
            const result = await value.apply(on, args)
            const run = between
            between = undefined
            await run?.()
            return result
          }
        },
      })
      const [a, b] = stores(racing) as [KeyValueStore, KeyValueStore]
      between = () => a.batchInvalidate(ConformanceUser, [{ email: 'ada@x' }])
      await backfill(b, old())
      expect(between).toBeUndefined()
      expect(await read(a)).toEqual([undefined, undefined, undefined])
    },
  )

  it('a backfill lands where its alias keys hold nothing or an alias to its own record', async () => {
    const [a, b] = stores() as [KeyValueStore, KeyValueStore]
    await backfill(b, old(), new ConformanceUser(3, 'cy@x', 1, 'cy'))
    expect(await read(a)).toEqual(['ada@x', 1, 1])
    // the record is invalidated by id: its aliases stay, pointing to it
    await a.batchInvalidate(ConformanceUser, [{ id: 1 }], { changedAt: Date.now() - 3_600_000 })
    expect(await read(a)).toEqual([undefined, undefined, undefined])
    await backfill(b, old())
    expect(await read(a)).toEqual(['ada@x', 1, 1])
    expect((await a.get(ConformanceUser, { email: 'cy@x' }))?.id).toBe(3)
  })
})
