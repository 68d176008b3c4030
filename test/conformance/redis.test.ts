import { afterEach, beforeEach, describe, inject, it } from 'vitest'
import { ChainedStore, ProcessMemoryStore } from '../../src/index.js'
import { RedisStore } from '../../src/stores/redis/index.js'
import { runStoreConformance } from '../../src/testing/index.js'
import { selectedStores } from '../harness/servers.js'

const common = { describe, test: it, beforeEach, afterEach }
const stores = selectedStores()

describe.runIf(stores.has('redis'))('redis (single node)', () => {
  runStoreConformance({
    ...common,
    name: 'RedisStore (single node)',
    createStore: (o) => new RedisStore({ ...o, url: inject('redis').url }),
  })

  runStoreConformance({
    ...common,
    name: 'RedisStore (single node, no tombstones)',
    createStore: (o) => new RedisStore({ ...o, url: inject('redis').url, tombstoneLifetime: 0 }),
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
  })
})
