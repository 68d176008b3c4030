/**
 * The peer libraries compared by `npm run bench`, each configured as its documentation recommends
 * for a memory tier in front of Redis. Bench-only: the `stockpyle bench` CLI never imports this file.
 * Versions are pinned in bench/package.json.
 */

import { readFileSync } from 'node:fs'
import { createKeyv as createKeyvRedis, default as KeyvRedis } from '@keyv/redis'
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { redisBusDriver, redisDriver } from 'bentocache/drivers/redis'
import { createCache } from 'cache-manager'
import { Cacheable, createKeyv } from 'cacheable'

const versionOf = (name) => JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url), 'utf8')).version

function connectionOf(url) {
  const u = new URL(url)
  return { host: u.hostname, port: Number(u.port || 6379) }
}

/** @type {import('../dist/cli/bench/peer.js').PeerLibrary} */
const bentocache = {
  name: 'BentoCache',
  version: versionOf('bentocache'),
  config:
    "bentostore().useL1Layer(memoryDriver({ maxSize: '64mb', maxItems: 100_000 })).useL2Layer(redisDriver({ connection })).useBus(redisBusDriver({ connection })) — the documented multi-tier setup, with the bus that keeps L1s of several instances coherent",
  async create({ redisUrl, namespace, ttlSeconds }) {
    const connection = connectionOf(redisUrl)
    const bento = new BentoCache({
      default: 'cache',
      ttl: ttlSeconds * 1000,
      stores: {
        cache: bentostore()
          .useL1Layer(memoryDriver({ maxSize: '64mb', maxItems: 100_000 }))
          .useL2Layer(redisDriver({ connection, prefix: namespace }))
          .useBus(redisBusDriver({ connection })),
      },
    })
    return {
      get: (key) => bento.get({ key }),
      set: async (key, value) => {
        await bento.set({ key, value })
      },
      getMany: undefined,
      getOrSet: (key, load) => bento.getOrSet({ key, factory: load }),
      close: () => bento.disconnectAll(),
    }
  },
}

/** @type {import('../dist/cli/bench/peer.js').PeerLibrary} */
const cacheManager = {
  name: 'cache-manager',
  version: `${versionOf('cache-manager')} + keyv ${versionOf('keyv')} + @keyv/redis ${versionOf('@keyv/redis')}`,
  config:
    "createCache({ stores: [createKeyv() (cacheable's CacheableMemory), createKeyv(redisUrl) (@keyv/redis)] }) — the README's multi-store setup",
  async create({ redisUrl, namespace, ttlSeconds }) {
    const memory = createKeyv({ lruSize: 100_000 })
    const redis = createKeyvRedis(redisUrl, { namespace })
    const cache = createCache({ stores: [memory, redis], ttl: ttlSeconds * 1000 })
    return {
      get: (key) => cache.get(key),
      set: async (key, value) => {
        await cache.set(key, value)
      },
      getMany: (keys) => cache.mget(keys),
      getOrSet: (key, load) => cache.wrap(key, load),
      close: async () => {
        await cache.disconnect()
      },
    }
  },
}

/** @type {import('../dist/cli/bench/peer.js').PeerLibrary} */
const cacheable = {
  name: 'cacheable',
  version: `${versionOf('cacheable')} + @keyv/redis ${versionOf('@keyv/redis')}`,
  config: "new Cacheable({ secondary: new KeyvRedis(redisUrl) }) — the README's layer 1 + layer 2 setup (primary: CacheableMemory)",
  async create({ redisUrl, namespace, ttlSeconds }) {
    const secondary = new KeyvRedis(redisUrl, { namespace })
    // Cacheable wraps the adapter in a Keyv of its own, which replaces the adapter's namespace with
    // Keyv's default ('keyv'): the namespace must be given to Cacheable, or every instance shares keys.
    const cache = new Cacheable({ secondary, ttl: ttlSeconds * 1000, namespace })
    return {
      get: (key) => cache.get(key),
      set: async (key, value) => {
        await cache.set(key, value)
      },
      getMany: (keys) => cache.getMany(keys),
      getOrSet: (key, load) => cache.getOrSet(key, load),
      close: () => cache.disconnect(),
    }
  },
}

/** Every peer, in table order. */
export const peers = [bentocache, cacheManager, cacheable]

/** Peers measured by S7 in a child process (bench/peers-memory.js). */
export const memoryChildren = [
  {
    library: 'BentoCache',
    role: 'peer',
    script: new URL('./peers-memory.js', import.meta.url).pathname,
    label: "BentoCache memoryDriver({ maxSize: '64mb', maxItems: 1e6 }) (its L1 alone)",
  },
]
