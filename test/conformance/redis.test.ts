import { afterEach, beforeEach, describe, inject, it } from 'vitest'
import { ChainedStore, ProcessMemoryStore } from '../../src/index.js'
import { RedisStore } from '../../src/stores/redis/index.js'
import { runStoreConformance } from '../../src/testing/index.js'
import { selectedStores } from '../harness/servers.js'

const common = { describe, test: it, beforeEach, afterEach }
const stores = selectedStores()

/**
 * Redis drops a key on its own clock (`PX`, from the time left by the store's clock at the write), which
 * the suite's manual clock does not move: once only the manual clock passed an entry's end, the server
 * still holds it and `SET NX` refuses an add over it until it drops it. These two cases run in real time
 * in test/stores/real-time-lifetime.test.ts instead.
 */
const serverClock =
  'Redis expires keys on its own clock, which the manual clock does not move; checked in real time in test/stores/real-time-lifetime.test.ts'
const skip = [
  { test: 'leases: a lease whose ttl has passed can be taken again (an add over an expired lease lands)', reason: serverClock },
  { test: 'a backfill lands over a copy whose lifetime has passed, under every key', reason: serverClock },
]

describe.runIf(stores.has('redis'))('redis (single node)', () => {
  runStoreConformance({
    ...common,
    name: 'RedisStore (single node)',
    createStore: (o) => new RedisStore({ ...o, url: inject('redis').url }),
    skip,
  })

  runStoreConformance({
    ...common,
    name: 'RedisStore (single node, no tombstones)',
    createStore: (o) => new RedisStore({ ...o, url: inject('redis').url, tombstoneLifetime: 0 }),
    skip,
  })

  runStoreConformance({
    ...common,
    name: 'ChainedStore([ProcessMemoryStore, RedisStore, ProcessMemoryStore])',
    createStore: (o) =>
      new ChainedStore([new ProcessMemoryStore(o), new RedisStore({ ...o, url: inject('redis').url }), new ProcessMemoryStore(o)]),
  })
})

describe.runIf(stores.has('redis-cluster'))('redis (cluster)', () => {
  runStoreConformance({
    ...common,
    name: 'RedisStore (cluster of 3 masters)',
    createStore: (o) => new RedisStore({ ...o, cluster: inject('redisCluster') }),
    skip,
  })
})
