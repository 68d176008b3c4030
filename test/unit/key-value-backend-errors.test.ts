/**
 * A custom KeyValueBackend's failures reach callers as stockpyle errors: its own error wrapped (the
 * store and operation named, the error as the cause), and a `getMany` that does not answer one value
 * per key refused as the backend's bug — before, a short answer read as misses and a raw Error passed
 * through untyped.
 */
import { describe, expect, it } from 'vitest'
import { type CacheErrorEvent, ChainedStore, isStockpyleError, KeyValueStore, ProcessMemoryStore } from '../../src/index.js'
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
  it('its own errors are wrapped in a StockpyleError naming the store and operation, the error as cause', async () => {
    const backend = new OddBackend()
    const store = new KeyValueStore(backend, { name: 'odd' })
    await store.put(makeUser(1))
    backend.mode = 'throw'
    for (const call of [() => store.get(ConformanceUser, { id: 1 }), () => store.put(makeUser(2))]) {
      const err = await call().catch((e: unknown) => e)
      expect(isStockpyleError(err, 'E_STOCKPYLE')).toBe(true)
      expect((err as Error).message).toMatch(/^odd store (get|put) failed in its backend: backend boom/)
      expect(((err as Error).cause as Error).message).toMatch(/^backend boom/)
    }
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
})
