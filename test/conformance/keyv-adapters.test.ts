/**
 * KeyvStore over the real Keyv adapters people use, against the harness's real servers: each adapter
 * alone and as the middle layer of a chain. One Keyv per adapter is shared by every test of this file
 * (tests are isolated by prefix) and disconnected at the end.
 */
import KeyvMemcache from '@keyv/memcache'
import KeyvPostgres from '@keyv/postgres'
import KeyvRedis from '@keyv/redis'
import KeyvSqlite from '@keyv/sqlite'
import Keyv from 'keyv'
import { afterAll, afterEach, beforeEach, describe, inject, it } from 'vitest'
import { ChainedStore, ProcessMemoryStore } from '../../src/index.js'
import { KeyvStore } from '../../src/stores/keyv/index.js'
import { runStoreConformance } from '../../src/testing/index.js'
import { selectedStores } from '../harness/servers.js'

const common = { describe, test: it, beforeEach, afterEach }
const stores = selectedStores()

/** Every Keyv adapter of the matrix: the harness store it needs and how to connect to it. */
const adapters: { name: string; store: string; connect: () => Keyv }[] = [
  { name: '@keyv/redis', store: 'redis', connect: () => new Keyv(new KeyvRedis(inject('redis').url)) },
  { name: '@keyv/sqlite', store: 'sqlite', connect: () => new Keyv(new KeyvSqlite('sqlite://:memory:')) },
  {
    name: '@keyv/postgres',
    store: 'postgres',
    connect: () => new Keyv(new KeyvPostgres({ uri: inject('postgresUrl'), table: 'keyv_conformance' })),
  },
  { name: '@keyv/memcache', store: 'memcached', connect: () => new Keyv(new KeyvMemcache(inject('memcachedServers').join(','))) },
]

for (const adapter of adapters) {
  describe.runIf(stores.has(adapter.store))(`KeyvStore over ${adapter.name}`, () => {
    let keyv: Keyv | undefined
    const shared = (): Keyv => {
      keyv ??= adapter.connect()
      return keyv
    }
    afterAll(async () => {
      await keyv?.disconnect()
    })

    runStoreConformance({
      ...common,
      name: `KeyvStore (${adapter.name})`,
      createStore: (o) => new KeyvStore({ ...o, keyv: shared() }),
    })

    runStoreConformance({
      ...common,
      name: `ChainedStore([memory, KeyvStore (${adapter.name}), memory])`,
      createStore: (o) => new ChainedStore([new ProcessMemoryStore(o), new KeyvStore({ ...o, keyv: shared() }), new ProcessMemoryStore(o)]),
    })
  })
}
