import { afterEach, beforeEach, describe, inject, it } from 'vitest'
import { ChainedStore, ProcessMemoryStore } from '../../src/index.js'
import { MemcacheStore } from '../../src/stores/memcache/index.js'
import { runStoreConformance } from '../../src/testing/index.js'
import { selectedStores } from '../harness/servers.js'

const common = { describe, test: it, beforeEach, afterEach }

describe.runIf(selectedStores().has('memcached'))('memcached', () => {
  runStoreConformance({
    ...common,
    name: 'MemcacheStore (1 server)',
    createStore: (o) => new MemcacheStore({ ...o, servers: inject('memcachedServers').slice(0, 1) }),
  })

  runStoreConformance({
    ...common,
    name: 'MemcacheStore (3 servers, ketama)',
    createStore: (o) => new MemcacheStore({ ...o, servers: inject('memcachedServers') }),
  })

  runStoreConformance({
    ...common,
    name: 'ChainedStore([memory, MemcacheStore (3 servers), memory])',
    createStore: (o) =>
      new ChainedStore([
        new ProcessMemoryStore(o),
        new MemcacheStore({ ...o, servers: inject('memcachedServers') }),
        new ProcessMemoryStore(o),
      ]),
  })
})
