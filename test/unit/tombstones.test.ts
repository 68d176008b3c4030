import { describe, expect, it } from 'vitest'
import { ChainedStore, KeyValueStore, ProcessMemoryStore, type Store } from '../../src/index.js'
import { ConformanceUser, FaultStore, ManualClock, MapBackend, makeUser } from '../../src/testing/index.js'

const stores: [string, (clock: ManualClock) => Store][] = [
  ['ProcessMemoryStore', (clock) => new ProcessMemoryStore({ clock, tombstoneLifetime: 5 })],
  ['KeyValueStore(MapBackend)', (clock) => new KeyValueStore(new MapBackend(() => clock.now()), { clock, tombstoneLifetime: 5 })],
]

describe.each(stores)('%s: backfills and tombstones', (_name, make) => {
  it('a backfill never replaces a live entry; a put does', async () => {
    const clock = new ManualClock()
    const store = make(clock)
    const current = makeUser(1)
    current.name = 'current'
    await store.put(current)
    const old = makeUser(1)
    old.name = 'old'
    await store.batchPutEntries([{ value: old, expiresAt: undefined }], { backfill: true })
    expect((await store.get(ConformanceUser, { id: 1 }))?.name).toBe('current')
    await store.put(old)
    expect((await store.get(ConformanceUser, { email: old.email }))?.name).toBe('old')
  })

  it('a delete leaves a tombstone that blocks backfills until it expires, never puts', async () => {
    const clock = new ManualClock()
    const store = make(clock)
    const user = makeUser(2)
    await store.put(user)
    await store.delete(user)
    await store.batchPutEntries([{ value: user, expiresAt: undefined }], { backfill: true })
    expect(await store.get(ConformanceUser, { id: 2 })).toBeUndefined()
    expect(await store.get(ConformanceUser, { email: user.email })).toBeUndefined()
    clock.advance(5000)
    await store.batchPutEntries([{ value: user, expiresAt: undefined }], { backfill: true })
    expect(await store.get(ConformanceUser, { email: user.email })).toEqual(user)
    await store.delete(user)
    await store.put(user)
    expect(await store.get(ConformanceUser, { id: 2 })).toEqual(user)
  })

  it('a repair (an invalidation with changedAt) never cuts short the tombstone of a later delete', async () => {
    const clock = new ManualClock()
    const store = make(clock)
    const user = makeUser(4)
    await store.put(user)
    const failedAt = clock.now() // a change whose invalidation failed here, repaired later
    clock.advance(3000)
    await store.delete(user) // e.g. another process's: its tombstone lasts until failedAt + 8 s
    clock.advance(1000)
    await store.batchInvalidate?.(ConformanceUser, [{ id: 4 }], { changedAt: failedAt })
    clock.advance(2000) // past the repair's own lifetime (failedAt + 5 s), inside the delete's
    const copyReadBeforeTheDelete = { value: user, expiresAt: undefined }
    await store.batchPutEntries([copyReadBeforeTheDelete], { backfill: true })
    expect(await store.get(ConformanceUser, { id: 4 })).toBeUndefined()
    clock.advance(2000)
    await store.batchPutEntries([copyReadBeforeTheDelete], { backfill: true })
    expect(await store.get(ConformanceUser, { id: 4 })).toEqual(user)
  })

  it('a repair later than its tombstone lifetime removes the copy and leaves no tombstone of its own', async () => {
    const clock = new ManualClock()
    const store = make(clock)
    const user = makeUser(5)
    await store.put(user)
    const failedAt = clock.now()
    clock.advance(6000)
    await store.batchInvalidate?.(ConformanceUser, [{ email: user.email }], { changedAt: failedAt })
    expect(await store.get(ConformanceUser, { id: 5 })).toBeUndefined()
    await store.batchPutEntries([{ value: user, expiresAt: undefined }], { backfill: true })
    expect(await store.get(ConformanceUser, { email: user.email })).toEqual(user)
    // a tombstone the key holds stays, however old the repaired change
    await store.delete(user)
    clock.advance(1000)
    await store.batchInvalidate?.(ConformanceUser, [{ id: 5 }], { changedAt: failedAt })
    await store.batchPutEntries([{ value: user, expiresAt: undefined }], { backfill: true })
    expect(await store.get(ConformanceUser, { id: 5 })).toBeUndefined()
  })

  it('in a chain, a delete then a read of the database miss leaves nothing to resurrect', async () => {
    const clock = new ManualClock()
    const cache = make(clock)
    const db = new ProcessMemoryStore({ clock, tombstoneLifetime: 0 })
    const chain = new ChainedStore([cache, db])
    const user = makeUser(3)
    await chain.put(user)
    await chain.delete(user)
    expect(await chain.get(ConformanceUser, { id: 3 })).toBeUndefined()
    await db.put(user) // written behind the chain's back, e.g. by another service
    expect(await chain.get(ConformanceUser, { id: 3 })).toEqual(user)
  })
})

describe('ProcessMemoryStore: invalidations fence backfills read before them, however long the read took', () => {
  it('a backfill read before an eviction is refused after the tombstone expired; one read after it lands', async () => {
    const clock = new ManualClock()
    const memory = new ProcessMemoryStore({ clock, tombstoneLifetime: 1 })
    const old = makeUser(71)
    const { invalidationSequence } = await import('../../src/core/invalidation-sequence.js')
    const since = invalidationSequence()
    memory.evict([(await keyOf(old)) as string])
    clock.advance(5_000) // the tombstone is long gone
    await memory.batchPutEntries([{ value: old, expiresAt: undefined }], { backfill: true, since })
    expect(await memory.get(ConformanceUser, { id: 71 })).toBeUndefined()
    await memory.batchPutEntries([{ value: old, expiresAt: undefined }], { backfill: true, since: invalidationSequence() })
    expect(await memory.get(ConformanceUser, { id: 71 })).toEqual(old)
  })

  it('in a chain: a slow read below cannot backfill what another process invalidated meanwhile', async () => {
    const clock = new ManualClock()
    const memory = new ProcessMemoryStore({ clock, tombstoneLifetime: 0.01 })
    const db = new FaultStore(new ProcessMemoryStore({ clock }))
    const chain = new ChainedStore([memory, db])
    const v1 = makeUser(72)
    await db.put(v1)
    const open = db.gate('get')
    const reading = chain.get(ConformanceUser, { id: 72 })
    while (db.waiting.get === 0) await new Promise((r) => setImmediate(r))
    // another process writes v2 and publishes the invalidation; this read still holds v1
    memory.evict([(await keyOf(v1)) as string])
    clock.advance(1_000)
    open()
    expect(await reading).toEqual(v1)
    expect(await memory.get(ConformanceUser, { id: 72 })).toBeUndefined()
  })
})

async function keyOf(user: ConformanceUser): Promise<string | undefined> {
  const { describeModel } = await import('../../src/index.js')
  const { keyOfObjectFor } = await import('../../src/core/key-encoding.js')
  return keyOfObjectFor(describeModel(ConformanceUser).primary, user)
}
