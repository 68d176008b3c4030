import { Cluster, Redis } from 'ioredis'
import { expect, inject } from 'vitest'
import type { KeyValueBackend } from '../../src/contracts/key-value-backend.js'
import { MemcacheBackend } from '../../src/stores/memcache/index.js'
import { RedisBackend } from '../../src/stores/redis/index.js'
import { askMemcached } from '../harness/memcached-command.js'
import { selectedStores } from '../harness/servers.js'

/** A key-value backend on a real server, and a way to store there what another writer's client would. */
export interface BackendTarget<B extends KeyValueBackend = KeyValueBackend> {
  readonly backend: B
  /** Stores under `key` another writer's value its client library would not hand back as plain bytes (another type, other flags); absent for an in-process backend. */
  readonly unreadable?: (key: string) => Promise<void>
  /** Ms until `key` expires on the server (-1: never), where the server tells. */
  readonly pttl?: (key: string) => Promise<number>
  readonly close: () => Promise<void>
}

const redisTarget = (client: Redis | Cluster): BackendTarget => ({
  backend: new RedisBackend({ client, ownsClient: false, timeout: 2000, clock: { now: Date.now }, name: 'redis' }),
  unreadable: async (key) => {
    await client.hset(key, 'field', 'value')
  },
  pttl: (key) => client.pttl(key),
  close: async () => {
    await client.quit()
  },
})

const memcacheTarget = (servers: string[]): BackendTarget => {
  const backend = new MemcacheBackend({ servers, timeout: 2000 })
  return {
    backend,
    // flags 1 (memcache-client's 'compressed', python-memcached's pickles): read as its bytes all the same
    unreadable: async (key) => {
      expect(await askMemcached(backend.serverFor(key), `set ${key} 1 0 3\r\n{{{\r\n`)).toBe('STORED\r\n')
    },
    close: () => backend.close(),
  }
}

/**
 * The backends on the servers STOCKPYLE_STORES selects, by name: Redis (single node, cluster) and a
 * memcached pool of 1 and of 3 servers. Each is made when a test file's `beforeAll` calls it.
 */
export function serverTargets(): [string, () => BackendTarget][] {
  const stores = selectedStores()
  const targets: [string, () => BackendTarget][] = []
  if (stores.has('redis')) targets.push(['RedisBackend (single node)', () => redisTarget(new Redis(inject('redis').url))])
  if (stores.has('redis-cluster')) targets.push(['RedisBackend (cluster)', () => redisTarget(new Cluster(inject('redisCluster')))])
  if (stores.has('memcached')) {
    targets.push(['MemcacheBackend (1 server)', () => memcacheTarget(inject('memcachedServers').slice(0, 1))])
    targets.push(['MemcacheBackend (3 servers)', () => memcacheTarget(inject('memcachedServers'))])
  }
  return targets
}
