import { afterAll, describe, expect, inject, it } from 'vitest'
import { ChainedStore, ProcessMemoryStore, type Store } from '../../src/index.js'
import { MemcacheStore } from '../../src/stores/memcache/index.js'
import { RedisStore } from '../../src/stores/redis/index.js'
import { ConformanceUser, makeUser } from '../../src/testing/index.js'
import { selectedStores } from '../harness/servers.js'

/**
 * The host's event loop blocked past a store's `timeout` (a long synchronous task, a GC pause) while
 * the server's reply came in: Node runs the due deadline timer before that I/O, and a deadline taken
 * at its word calls a healthy server down (its keys go to the database for `retryDelay`, the chain's
 * breaker opens). The reply must win: no error, no server marked down.
 */

const TIMEOUT = 200
const STALLS = 4
const stores = selectedStores()
let seq = 0
const prefix = (): string => `stall${process.pid}x${++seq}`

/** Blocks the event loop for `ms` (the request is already written to the socket). */
function stall(ms: number): void {
  const until = performance.now() + ms
  while (performance.now() < until) {}
}

/** Starts `call`, lets its request go out (microtasks only: no I/O is processed), blocks, then awaits it. */
async function stalled<T>(call: () => Promise<T>): Promise<PromiseSettledResult<T>> {
  const pending = Promise.allSettled([call()])
  for (let i = 0; i < 20; i++) await Promise.resolve()
  stall(TIMEOUT * 1.5)
  return ((await pending) as PromiseSettledResult<T>[])[0] as PromiseSettledResult<T>
}

const users = Array.from({ length: 30 }, (_, i) => makeUser(i))
const ids = users.map((u) => ({ id: u.id }))
const closing: Store[] = []
afterAll(async () => {
  for (const s of closing) await s.close()
})

async function expectReplyWins(store: Store): Promise<void> {
  await store.batchPut(users)
  for (let i = 0; i < STALLS; i++) {
    const one = await stalled(() => store.get(ConformanceUser, { id: users[i]?.id as number }))
    expect(one.status === 'rejected' ? String(one.reason) : '').toBe('')
    expect((one as PromiseFulfilledResult<ConformanceUser | undefined>).value?.id).toBe(users[i]?.id)
    const many = await stalled(() => store.batchGet(ConformanceUser, ids))
    expect(many.status === 'rejected' ? String(many.reason) : '').toBe('')
    expect((many as PromiseFulfilledResult<(ConformanceUser | undefined)[]>).value.map((u) => u?.id)).toEqual(ids.map((l) => l.id))
  }
}

describe('a blocked event loop is not a timeout when the reply came in meanwhile', () => {
  it.runIf(stores.has('memcached'))('MemcacheStore, a pool of three: no server is marked down', async () => {
    const store = new MemcacheStore({ servers: inject('memcachedServers'), prefix: prefix(), timeout: TIMEOUT, retryDelay: 10_000 })
    closing.push(store)
    await expectReplyWins(store)
    expect(store.stats().map((s) => s.errors)).toEqual([0, 0, 0])
  })

  it.runIf(stores.has('redis'))('RedisStore, one node', async () => {
    const store = new RedisStore({ url: inject('redis').url, prefix: prefix(), timeout: TIMEOUT })
    closing.push(store)
    await expectReplyWins(store)
  })

  it.runIf(stores.has('redis-cluster'))('RedisStore, a cluster: no master is marked down', async () => {
    const store = new RedisStore({ cluster: inject('redisCluster'), prefix: prefix(), timeout: TIMEOUT, retryDelay: 10_000 })
    closing.push(store)
    await expectReplyWins(store)
  })

  it.runIf(stores.has('redis'))('a chain’s layer timeout: no failure counted, the circuit stays closed', async () => {
    const cache = new RedisStore({ url: inject('redis').url, prefix: prefix(), timeout: 10_000 })
    const below = new ProcessMemoryStore({})
    await below.batchPut(users)
    const chain = new ChainedStore([cache, below], { timeout: TIMEOUT })
    closing.push(chain)
    await cache.batchPut(users)
    for (let i = 0; i < STALLS; i++) {
      const many = await stalled(() => chain.batchGet(ConformanceUser, ids))
      expect(many.status === 'rejected' ? String(many.reason) : '').toBe('')
    }
    expect(chain.stats()[0]).toMatchObject({ errors: 0, skipped: 0, hits: STALLS * ids.length })
  })
})
