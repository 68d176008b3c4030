import { describe, expect, inject, it } from 'vitest'
import { ChainedStore, type DecoratedOperation, KeyValueStore, ProcessMemoryStore, type Store, StoreDecorator } from '../../src/index.js'
import { MemcacheStore } from '../../src/stores/memcache/index.js'
import { RedisStore } from '../../src/stores/redis/index.js'
import { ConformanceUser, FaultStore, ManualClock, MapBackend, makeUser } from '../../src/testing/index.js'
import { closedAfterEach } from '../harness/closed-after-each.js'
import { selectedStores } from '../harness/servers.js'

/**
 * A cache layer with a `grace` keeps each expired copy for stale reads (`serveStale`). A chain's
 * backfill must still refill the layer once the copy expired — landing over that expired copy, and
 * never over a live copy or a tombstone, whoever wrote it in between — or every read goes to the
 * database for the whole grace, and leases stop sparing it.
 *
 * memcached keeps every entry a second or two past its envelope's expiry (its `exptime` is rounded up
 * to whole seconds, plus one): without a grace too, a backfill must land over such a copy, or over a
 * tombstone that expired by its envelope, as it would over the nothing Redis then holds.
 */

const stores = selectedStores()
let prefixes = 0
const uniquePrefix = (): string => `gb${process.pid}x${++prefixes}`

/** Cache options of every layer: copies live 10 s and are kept an hour more for stale reads. */
const GRACE = { lifetime: 10, grace: 3600 }

/** Makes cache layers sharing one server (one Map) on `clock`, as processes sharing it would. */
type Shared = (clock: ManualClock) => (prefix: string) => Store

/** The shared cache layers of every selected store, each made with cache options `options`. */
function sharedLayers(options: object): [string, Shared][] {
  const out: [string, Shared][] = [
    [
      'KeyValueStore(MapBackend)',
      (clock) => {
        const backend = new MapBackend(() => clock.now())
        return (prefix) => new KeyValueStore(backend, { ...options, prefix, clock })
      },
    ],
  ]
  if (stores.has('redis')) {
    out.push(['RedisStore (single node)', (clock) => (prefix) => new RedisStore({ ...options, url: inject('redis').url, prefix, clock })])
  }
  if (stores.has('redis-cluster')) {
    out.push([
      'RedisStore (cluster)',
      (clock) => (prefix) => new RedisStore({ ...options, cluster: inject('redisCluster'), prefix, clock }),
    ])
  }
  if (stores.has('memcached')) {
    out.push([
      'MemcacheStore (3 servers)',
      (clock) => (prefix) => new MemcacheStore({ ...options, servers: inject('memcachedServers'), prefix, clock }),
    ])
  }
  return out
}

const targets = sharedLayers(GRACE)

/** A database whose reads, once {@link holdNextRead} was called, finish and then wait to be released. */
class HoldAfterRead extends StoreDecorator {
  #hold: Promise<void> | undefined
  #read: (() => void) | undefined
  /** Resolves once the held read has read; `release` lets it return. */
  holdNextRead(): { read: Promise<void>; release: () => void } {
    let release = (): void => {}
    this.#hold = new Promise((resolve) => {
      release = resolve
    })
    const read = new Promise<void>((resolve) => {
      this.#read = resolve
    })
    return { read, release }
  }
  protected override async around<T>(operation: DecoratedOperation, _args: readonly unknown[], call: () => Promise<T>): Promise<T> {
    const result = await call()
    const hold = operation === 'get' || operation === 'batchGetEntries' ? this.#hold : undefined
    if (hold !== undefined) {
      this.#hold = undefined
      this.#read?.()
      await hold
    }
    return result
  }
}

describe.each(targets)('%s with a grace, in a chain', (_name, shared) => {
  const track = closedAfterEach()

  it('after its copy expired (kept for grace), one get reads the database and refills the layer; the next gets hit it', async () => {
    const clock = new ManualClock()
    const layer = shared(clock)
    const prefix = uniquePrefix()
    const cache = layer(prefix)
    const db = new FaultStore(new ProcessMemoryStore({ clock }))
    const chain = track(new ChainedStore([cache, db], { clock, serveStale: true }))
    const user = makeUser(1)
    await chain.put(user)
    clock.advance(11_000)
    expect(await cache.get(ConformanceUser, { id: 1 })).toBeUndefined() // expired, kept for stale reads
    const before = db.calls.get
    for (let i = 0; i < 5; i++) expect(await chain.get(ConformanceUser, i % 2 === 0 ? { id: 1 } : { email: user.email })).toEqual(user)
    expect(db.calls.get - before, 'database reads for 5 gets after the copy expired').toBe(1)
    expect(chain.stats()[0]?.backfills).toBe(1)
    const other = track(layer(prefix)) // what another process reads from the shared layer
    expect(await other.get(ConformanceUser, { id: 1 })).toEqual(user)
    expect(await other.get(ConformanceUser, { email: user.email })).toEqual(user)
    // the refilled copy expires in its turn and is kept for stale reads like the first one
    clock.advance(11_000)
    db.fail('get')
    expect(await chain.get(ConformanceUser, { id: 1 })).toEqual(user)
  })

  it('with leases, four processes whose shared copy expired read the database once between them', async () => {
    const clock = new ManualClock()
    const layer = shared(clock)
    const prefix = uniquePrefix()
    const db = new FaultStore(new ProcessMemoryStore({ clock }))
    const chains = Array.from({ length: 4 }, () =>
      track(new ChainedStore([new ProcessMemoryStore({ clock, lifetime: 10 }), layer(prefix), db], { clock, leases: { wait: 1000 } })),
    )
    const user = makeUser(2)
    await (chains[0] as ChainedStore).put(user)
    clock.advance(11_000) // expired in every layer above the database
    const release = db.gate('get')
    setTimeout(release, 50)
    const before = db.calls.get
    const got = await Promise.all(chains.flatMap((c) => [c.get(ConformanceUser, { id: 2 }), c.get(ConformanceUser, { id: 2 })]))
    expect(got).toEqual(got.map(() => user))
    expect(db.calls.get - before, 'database reads for 8 gets in 4 processes').toBe(1)
  })

  it('a backfill never lands over the put another process made between its read and its backfill', async () => {
    const clock = new ManualClock()
    const layer = shared(clock)
    const prefix = uniquePrefix()
    const db = new ProcessMemoryStore({ clock })
    const held = new HoldAfterRead(db)
    const reader = track(new ChainedStore([layer(prefix), held], { clock }))
    const writer = track(new ChainedStore([layer(prefix), db], { clock }))
    const old = makeUser(3)
    await writer.put(old)
    clock.advance(11_000)
    const { read, release } = held.holdNextRead()
    const reading = reader.get(ConformanceUser, { id: 3 })
    await read
    const newer = makeUser(3)
    newer.name = 'newer'
    await writer.put(newer)
    release()
    expect(await reading).toEqual(old) // read before the put
    const other = track(layer(prefix))
    expect(await other.get(ConformanceUser, { id: 3 })).toEqual(newer)
    expect(await reader.get(ConformanceUser, { id: 3 })).toEqual(newer)
  })

  it('a backfill never lands over the tombstone of a delete another process made between its read and its backfill', async () => {
    const clock = new ManualClock()
    const layer = shared(clock)
    const prefix = uniquePrefix()
    const db = new ProcessMemoryStore({ clock })
    const held = new HoldAfterRead(db)
    const reader = track(new ChainedStore([layer(prefix), held], { clock }))
    const writer = track(new ChainedStore([layer(prefix), db], { clock }))
    const user = makeUser(4)
    await writer.put(user)
    clock.advance(11_000)
    const { read, release } = held.holdNextRead()
    const reading = reader.get(ConformanceUser, { email: user.email })
    await read
    await writer.delete(user)
    release()
    expect(await reading).toEqual(user) // read before the delete
    const other = track(layer(prefix))
    expect(await other.get(ConformanceUser, { id: 4 })).toBeUndefined()
    expect(await other.get(ConformanceUser, { email: user.email })).toBeUndefined()
    expect(await reader.get(ConformanceUser, { email: user.email })).toBeUndefined()
  })
})

/**
 * A cache layer's `lifetime` may say "do not cache" (a callback returning 0 seconds or a past Date): the
 * put then removes the object from the layer. Review found it did with a plain delete, where a delete
 * leaves a tombstone: a read in another chain (another process on a shared server, or another chain over
 * the same memory store) that fetched the old row before the put backfilled it afterwards, and the old
 * value was served for its whole lifetime though the put had resolved and the database held the new one.
 */
const DRAFTS = { lifetime: (obj: object) => ((obj as ConformanceUser).name === 'draft' ? 0 : 60) }

const uncachedTargets: [string, Shared][] = [
  [
    'one ProcessMemoryStore shared by two chains',
    (clock) => {
      const memory = new ProcessMemoryStore({ ...DRAFTS, clock })
      return () => memory
    },
  ],
  ...sharedLayers(DRAFTS),
]

describe.each(uncachedTargets)('%s: a put whose lifetime says not to cache, racing a read in another chain', (_name, shared) => {
  const track = closedAfterEach()

  it.each([
    ['the layer held no copy', false],
    ['the layer held a copy, expired since', true],
  ])(
    '%s: the copy a read fetched before the put never lands; once the put resolved, gets return the database value',
    async (_what, cached) => {
      const clock = new ManualClock()
      const layer = shared(clock)
      const prefix = uniquePrefix()
      const db = new ProcessMemoryStore({ clock })
      const held = new HoldAfterRead(db)
      const reader = track(new ChainedStore([layer(prefix), held], { clock }))
      const writer = track(new ChainedStore([layer(prefix), db], { clock }))
      const id = cached ? 22 : 21
      const old = makeUser(id)
      if (cached) {
        await writer.put(old)
        clock.advance(61_000)
      } else await db.put(old)
      const { read, release } = held.holdNextRead()
      const reading = reader.get(ConformanceUser, { id })
      await read
      const draft = makeUser(id)
      draft.name = 'draft' // the layers' lifetime callback returns 0 seconds: not cached
      await writer.put(draft)
      release()
      expect(await reading).toEqual(old) // read before the put
      expect(await writer.get(ConformanceUser, { id })).toEqual(draft)
      expect(await reader.get(ConformanceUser, { id })).toEqual(draft)
      expect(await reader.get(ConformanceUser, { email: old.email })).toEqual(draft)
      expect(await track(layer(prefix)).get(ConformanceUser, { id }), 'the shared layer holds no copy').toBeUndefined()
    },
  )
})

describe.runIf(stores.has('memcached'))(
  'MemcacheStore without a grace: copies and tombstones memcached still holds past their expiry',
  () => {
    const track = closedAfterEach()
    /** A layer on the memcached pool without a grace: copies live 10 s by their envelope, ~11 s on the servers. */
    const layer = (clock: ManualClock, prefix: string): MemcacheStore =>
      new MemcacheStore({ lifetime: 10, servers: inject('memcachedServers'), prefix, clock })

    it('after its copy expired (memcached still holds it), one get reads the database and refills the layer; the next gets hit it', async () => {
      const clock = new ManualClock()
      const prefix = uniquePrefix()
      const db = new FaultStore(new ProcessMemoryStore({ clock }))
      const chain = track(new ChainedStore([track(layer(clock, prefix)), db], { clock }))
      const user = makeUser(11)
      await chain.put(user)
      clock.advance(10_001) // expired by the envelope; memcached keeps the item (real time) a while longer
      const before = db.calls.get
      for (let i = 0; i < 5; i++) expect(await chain.get(ConformanceUser, i % 2 === 0 ? { id: 11 } : { email: user.email })).toEqual(user)
      expect(db.calls.get - before, 'database reads for 5 gets after the copy expired').toBe(1)
      expect(await track(layer(clock, prefix)).get(ConformanceUser, { email: user.email })).toEqual(user)
    })

    it('with leases, four processes whose shared copy expired read the database once between them', async () => {
      const clock = new ManualClock()
      const prefix = uniquePrefix()
      const db = new FaultStore(new ProcessMemoryStore({ clock }))
      const chains = Array.from({ length: 4 }, () =>
        track(
          new ChainedStore([new ProcessMemoryStore({ clock, lifetime: 10 }), track(layer(clock, prefix)), db], {
            clock,
            leases: { wait: 1000 },
          }),
        ),
      )
      const user = makeUser(12)
      await (chains[0] as ChainedStore).put(user)
      clock.advance(10_001)
      const release = db.gate('get')
      setTimeout(release, 50)
      const before = db.calls.get
      const got = await Promise.all(chains.map((c) => c.get(ConformanceUser, { id: 12 })))
      expect(got).toEqual(got.map(() => user))
      expect(db.calls.get - before, 'database reads for 4 gets in 4 processes').toBe(1)
    })

    it('a tombstone fences backfills until its own expiry, not until memcached drops it', async () => {
      const clock = new ManualClock()
      const prefix = uniquePrefix()
      const db = new FaultStore(new ProcessMemoryStore({ clock }))
      const cache = track(layer(clock, prefix)) // tombstones live 2 s (the default), ~3 s on the servers
      const chain = track(new ChainedStore([cache, db], { clock }))
      const user = makeUser(13)
      await chain.put(user)
      await chain.delete(user)
      await db.put(user) // written where the chain does not see it: only the tombstone keeps the layer empty
      clock.advance(1_999)
      let before = db.calls.get
      expect(await chain.get(ConformanceUser, { id: 13 })).toEqual(user)
      expect(await chain.get(ConformanceUser, { id: 13 })).toEqual(user)
      expect(db.calls.get - before, 'the live tombstone refused the backfill').toBe(2)
      clock.advance(2)
      before = db.calls.get
      for (let i = 0; i < 4; i++) expect(await chain.get(ConformanceUser, { id: 13 })).toEqual(user)
      expect(db.calls.get - before, 'database reads for 4 gets once the tombstone expired').toBe(1)
    })
  },
)
