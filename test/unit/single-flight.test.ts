/**
 * Reads that overlap a write: a read that began after a write was acknowledged must never share the
 * answer of a read that began while the write was still updating the layers (it may have read what
 * the write was about to replace), and a read that overlapped a write must not leave a remembered
 * miss behind it. Found by the coherence harness: a read 18 ms after the owner's delete returned the
 * deleted version, through a memory layer that served nothing (its bus was down).
 */
import { describe, expect, it } from 'vitest'
import { SingleFlight } from '../../src/chain/single-flight.js'
import type { KeyValueEntry } from '../../src/contracts/key-value-backend.js'
import type { Instance, Lookup, Model } from '../../src/core/model.js'
import { ChainedStore, KeyValueStore, LoaderStore, ProcessMemoryStore, type Store, type StoreEntry } from '../../src/index.js'
import { ConformanceUser, LocalBusHub, MapBackend, makeUser } from '../../src/testing/index.js'

/** A gate: `wait()` resolves once `open()` was called. */
function gate(): { wait: () => Promise<void>; open: () => void } {
  let open: () => void = () => {}
  const opened = new Promise<void>((resolve) => {
    open = resolve
  })
  return { wait: () => opened, open }
}

/** A MapBackend whose writes can be held, and whose reads can answer late what they found at once. */
class HeldBackend extends MapBackend {
  writes: ReturnType<typeof gate> | undefined
  replies: ReturnType<typeof gate> | undefined
  writesWaiting = 0
  readsWaiting = 0

  override async getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    const found = await super.getMany(keys)
    const replies = this.replies
    if (replies !== undefined) {
      this.readsWaiting++
      await replies.wait()
    }
    return found
  }

  override async setMany(entries: readonly KeyValueEntry[]): Promise<void> {
    await this.#held()
    return super.setMany(entries)
  }

  override async deleteMany(keys: readonly string[]): Promise<void> {
    await this.#held()
    return super.deleteMany(keys)
  }

  async #held(): Promise<void> {
    const writes = this.writes
    if (writes === undefined) return
    this.writesWaiting++
    await writes.wait()
  }
}

/** An authoritative in-memory layer whose reads can answer late what they found at once. */
class HeldDatabase extends ProcessMemoryStore {
  replies: ReturnType<typeof gate> | undefined
  readsWaiting = 0

  override async batchGetEntries<M extends Model>(
    model: M,
    lookups: readonly Lookup<M>[],
    options?: Parameters<Store['batchGetEntries']>[2],
  ): Promise<(StoreEntry<Instance<M>> | undefined)[]> {
    const found = await super.batchGetEntries(model, lookups, options)
    const replies = this.replies
    if (replies !== undefined) {
      this.readsWaiting++
      await replies.wait()
    }
    return found
  }
}

const until = async (done: () => boolean): Promise<void> => {
  for (let i = 0; i < 1000 && !done(); i++) await new Promise((resolve) => setImmediate(resolve))
  expect(done()).toBe(true)
}

/**
 * A chain [memory, held cache, database] holding `user`, its memory layer empty (as while its bus is
 * down); runs `write` with its cache write held, starts a get of `user` while it is held (the cache
 * answers late what it held before the write), lets the write finish, then starts another get. Resolves
 * to the two reads' answers, and the chain.
 */
/** A memory layer that takes a chain's puts at its turn, after the layers below (no `putNow`). */
function putsAtItsTurn(): ProcessMemoryStore {
  const store = new ProcessMemoryStore()
  Object.defineProperty(store, 'putNow', { value: undefined })
  return store
}

async function readAcrossWrite(
  user: InstanceType<typeof ConformanceUser>,
  write: (chain: ChainedStore) => Promise<void>,
): Promise<{ during: unknown; after: unknown; chain: ChainedStore }> {
  const backend = new HeldBackend()
  const chain = new ChainedStore([putsAtItsTurn(), new KeyValueStore(backend), new ProcessMemoryStore({ tombstoneLifetime: 0 })])
  const memory = chain.layers[0] as ProcessMemoryStore
  await chain.put(user)
  await memory.batchInvalidate(ConformanceUser, [{ id: user.id }])
  backend.writes = gate()
  const written = write(chain)
  await until(() => backend.writesWaiting > 0)
  backend.replies = gate()
  const during = chain.get(ConformanceUser, { id: user.id })
  await until(() => backend.readsWaiting > 0)
  backend.writes.open()
  await written
  await memory.batchInvalidate(ConformanceUser, [{ id: user.id }])
  const after = chain.get(ConformanceUser, { id: user.id })
  backend.replies.open()
  return { after: await after, during: await during, chain }
}

describe('reads across a write', () => {
  it('a read begun after a delete returned does not join a read begun while the delete was updating the caches', async () => {
    const user = makeUser(5)
    const { during, after, chain } = await readAcrossWrite(user, (c) => c.delete(user))
    expect(after).toBeUndefined()
    expect(during === undefined || (during as { id: number }).id === 5).toBe(true) // it overlapped the delete: either answer
    expect(await chain.get(ConformanceUser, { id: 5 })).toBeUndefined()
    await chain.close()
  })

  it('a read begun after a put returned does not join a read begun while the put was updating the caches', async () => {
    const user = makeUser(6)
    user.name = 'old'
    const newer = makeUser(6)
    newer.name = 'new'
    const { during, after, chain } = await readAcrossWrite(user, (c) => c.put(newer))
    expect((after as { name: string } | undefined)?.name).toBe('new')
    expect(['old', 'new']).toContain((during as { name: string } | undefined)?.name)
    await chain.close()
  })

  it('a read begun while a put updates the layers below gets the new object from a first layer that took it at once (putNow)', async () => {
    const backend = new HeldBackend()
    const chain = new ChainedStore([new ProcessMemoryStore(), new KeyValueStore(backend), new ProcessMemoryStore({ tombstoneLifetime: 0 })])
    const user = makeUser(8)
    user.name = 'old'
    await chain.put(user)
    const newer = makeUser(8)
    newer.name = 'new'
    backend.writes = gate()
    const written = chain.put(newer)
    await until(() => backend.writesWaiting > 0)
    backend.replies = gate()
    expect((await chain.get(ConformanceUser, { id: 8 }))?.name).toBe('new')
    expect(backend.readsWaiting).toBe(0)
    backend.writes.open()
    await written
    await chain.close()
  })

  it('a first layer that took a put at once tells other processes only once the layers below hold it', async () => {
    const hub = new LocalBusHub()
    const backend = new HeldBackend()
    const chain = new ChainedStore([
      new ProcessMemoryStore({ bus: hub.connect() }),
      new KeyValueStore(backend),
      new ProcessMemoryStore({ tombstoneLifetime: 0 }),
    ])
    backend.writes = gate()
    const written = chain.put(makeUser(9))
    await until(() => backend.writesWaiting > 0)
    // another process evicting now would read the layer below before the new object lands there
    expect(hub.published).toEqual([])
    expect((chain.layers[0] as ProcessMemoryStore).size).toBe(1)
    backend.writes.open()
    await written
    expect(hub.published).toEqual([['ConformanceUser|id=n9']])
    await chain.close()
  })

  it('three cache layers: a copy backfilled into the first layer while the put held the layers below is dropped at the put’s end', async () => {
    const held = new HeldBackend()
    const memory = new ProcessMemoryStore({ max: 1 })
    const chain = new ChainedStore([
      memory,
      new KeyValueStore(new MapBackend()),
      new KeyValueStore(held),
      new ProcessMemoryStore({ tombstoneLifetime: 0 }),
    ])
    const v0 = makeUser(10)
    v0.name = 'V0'
    await chain.put(v0)
    const v1 = makeUser(10)
    v1.name = 'V1'
    held.writes = gate()
    const written = chain.put(v1)
    await until(() => held.writesWaiting > 0)
    // the first layer took V1 at once; pushed out (max 1), a read refills it from the layer above the
    // held one, which still holds V0
    await memory.put(makeUser(11))
    expect((await chain.get(ConformanceUser, { id: 10 }))?.name).toBe('V0') // concurrent with the put: either answer
    held.writes.open()
    await written
    expect((await chain.get(ConformanceUser, { id: 10 }))?.name).toBe('V1')
    await chain.close()
  })

  it('three cache layers: a put too big for the first layer leaves nothing there that a read refilled while the put held the layers below', async () => {
    const held = new HeldBackend()
    const memory = new ProcessMemoryStore({ maxSize: 2000, tombstoneLifetime: 0 })
    const chain = new ChainedStore([
      memory,
      new KeyValueStore(new MapBackend()),
      new KeyValueStore(held),
      new ProcessMemoryStore({ tombstoneLifetime: 0 }),
    ])
    const v0 = makeUser(13)
    v0.name = 'V0'
    await chain.put(v0)
    const v1 = makeUser(13)
    v1.name = `V1${'x'.repeat(3000)}`
    held.writes = gate()
    const written = chain.put(v1)
    await until(() => held.writesWaiting > 0)
    expect((await chain.get(ConformanceUser, { id: 13 }))?.name).toBe('V0') // concurrent with the put: the layer above the held one
    held.writes.open()
    await written
    expect(await memory.get(ConformanceUser, { id: 13 })).toBeUndefined()
    expect((await chain.get(ConformanceUser, { id: 13 }))?.name.slice(0, 2)).toBe('V1')
    await chain.close()
  })

  it('a put through another chain that the shared memory layer cannot hold stops older reads from being joined or landing', async () => {
    const db = new HeldDatabase({ tombstoneLifetime: 0 })
    const memory = new ProcessMemoryStore({ maxSize: 2000 })
    const chain1 = new ChainedStore([memory, db])
    const chain2 = new ChainedStore([memory, db])
    const v0 = makeUser(12)
    v0.name = 'V0'
    await db.put(v0)
    db.replies = gate()
    const r1 = chain1.get(ConformanceUser, { id: 12 })
    await until(() => db.readsWaiting > 0)
    const replies = db.replies
    db.replies = undefined
    const v1 = makeUser(12)
    v1.name = `V1${'x'.repeat(3000)}`
    await chain2.put(v1)
    const r2 = chain1.get(ConformanceUser, { id: 12 }) // begun after the put returned
    replies.open()
    expect((await r1)?.name.slice(0, 2)).toBe('V0') // begun before it
    expect((await r2)?.name.slice(0, 2)).toBe('V1')
    expect(await memory.get(ConformanceUser, { id: 12 })).toBeUndefined()
    await chain1.close()
  })

  it('a miss read before a put, answered after it, is not remembered (negative caching)', async () => {
    const db = new HeldDatabase({ tombstoneLifetime: 0 })
    const chain = new ChainedStore([new ProcessMemoryStore(), db], { missLifetime: 60 })
    db.replies = gate()
    const before = chain.get(ConformanceUser, { id: 7 })
    await until(() => db.readsWaiting > 0)
    const replies = db.replies
    db.replies = undefined
    await chain.put(makeUser(7))
    replies.open()
    expect(await before).toBeUndefined() // it began before the put
    const memory = chain.layers[0] as ProcessMemoryStore
    await memory.batchInvalidate(ConformanceUser, [{ id: 7 }])
    expect((await chain.get(ConformanceUser, { id: 7 }))?.id).toBe(7)
    await chain.close()
  })
})

describe('reads across a write the chain did not make', () => {
  /**
   * Two chains [memory, source] over one memory layer and one source; a read of `user` through `slow` is
   * held after it read the source; `write` runs; then a read through `slow` starts, and the held one is
   * let go. Resolves to what the later read got, and then a read after both.
   */
  async function acrossOtherWrite(
    write: (s: { memory: ProcessMemoryStore; fast: ChainedStore; rows: Map<number, unknown> }) => Promise<unknown>,
  ) {
    const memory = new ProcessMemoryStore()
    const rows = new Map<number, unknown>([[8, makeUser(8)]])
    let held: ReturnType<typeof gate> | undefined
    let taken = () => {}
    const source = (slow: boolean) =>
      new LoaderStore({
        model: ConformanceUser,
        load: async (lookups) => {
          const found = lookups.map((l) => rows.get((l as { id: number }).id) as InstanceType<typeof ConformanceUser> | undefined)
          const wait = held
          if (slow && wait !== undefined) {
            held = undefined
            taken()
            await wait.wait()
          }
          return found
        },
        save: async (objs) => {
          for (const o of objs) rows.set(o.id, o)
        },
        remove: async (objs) => {
          for (const o of objs) rows.delete(o.id)
        },
      })
    const slow = new ChainedStore([memory, source(true)])
    const fast = new ChainedStore([memory, source(false)])
    const release = gate()
    held = release
    const reading = new Promise<void>((resolve) => {
      taken = resolve
    })
    const older = slow.get(ConformanceUser, { id: 8 })
    await reading
    await write({ memory, fast, rows })
    const later = slow.get(ConformanceUser, { id: 8 }) // starts after the write resolved
    await new Promise((r) => setImmediate(r))
    release.open()
    await older
    return { later: (await later)?.name, after: (await slow.get(ConformanceUser, { id: 8 }))?.name }
  }

  it('a read begun after a delete through another chain over the same memory layer does not join a read begun before it', async () => {
    expect(await acrossOtherWrite(({ fast }) => fast.delete(ConformanceUser, { id: 8 }))).toEqual({ later: undefined, after: undefined })
  })

  it('a read begun after an invalidation of the memory layer itself (the source changed) does not join a read begun before it', async () => {
    const outcome = await acrossOtherWrite(({ memory, rows }) => {
      rows.set(8, Object.assign(makeUser(8), { name: 'new' }))
      return memory.batchInvalidate(ConformanceUser, [{ id: 8 }])
    })
    expect(outcome).toEqual({ later: 'new', after: 'new' })
  })
})

describe('SingleFlight, the keys in flight', () => {
  const entry = (n: number): StoreEntry => ({ value: { n }, expiresAt: undefined }) as unknown as StoreEntry

  it('joins a read in flight while another settles, and again after every read settled', async () => {
    const flights = new SingleFlight()
    const first = flights.begin(1, 2, 0)
    expect(first.claim('a', 0)).toBeUndefined()
    expect(first.claim('a', 5)).toBe(0)
    let answerFirst: (v: (StoreEntry | undefined)[]) => void = () => {}
    first.start(new Promise((resolve) => (answerFirst = resolve)))
    const second = flights.begin(1, 1, 0)
    expect(second.claim('b', 0)).toBeUndefined()
    second.start(Promise.resolve([entry(2)]))
    await Promise.resolve()
    await Promise.resolve()
    // 'b' settled while 'a' is still in flight: 'a' can still be joined, 'b' is read afresh.
    const third = flights.begin(1, 2, 0)
    const joined = third.claim('a', 0)
    expect(joined).toBeInstanceOf(Promise)
    expect(third.claim('b', 1)).toBeUndefined()
    third.start(Promise.resolve([undefined]))
    answerFirst([entry(1)])
    expect(await joined).toEqual(entry(1))
    await new Promise((resolve) => setTimeout(resolve, 0))
    // Every read settled: a new read of 'a' is claimed, and a concurrent one joins it.
    const fourth = flights.begin(1, 1, 0)
    expect(fourth.claim('a', 0)).toBeUndefined()
    fourth.start(Promise.resolve([entry(4)]))
    const fifth = flights.begin(1, 1, 0)
    const again = fifth.claim('a', 0)
    expect(again).toBeInstanceOf(Promise)
    expect(await again).toEqual(entry(4))
  })

  it('a read that settles after a later read took over its keys leaves the later one joinable', async () => {
    const flights = new SingleFlight()
    const first = flights.begin(1, 2, 0)
    expect(first.claim('a', 0)).toBeUndefined()
    expect(first.claim('b', 1)).toBeUndefined()
    let answerFirst: (v: (StoreEntry | undefined)[]) => void = () => {}
    first.start(new Promise((resolve) => (answerFirst = resolve)))
    // a write came between: the second read may not join the first; it takes 'a' and 'b' over
    const second = flights.begin(2, 2, 0)
    expect(second.claim('a', 0)).toBeUndefined()
    expect(second.claim('b', 1)).toBeUndefined()
    let answerSecond: (v: (StoreEntry | undefined)[]) => void = () => {}
    second.start(new Promise((resolve) => (answerSecond = resolve)))
    answerFirst([entry(1), entry(1)])
    await new Promise((resolve) => setTimeout(resolve, 0))
    // the first read's settling dropped none of the second's keys (the Map holds only the second's)
    const third = flights.begin(2, 2, 0)
    const joinedA = third.claim('a', 0)
    const joinedB = third.claim('b', 1)
    expect(joinedA).toBeInstanceOf(Promise)
    expect(joinedB).toBeInstanceOf(Promise)
    answerSecond([entry(2), entry(3)])
    expect(await joinedA).toEqual(entry(2))
    expect(await joinedB).toEqual(entry(3))
    await new Promise((resolve) => setTimeout(resolve, 0))
    // all settled: the Map is empty again
    expect(flights.flights.size).toBe(0)
  })

  it('does not join a read begun before an invalidation in this process (another invalidation sequence number)', () => {
    const flights = new SingleFlight()
    const first = flights.begin(1, 1, 0)
    expect(first.claim('a', 0)).toBeUndefined()
    first.start(new Promise(() => {}))
    expect(flights.begin(1, 1, 1).claim('a', 0)).toBeUndefined()
  })

  it('does not join a read begun at another write-clock stamp', () => {
    const flights = new SingleFlight()
    const first = flights.begin(1, 1, 0)
    expect(first.claim('a', 0)).toBeUndefined()
    first.start(new Promise(() => {}))
    expect(flights.begin(2, 1, 0).claim('a', 0)).toBeUndefined()
  })
})
