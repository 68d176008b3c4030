import Keyv, { type KeyvStoreAdapter } from 'keyv'
import { describe, expect, it } from 'vitest'
import { envelopeKind, KIND_TOMBSTONE } from '../../src/core/codec.js'
import { CorruptEntryError, InvalidOptionError, StoreClosedError, StoreUnavailableError } from '../../src/core/errors.js'
import { ChainedStore, Entry, KeyValueStore, ProcessMemoryStore } from '../../src/index.js'
import { KeyvBackend, KeyvStore } from '../../src/stores/keyv/index.js'
import { ConformanceUser, ManualClock, makeUser } from '../../src/testing/index.js'

/** A real in-memory Keyv adapter with batch methods, call counters and a switch to make it fail or hang. */
class TestAdapter {
  readonly opts = {}
  namespace: string | undefined
  readonly data = new Map<string, unknown>()
  readonly calls = { get: 0, getMany: 0, set: 0, setMany: 0, delete: 0, deleteMany: 0 }
  mode: 'ok' | 'fail' | 'hang' = 'ok'
  readonly ttls = new Map<string, number | undefined>()

  async #check(): Promise<void> {
    if (this.mode === 'fail') throw new Error('adapter is down')
    if (this.mode === 'hang') await new Promise(() => {})
  }
  async get(key: string): Promise<unknown> {
    this.calls.get++
    await this.#check()
    return this.data.get(key)
  }
  async getMany(keys: string[]): Promise<unknown[]> {
    this.calls.getMany++
    await this.#check()
    return keys.map((k) => this.data.get(k))
  }
  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    this.calls.set++
    await this.#check()
    this.data.set(key, value)
    this.ttls.set(key, ttl)
    return true
  }
  async setMany(entries: { key: string; value: unknown; ttl?: number }[]): Promise<void> {
    this.calls.setMany++
    await this.#check()
    for (const e of entries) {
      this.data.set(e.key, e.value)
      this.ttls.set(e.key, e.ttl)
    }
  }
  async delete(key: string): Promise<boolean> {
    this.calls.delete++
    await this.#check()
    return this.data.delete(key)
  }
  async deleteMany(keys: string[]): Promise<boolean> {
    this.calls.deleteMany++
    await this.#check()
    return keys.map((k) => this.data.delete(k)).every(Boolean)
  }
  async clear(): Promise<void> {
    this.data.clear()
  }
  on(): this {
    return this
  }
}

/** A Keyv over a Map with serialization switched off: the Map holds the values themselves. */
function unserialized(): Keyv {
  const keyv = new Keyv()
  keyv.serialize = undefined
  keyv.deserialize = undefined
  return keyv
}

const adapterKeyv = (adapter: TestAdapter) => new Keyv(adapter as unknown as KeyvStoreAdapter)

describe('KeyvStore options', () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{}, /`keyv`/],
    [{ keyv: new Map() }, /`keyv`/],
    [{ keyv: new TestAdapter() }, /`keyv`.*got a storage adapter \(TestAdapter\); wrap it: new Keyv\(adapter\)/],
    [{ keyv: new Keyv(), timeout: 0 }, /`timeout`/],
    [{ keyv: new Keyv(), disconnect: 'yes' }, /`disconnect`/],
    [{ keyv: new Keyv(), name: '' }, /`name`/],
    [{ keyv: new Keyv(), prefix: 'a b' }, /`prefix`/],
    [{ keyv: new Keyv(), lifetime: 0 }, /`lifetime`/],
  ]
  for (const [options, message] of bad) {
    it(`rejects ${Object.keys(options).join(', ') || 'no keyv'} (${message.source}) synchronously`, () => {
      expect(() => new KeyvStore(options as never)).toThrow(InvalidOptionError)
      expect(() => new KeyvStore(options as never)).toThrow(message)
    })
  }

  it('switches throwOnErrors on and names itself after the namespace', () => {
    const keyv = new Keyv({ namespace: 'app' })
    const store = new KeyvStore({ keyv })
    expect(keyv.throwOnErrors).toBe(true)
    expect(store.name).toBe('keyv(app)')
    expect(store.keyv).toBe(keyv)
  })
})

describe('KeyvBackend options (a public export, for KeyValueStore)', () => {
  const refused = (options: unknown): string => {
    try {
      new KeyvBackend(options as never)
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidOptionError)
      return (err as Error).message
    }
    throw new Error('expected an InvalidOptionError')
  }

  it('refuses unknown, missing and bad options synchronously, naming them (an unknown one was accepted, a missing keyv was a TypeError)', () => {
    expect(refused({ keyv: new Keyv(), ttl: 5 })).toMatch(
      /^KeyvBackend: unknown option `ttl`: did you mean `lifetime` \(seconds\), an option of the KeyValueStore over the backend/,
    )
    expect(refused({ keyv: new Keyv(), bogus: 1 })).toMatch(/^KeyvBackend: unknown option `bogus` \(known options: clock, disconnect, keyv/)
    expect(refused({})).toMatch(/^KeyvBackend: option `keyv` must be a Keyv 5 instance/)
    expect(refused(undefined)).toMatch(/^KeyvBackend: options must be an object with `keyv`/)
    expect(refused({ keyv: new Map() })).toMatch(/`keyv` must be a Keyv 5 instance/)
    expect(refused({ keyv: new Keyv(), timeout: 0 })).toMatch(/option `timeout` must be a number of ms > 0/)
    expect(refused({ keyv: new Keyv(), clock: {} })).toMatch(/option `clock` must have a now\(\) method/)
    expect(refused({ keyv: new Keyv(), name: '' })).toMatch(/option `name` must be a non-empty string/)
    expect(refused({ keyv: new Keyv(), disconnect: 'yes' })).toMatch(/option `disconnect` must be a boolean/)
    expect(refused({ keyv: new Keyv(), ownsNamespace: 1 })).toMatch(/option `ownsNamespace` must be a boolean/)
    expect(refused({ keyv: new Keyv(), prefix: 5 })).toMatch(/option `prefix` must be a string/)
  })

  it('defaults the clock to the system clock, timeout to 1000 ms and the name to the namespace: a KeyValueStore over it works', async () => {
    const backend = new KeyvBackend({ keyv: new Keyv({ namespace: 'mine' }) })
    expect(backend.name).toBe('keyv(mine)')
    const store = new KeyValueStore(backend, { lifetime: 60 })
    await store.put(makeUser(1))
    expect((await store.get(ConformanceUser, { id: 1 }))?.id).toBe(1)
    await store.close()
  })
})

describe('KeyvStore over the default Keyv (Map, JSON serializer)', () => {
  it('passes the remaining lifetime as a ms ttl, rounded up, by the store clock', async () => {
    const adapter = new TestAdapter()
    const clock = new ManualClock(Date.UTC(2001, 0, 1)) // far from real time: the ttl is relative
    const store = new KeyvStore({ keyv: adapterKeyv(adapter), clock, prefix: 'ttl', lifetime: 12.3456 })
    await store.put(makeUser(1))
    expect([...adapter.ttls.values()]).toEqual([12_346, 12_346, 12_346])
    expect((await store.get(ConformanceUser, { id: 1 }))?.id).toBe(1)
    clock.advance(12_346)
    expect(await store.get(ConformanceUser, { id: 1 })).toBeUndefined()
  })

  it('entries without a lifetime get no ttl; an already expired lifetime stores no copy, only the tombstone a delete leaves', async () => {
    const adapter = new TestAdapter()
    const store = new KeyvStore({ keyv: adapterKeyv(adapter), prefix: 'never' })
    await store.put(makeUser(2))
    expect([...adapter.ttls.values()]).toEqual([undefined, undefined, undefined])
    const expired = new KeyvStore({ keyv: adapterKeyv(adapter), prefix: 'gone', lifetime: () => new Date(0) })
    await expired.put(makeUser(3))
    const gone = [...adapter.data.keys()].filter((k) => k.includes('gone'))
    expect(gone).toHaveLength(1) // the record key's tombstone (tombstoneLifetime, 2 s), as after a delete
    expect(adapter.ttls.get(gone[0] as string)).toBeGreaterThan(1_900)
    expect(adapter.ttls.get(gone[0] as string)).toBeLessThanOrEqual(2_000)
    expect(await expired.get(ConformanceUser, { id: 3 })).toBeUndefined()
  })

  it('stores bytes as :base64: JSON with the default serializer, and as Buffers without serialization', async () => {
    const json = new Keyv()
    await new KeyvStore({ keyv: json, prefix: 'b64' }).put(makeUser(4))
    const jsonValues = [...(json.store as Map<string, unknown>).values()]
    expect(jsonValues.every((v) => typeof v === 'string' && v.includes(':base64:'))).toBe(true)

    const raw = unserialized()
    const store = new KeyvStore({ keyv: raw, prefix: 'raw' })
    await store.put(makeUser(4))
    const rawValues = [...(raw.store as Map<string, { value: unknown }>).values()]
    expect(rawValues.every((v) => Buffer.isBuffer(v.value))).toBe(true)
    expect((await store.get(ConformanceUser, { email: 'user4@example.com' }))?.id).toBe(4)
  })

  it('a value that is not bytes under a stockpyle key is a corrupt entry: replaced by a tombstone and reported, never a silent miss (review: a SerializationError rejected a chain)', async () => {
    for (const foreign of ['hello', { not: 'bytes' }, 42]) {
      const keyv = new Keyv()
      const store = new KeyvStore({ keyv })
      await store.put(makeUser(1))
      await keyv.set('stockpyle:ConformanceUser|id=n2', foreign)
      const failure = await store.batchGet(ConformanceUser, [{ id: 1 }, { id: 2 }]).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(failure).toBeInstanceOf(CorruptEntryError)
      expect((failure as Error).message).toMatch(
        /ConformanceUser\|id=n2.* is corrupt: .*not bytes.*; it was replaced by a tombstone for 2000 ms$/,
      )
      const [held] = await store.backend.getMany(['stockpyle:ConformanceUser|id=n2'])
      expect(held !== undefined && envelopeKind(held) === KIND_TOMBSTONE).toBe(true)
      expect(await store.get(ConformanceUser, { id: 2 })).toBeUndefined()
      expect(await store.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1))
    }
  })

  it('as a chain layer, a value that is not bytes is reported and skipped: the layer below answers, and the value is gone', async () => {
    const keyv = new Keyv()
    const db = new ProcessMemoryStore({ name: 'db' })
    await db.batchPut([makeUser(1), makeUser(2)])
    const store = new KeyvStore({ keyv })
    const chain = new ChainedStore([store, db])
    const errors: string[] = []
    chain.events.on('cacheError', (e) => errors.push((e.error as { code?: string }).code ?? String(e.error)))
    await keyv.set('stockpyle:ConformanceUser|id=n2', 'written by someone else')
    expect((await chain.batchGet(ConformanceUser, [{ id: 1 }, { id: 2 }])).map((u) => u?.id)).toEqual([1, 2])
    expect(errors).toEqual(['E_CORRUPT_ENTRY'])
    expect(await keyv.get('stockpyle:ConformanceUser|id=n2')).not.toBe('written by someone else')
    // replaced by a tombstone, which Keyv's backfills (plain sets: no add-only backfills, no tombstones
    // in its capabilities) replace at once: the chain's backfill refilled the key
    expect(await store.get(ConformanceUser, { id: 2 })).toEqual(makeUser(2))
    expect((await chain.batchGet(ConformanceUser, [{ id: 1 }, { id: 2 }])).map((u) => u?.id)).toEqual([1, 2])
    expect(errors).toEqual(['E_CORRUPT_ENTRY'])
    await chain.close()
  })

  it('close() leaves the Keyv usable unless `disconnect: true`', async () => {
    const adapter = new TestAdapter()
    let disconnected = 0
    Object.assign(adapter, { disconnect: async () => void disconnected++ })
    const keyv = adapterKeyv(adapter)
    const store = new KeyvStore({ keyv })
    await store.close()
    await store.close()
    await expect(store.get(ConformanceUser, { id: 1 })).rejects.toThrow(StoreClosedError)
    expect(disconnected).toBe(0)
    const owning = new KeyvStore({ keyv, disconnect: true })
    await owning.close()
    expect(disconnected).toBe(1)
  })
})

describe('KeyvStore capabilities: Keyv has no atomic add, so backfills are plain sets', () => {
  it('declares no add-only backfills, no tombstones and no refillsExpired (which promises never over a live copy or a tombstone)', async () => {
    const clock = new ManualClock()
    const store = new KeyvStore({ keyv: new Keyv(), clock, lifetime: 10, grace: 60, tombstoneLifetime: 60 })
    expect(store.capabilities).toMatchObject({ addOnlyBackfills: false, tombstones: false, staleReads: true, refillsExpired: false })
    // what a backfill does instead: it replaces whatever the key holds — a tombstone, a live copy, an expired one
    const old = Object.assign(makeUser(1), { name: 'old' })
    await store.put(makeUser(1))
    await store.delete(makeUser(1))
    await store.batchPutEntries([new Entry(old, undefined)], { backfill: true })
    expect((await store.get(ConformanceUser, { id: 1 }))?.name).toBe('old')
    await store.put(makeUser(1))
    await store.batchPutEntries([new Entry(old, undefined)], { backfill: true })
    expect((await store.get(ConformanceUser, { id: 1 }))?.name).toBe('old')
  })
})

describe('KeyvStore over an adapter with batch methods', () => {
  it('uses one getMany / setMany / deleteMany per batch', async () => {
    const adapter = new TestAdapter()
    const store = new KeyvStore({ keyv: adapterKeyv(adapter), prefix: 'batch', lifetime: 60, tombstoneLifetime: 10 })
    const users = Array.from({ length: 50 }, (_, i) => makeUser(i))
    await store.batchPut(users)
    expect(adapter.calls).toMatchObject({ setMany: 1, set: 0 })
    const got = await store.batchGet(
      ConformanceUser,
      users.map((u) => ({ email: u.email })),
    )
    expect(got.map((u) => u?.id)).toEqual(users.map((u) => u.id))
    expect(adapter.calls).toMatchObject({ getMany: 2, get: 0 })
    await store.batchDelete(users)
    // aliases are deleted in one deleteMany; each record key is overwritten by a tombstone in one setMany
    expect(adapter.calls).toMatchObject({ deleteMany: 1, delete: 0, setMany: 2, set: 0 })
    expect(adapter.data.size).toBe(50)
    expect([...adapter.data.keys()].every((key) => (adapter.ttls.get(key) ?? Number.POSITIVE_INFINITY) <= 10_000)).toBe(true)
    expect(await store.batchGet(ConformanceUser, [{ id: 0 }, { email: users[1]!.email }])).toEqual([undefined, undefined])
    const plain = new KeyvStore({ keyv: adapterKeyv(adapter), prefix: 'plain', tombstoneLifetime: 0 })
    await plain.batchPut(users)
    await plain.batchDelete(users)
    expect([...adapter.data.keys()].filter((k) => k.includes('plain'))).toEqual([])
  })

  it('adapter failures reject with StoreUnavailableError (Keyv would turn them into misses)', async () => {
    const adapter = new TestAdapter()
    const store = new KeyvStore({ keyv: adapterKeyv(adapter), prefix: 'fail' })
    await store.put(makeUser(1))
    adapter.mode = 'fail'
    for (const [op, call] of [
      [() => store.get(ConformanceUser, { id: 1 }), 'get of model `ConformanceUser` by `{id:1}`'],
      [() => store.put(makeUser(2)), 'put of model `ConformanceUser` `{id:2}`'],
      [() => store.delete(makeUser(1)), 'delete of model `ConformanceUser` `{id:1}`'],
    ] as const) {
      const error = await op().then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error).toBeInstanceOf(StoreUnavailableError)
      // named after the store's call, its model and key (the adapter knows neither)
      expect((error as Error).message.startsWith(`keyv(keyv) store ${call} failed: adapter is down`)).toBe(true)
      expect((error as Error).cause).toBeInstanceOf(Error)
    }
    adapter.mode = 'ok'
    expect((await store.get(ConformanceUser, { id: 1 }))?.id).toBe(1)
  })

  it('read failures surface also without an adapter getMany (key-by-key reads)', async () => {
    const adapter = new TestAdapter()
    Object.assign(adapter, { getMany: undefined })
    const store = new KeyvStore({ keyv: adapterKeyv(adapter), prefix: 'nomany' })
    await store.batchPut([makeUser(1), makeUser(2)])
    expect((await store.batchGet(ConformanceUser, [{ id: 2 }, { id: 3 }, { id: 1 }])).map((u) => u?.id)).toEqual([2, undefined, 1])
    adapter.mode = 'fail'
    await expect(store.batchGet(ConformanceUser, [{ id: 1 }])).rejects.toThrow(StoreUnavailableError)
  })

  it('a hanging adapter rejects within `timeout`', async () => {
    const adapter = new TestAdapter()
    const store = new KeyvStore({ keyv: adapterKeyv(adapter), timeout: 100 })
    adapter.mode = 'hang'
    const started = performance.now()
    await expect(store.get(ConformanceUser, { id: 1 })).rejects.toThrow(/no answer within 100 ms/)
    expect(performance.now() - started).toBeLessThan(600)
  })
})

describe('KeyvStore in every Keyv namespace configuration (review: Keyv 5.6 prefixes get/set keys, getMany/deleteMany keys and listed keys differently)', () => {
  const isUnsupported = (err: unknown): boolean => (err as { code?: string })?.code === 'E_UNSUPPORTED'

  /** [Keyv namespace, store prefix]: every key of the store starts with `<namespace>:` (Keyv then skipped it on get/set only). */
  const overlapping: [string, string | undefined][] = [
    ['cache', 'cache'],
    ['stockpyle', undefined], // the default prefix
    ['a', 'a:b'],
    ['a:b', 'a:b'],
    ['lease', ''], // a lease key of a store without a prefix starts with `lease:`
  ]
  for (const [namespace, prefix] of overlapping) {
    for (const [adapterName, make] of [
      ['Map', () => new Keyv({ namespace })],
      ['an adapter with batch methods', () => new Keyv(new TestAdapter() as unknown as KeyvStoreAdapter, { namespace })],
      [
        'an adapter without getMany',
        () => new Keyv(Object.assign(new TestAdapter(), { getMany: undefined }) as unknown as KeyvStoreAdapter, { namespace }),
      ],
    ] as const) {
      it(`namespace ${namespace}, prefix ${prefix ?? '(default)'}, over ${adapterName}: reads find what puts wrote; deletes and changed keys remove it`, async () => {
        const keyv = make()
        const raw = (keyv.store as { data?: Map<string, unknown> }).data ?? (keyv.store as Map<string, unknown>)
        const store = new KeyvStore({ keyv, prefix, tombstoneLifetime: 0 })
        const user = makeUser(1)
        await store.put(user)
        expect(await store.batchGet(ConformanceUser, [{ id: 1 }, { email: user.email }])).toEqual([user, user])
        const moved = Object.assign(makeUser(1), { email: 'moved@example.com' })
        await store.put(moved)
        expect(await store.get(ConformanceUser, { email: user.email })).toBeUndefined()
        expect(await store.get(ConformanceUser, { email: 'moved@example.com' })).toEqual(moved)
        const head = `${namespace}:${prefix === '' ? '' : `${prefix ?? 'stockpyle'}:`}` // Keyv's namespace, then the store's prefix
        expect([...raw.keys()].every((key) => key.startsWith(head))).toBe(true)
        await store.delete(moved)
        expect(await store.batchGet(ConformanceUser, [{ id: 1 }, { email: 'moved@example.com' }])).toEqual([undefined, undefined])
        await store.delete(user) // the alias of the old email, left by the put (it answered nothing since)
        expect([...raw.keys()]).toEqual([])
      })
    }
  }

  it('clear() with a namespace equal to the prefix removes the prefix’s keys (it removed none)', async () => {
    const keyv = new Keyv({ namespace: 'cache' })
    const store = new KeyvStore({ keyv, prefix: 'cache' })
    const other = new KeyvStore({ keyv, prefix: 'other' })
    await store.batchPut([makeUser(1), makeUser(2)])
    await other.put(makeUser(3))
    expect(store.capabilities.clearable).toBe(true)
    await store.clear()
    expect(await store.batchGet(ConformanceUser, [{ id: 1 }, { email: makeUser(2).email }])).toEqual([undefined, undefined])
    expect(await other.get(ConformanceUser, { id: 3 })).toEqual(makeUser(3))
    expect([...(keyv.store as Map<string, unknown>).keys()].every((key) => key.startsWith('cache:other:'))).toBe(true)
  })

  it('without a Keyv namespace, listed keys lose their first part: clear() is refused and clearable false (it resolved and removed nothing), unless ownsNamespace', async () => {
    const noNamespace = (): Keyv => {
      const keyv = new Keyv()
      keyv.namespace = undefined
      return keyv
    }
    for (const make of [() => new Keyv({ namespace: '' }), noNamespace]) {
      const keyv = make()
      const store = new KeyvStore({ keyv, prefix: 'app' })
      await store.put(makeUser(1))
      expect(store.capabilities.clearable).toBe(false)
      await expect(store.clear()).rejects.toSatisfy(isUnsupported)
      await expect(store.clear()).rejects.toThrow(/cannot clear\(\): its Keyv has no namespace.*ownsNamespace: true/)
      expect(await store.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1))
      const owner = new KeyvStore({ keyv, prefix: 'app', ownsNamespace: true })
      expect(owner.capabilities.clearable).toBe(true)
      await owner.clear()
      expect(await store.get(ConformanceUser, { id: 1 })).toBeUndefined()
    }
  })

  it('a namespace holding `:` loses its tail in listed keys: clear() is refused', async () => {
    const store = new KeyvStore({ keyv: new Keyv({ namespace: 'a:b' }), prefix: 'p' })
    await store.put(makeUser(1))
    expect(store.capabilities.clearable).toBe(false)
    await expect(store.clear()).rejects.toSatisfy(isUnsupported)
    expect(await store.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1))
  })

  it('with useKeyPrefix: false Keyv lists keys as written: clear() removes the prefix’s keys and nothing else, with or without a namespace', async () => {
    for (const namespace of ['app', undefined]) {
      const keyv = new Keyv(namespace === undefined ? { useKeyPrefix: false } : { namespace, useKeyPrefix: false })
      const store = new KeyvStore({ keyv, prefix: 'p' })
      const other = new KeyvStore({ keyv, prefix: 'q' })
      await store.batchPut([makeUser(1), makeUser(2)])
      await other.put(makeUser(1))
      expect(store.capabilities.clearable).toBe(true)
      await store.clear()
      expect(await store.batchGet(ConformanceUser, [{ id: 1 }, { id: 2 }])).toEqual([undefined, undefined])
      expect(await other.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1))
      expect([...(keyv.store as Map<string, unknown>).keys()].every((key) => key.startsWith('q:'))).toBe(true)
    }
  })
})

describe('KeyvStore.clear() and prefixes extending it', () => {
  it('clearing the prefix `a` also clears a store with the prefix `a:b` on the same Keyv (documented, as for RedisStore); `a-b` stays', async () => {
    const keyv = new Keyv()
    const [a, ab, aDash] = ['a', 'a:b', 'a-b'].map((prefix) => new KeyvStore({ keyv, prefix })) as [KeyvStore, KeyvStore, KeyvStore]
    for (const store of [a, ab, aDash]) await store.put(makeUser(1))
    await a.clear()
    expect(await a.get(ConformanceUser, { id: 1 })).toBeUndefined()
    expect(await ab.get(ConformanceUser, { id: 1 })).toBeUndefined()
    expect(await aDash.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1))
  })
})
