import { describe, expect, it } from 'vitest'
import {
  ChainedStore,
  type GetEntriesOptions,
  InvalidKeyError,
  KeyValueStore,
  type Lookup,
  type LookupRequest,
  type Model,
  type ModelInfo,
  ProcessMemoryStore,
} from '../../src/index.js'
import { ConformanceUser, MapBackend, makeUser } from '../../src/testing/index.js'

/** A KeyValueStore that notes, for each batch it reads, the keys its requests arrived with. */
class NotingStore extends KeyValueStore {
  readonly arrivedWith: (string | undefined)[][] = []
  protected override readMany(info: ModelInfo, requests: readonly LookupRequest[], options?: GetEntriesOptions) {
    this.arrivedWith.push(requests.map((r) => r.key))
    return super.readMany(info, requests, options)
  }
}

/** A memory store that overrides `batchGetEntries` itself: a chain must keep asking it through that method. */
class OverridingMemory extends ProcessMemoryStore {
  readonly asked: unknown[][] = []
  override batchGetEntries<M extends Model>(model: M, lookups: readonly Lookup<M>[], options?: GetEntriesOptions) {
    this.asked.push([...lookups])
    return super.batchGetEntries(model, lookups, options)
  }
}

describe("a chain's batch read validates each lookup once, for all its layers", () => {
  it('hands the layers below the requests with the canonical keys the first layer computed', async () => {
    const below = new NotingStore(new MapBackend(), { prefix: 'p:' })
    await below.batchPut([makeUser(1), makeUser(2)])
    const chain = new ChainedStore([new ProcessMemoryStore(), below])
    const got = await chain.batchGet(ConformanceUser, [{ id: 1 }, { email: 'user2@example.com' }, { id: 3 }])
    expect(got.map((u) => u?.id)).toEqual([1, 2, undefined])
    // The memory layer computed every key; the store below reused them (its prefix is its own).
    expect(below.arrivedWith).toEqual([['ConformanceUser|id=n1', 'ConformanceUser|email=suser2%40example.com', 'ConformanceUser|id=n3']])
    // …and the backfill landed under those keys: the next read is answered by the memory layer.
    below.arrivedWith.length = 0
    expect((await chain.batchGet(ConformanceUser, [{ id: 1 }, { email: 'user2@example.com' }])).map((u) => u?.id)).toEqual([1, 2])
    expect(below.arrivedWith).toEqual([])
  })

  it('asks a layer that overrides batchGetEntries through it, with the lookups themselves', async () => {
    const first = new OverridingMemory()
    const second = new OverridingMemory()
    await second.put(makeUser(5))
    const chain = new ChainedStore([first, second, new KeyValueStore(new MapBackend())])
    expect((await chain.get(ConformanceUser, { id: 5 }))?.id).toBe(5)
    expect(await chain.batchGet(ConformanceUser, [{ id: 6 }, { orgId: 1, slug: 'x' }])).toEqual([undefined, undefined])
    expect(first.asked).toEqual([[{ id: 6 }, { orgId: 1, slug: 'x' }]])
    expect(second.asked).toEqual([[{ id: 5 }], [{ id: 6 }, { orgId: 1, slug: 'x' }]])
  })

  it('still refuses a lookup value that cannot be a key, in the name of the chain, before any layer is read', async () => {
    const below = new NotingStore(new MapBackend())
    const chain = new ChainedStore([new ProcessMemoryStore(), below], { name: 'users' })
    const error = await chain.batchGet(ConformanceUser, [{ id: 1 }, { id: Number.POSITIVE_INFINITY }]).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InvalidKeyError)
    expect((error as Error).message).toMatch(
      /^users store get of model `ConformanceUser` got an invalid value `Infinity` for key field `id`/,
    )
    expect(below.arrivedWith).toEqual([])
  })
})
