/**
 * A custom KeyValueBackend's failures reach callers as stockpyle errors: its own error wrapped (the
 * store and operation named, the error as the cause), and a `getMany` that does not answer one value
 * per key refused as the backend's bug — before, a short answer read as misses and a raw Error passed
 * through untyped.
 */
import { describe, expect, it } from 'vitest'
import { partialFailure } from '../../src/contracts/key-value-failures.js'
import {
  type CacheErrorEvent,
  ChainedStore,
  isStockpyleError,
  KeyValueStore,
  PartialFailureError,
  ProcessMemoryStore,
  StoreUnavailableError,
} from '../../src/index.js'
import { ConformanceUser, MapBackend, makeUser } from '../../src/testing/index.js'

class OddBackend extends MapBackend {
  mode: 'ok' | 'throw' | 'short' | 'long' | 'not an array' = 'ok'
  override async getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    const found = await super.getMany(keys)
    if (this.mode === 'throw') throw new Error('backend boom')
    if (this.mode === 'short') return found.slice(0, -1)
    if (this.mode === 'long') return [...found, undefined]
    if (this.mode === 'not an array') return undefined as never
    return found
  }
  override async setMany(entries: Parameters<MapBackend['setMany']>[0]): Promise<void> {
    if (this.mode === 'throw') throw new Error('backend boom on set')
    return super.setMany(entries)
  }
}

describe('a custom key-value backend that fails', () => {
  it('its own errors are wrapped in a StockpyleError naming the store, operation, model and (first) key, the error as cause', async () => {
    const backend = new OddBackend()
    const store = new KeyValueStore(backend, { name: 'odd' })
    await store.put(makeUser(1))
    backend.mode = 'throw'
    for (const [call, message] of [
      [
        () => store.get(ConformanceUser, { id: 1 }),
        'odd store get of model `ConformanceUser` by `{id:1}` failed in its backend: backend boom',
      ],
      [
        () => store.batchGet(ConformanceUser, [{ email: 'a@x' }, { id: 2 }, { id: 3 }]),
        'odd store get of model `ConformanceUser` by `{email:"a@x"}` (and 2 more) failed in its backend: backend boom',
      ],
      [() => store.put(makeUser(2)), 'odd store put of model `ConformanceUser` `{id:2}` failed in its backend: backend boom on set'],
      [
        () => store.batchPut([makeUser(3), makeUser(4)]),
        'odd store put of model `ConformanceUser` `{id:3}` (and 1 more) failed in its backend: backend boom on set',
      ],
      [() => store.delete(makeUser(1)), 'odd store delete of model `ConformanceUser` `{id:1}` failed in its backend: backend boom on set'],
    ] as const) {
      const err = await call().catch((e: unknown) => e)
      expect(isStockpyleError(err, 'E_STOCKPYLE')).toBe(true)
      expect((err as Error).message).toBe(message)
      expect(((err as Error).cause as Error).message).toMatch(/^backend boom/)
    }
  })

  it("a backend's StoreUnavailableError and partial failures name the model and the (first failed) key, keeping class, cause and fields", async () => {
    const cause = new Error('connect ECONNREFUSED 127.0.0.1:1')
    let failure: Error | undefined
    class Down extends MapBackend {
      override async getMany(keys: readonly string[], options?: { partial?: boolean }): Promise<(Uint8Array | undefined)[]> {
        const found = await super.getMany(keys)
        if (failure === undefined) return found
        if (options?.partial !== true) throw failure
        throw new PartialFailureError('down getMany: 1 of 2 key(s) on failed server(s) n2: n2 is down', {
          failed: [1],
          results: found.map((bytes, i) => (i === 1 ? undefined : bytes)),
          nodes: ['n2'],
          cause,
        })
      }
      override async setMany(entries: Parameters<MapBackend['setMany']>[0]): Promise<void> {
        if (failure !== undefined) throw failure
        return super.setMany(entries)
      }
    }
    const store = new KeyValueStore(new Down(), { name: 'down' })
    await store.batchPut([makeUser(1), makeUser(2)])
    for (const [thrown, shown] of [
      [
        new StoreUnavailableError('down store set: the connection failed: connect ECONNREFUSED 127.0.0.1:1', { cause }),
        ': the connection failed:',
      ],
      [new StoreUnavailableError('down getMany failed on 2 of 2 servers: n1, n2', { cause }), ' failed on 2 of 2 servers: n1, n2'],
    ] as const) {
      failure = thrown
      for (const [call, what] of [
        [() => store.get(ConformanceUser, { id: 1 }), 'get of model `ConformanceUser` by `{id:1}`'],
        [() => store.put(makeUser(3)), 'put of model `ConformanceUser` `{id:3}`'],
      ] as const) {
        const err = await call().catch((e: unknown) => e)
        expect(err).toBeInstanceOf(StoreUnavailableError)
        expect((err as Error).message.startsWith(`down store ${what}${shown}`)).toBe(true)
        expect((err as Error).cause).toBe(cause)
      }
    }
    failure = new StoreUnavailableError('partial')
    const partial = await store
      .batchGetEntries(ConformanceUser, [{ id: 1 }, { id: 2 }], { partial: true })
      .catch((e: unknown) => e as PartialFailureError)
    expect(partial).toBeInstanceOf(PartialFailureError)
    expect((partial as PartialFailureError).message).toMatch(
      /^down store get of model `ConformanceUser` by `\{id:2\}`: 1 item\(s\) on failed node\(s\) n2: /,
    )
    expect((partial as PartialFailureError).failed).toEqual([1])
    expect((partial as PartialFailureError).nodes).toEqual(['n2'])
    expect(((partial as PartialFailureError).results?.[0] as { value: ConformanceUser } | undefined)?.value.id).toBe(1)
  })

  it('a getMany answer of the wrong length (or not an array) is an error, never a miss', async () => {
    for (const mode of ['short', 'long', 'not an array'] as const) {
      const backend = new OddBackend()
      const store = new KeyValueStore(backend, { name: 'odd' })
      await store.batchPut([makeUser(1), makeUser(2)])
      backend.mode = mode
      for (const call of [
        () => store.get(ConformanceUser, { id: 1 }),
        () => store.batchGet(ConformanceUser, [{ id: 1 }, { id: 2 }]),
        () => store.get(ConformanceUser, { email: 'user1@example.com' }), // the alias is read right, its record not
      ]) {
        const err = await call().catch((e: unknown) => e)
        expect(isStockpyleError(err, 'E_STOCKPYLE')).toBe(true)
        // the store is named (two stores on one chain must be told apart)
        expect((err as Error).message).toMatch(/^odd store get: its backend's getMany answered .* for \d keys/)
      }
    }
  })

  it('in a chain, such a cache layer is a failing layer: reported, and the layer below answers', async () => {
    const backend = new OddBackend()
    const chain = new ChainedStore([new KeyValueStore(backend, { name: 'odd' }), new ProcessMemoryStore({ name: 'db' })])
    const events: CacheErrorEvent[] = []
    chain.events.on('cacheError', (e: CacheErrorEvent) => events.push(e))
    await chain.put(makeUser(3))
    backend.mode = 'short'
    expect(await chain.get(ConformanceUser, { id: 3 })).toEqual(makeUser(3))
    expect(events.map((e) => e.operation)).toContain('get')
    await chain.close()
  })

  it('a partial failure of several nodes names the call, not the code that words it, in its AggregateError cause', () => {
    const node = (name: string, failed: number[]) =>
      new PartialFailureError(`${name} is down`, { failed, results: undefined, nodes: [name], cause: new Error(`${name} is down`) })
    const err = partialFailure((failed) => `kv store get at ${failed.join(',')}`, [node('n1', [0]), node('n2', [2])], [2, 0])
    expect(err.failed).toEqual([0, 2])
    expect(err.cause).toBeInstanceOf(AggregateError)
    expect((err.cause as AggregateError).message).toBe('kv store get at 0,2 failures')
  })
})
