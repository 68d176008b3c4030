import { afterEach, beforeEach, describe, it } from 'vitest'
import { ChainedStore, KeyValueStore, ProcessMemoryStore } from '../../src/index.js'
import { MapBackend, runStoreConformance } from '../../src/testing/index.js'

const common = { describe, test: it, beforeEach, afterEach }

runStoreConformance({
  ...common,
  name: 'KeyValueStore(MapBackend)',
  createStore: (o) => new KeyValueStore(new MapBackend(() => o.clock.now()), o),
})

runStoreConformance({
  ...common,
  name: 'KeyValueStore(MapBackend) without tombstones',
  createStore: (o) => new KeyValueStore(new MapBackend(() => o.clock.now()), { ...o, tombstoneLifetime: 0 }),
})

runStoreConformance({
  ...common,
  name: 'ChainedStore([memory, KeyValueStore(MapBackend), memory])',
  createStore: (o) =>
    new ChainedStore([new ProcessMemoryStore(o), new KeyValueStore(new MapBackend(() => o.clock.now()), o), new ProcessMemoryStore(o)]),
})
