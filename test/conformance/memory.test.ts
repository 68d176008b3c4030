import { afterEach, beforeEach, describe, it } from 'vitest'
import { AsyncLocalStore, ChainedStore, ProcessMemoryStore } from '../../src/index.js'
import { type ConformanceStoreOptions, FaultStore, runStoreConformance } from '../../src/testing/index.js'

const common = { describe, test: it, beforeEach, afterEach }

runStoreConformance({ ...common, name: 'ProcessMemoryStore', createStore: (o) => new ProcessMemoryStore(o) })

runStoreConformance({
  ...common,
  name: 'ProcessMemoryStore (max 1000 objects)',
  createStore: (o) => new ProcessMemoryStore({ ...o, max: 1000 }),
})

runStoreConformance({
  ...common,
  name: 'AsyncLocalStore (inside a scope)',
  createStore: (o) => new AsyncLocalStore(o),
  scope: (store, body) => (store as AsyncLocalStore).run(body),
})

const memoryChain = (o: ConformanceStoreOptions) => new ChainedStore([new ProcessMemoryStore(o), new ProcessMemoryStore(o)])
runStoreConformance({ ...common, name: 'ChainedStore([memory, memory])', createStore: memoryChain })

runStoreConformance({
  ...common,
  name: 'ChainedStore([memory, ChainedStore([memory, memory])]) (nested)',
  createStore: (o) => new ChainedStore([new ProcessMemoryStore(o), memoryChain(o)]),
})

runStoreConformance({
  ...common,
  name: 'ChainedStore([failing memory, memory]) (a dead cache layer is skipped)',
  createStore: (o) => {
    const dead = new FaultStore(new ProcessMemoryStore(o))
    dead.fail()
    return new ChainedStore([dead, new ProcessMemoryStore(o)])
  },
  skip: [
    {
      test: 'stale reads: an expired copy comes back only with { stale: true }, only within grace, never after a delete',
      reason: 'stale copies come from the cache layers above the last, and the only one is dead',
    },
  ],
})
