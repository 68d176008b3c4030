import type { MemcacheClient } from 'memcache-client'
import type { MemcacheStore } from '../../stores/memcache/memcache-store.js'
import { BENCH_TTL_SECONDS, type MemcachedEnv, type OpenContext } from './bench-env.js'
import { BenchSetupError, needed } from './bench-setup-error.js'
import { answered, CONNECT_TIMEOUT_MS, unlessAborted } from './connect-timeout.js'

/**
 * Opens the floor's memcache-client clients, one per server, and asks every server its version, so
 * that a server that cannot be reached (or does not answer within 5 s) fails the run before it
 * starts, not in the middle of a scenario. What the run writes expires after its lifetime.
 * @throws BenchSetupError naming the first server of `servers` that did not answer
 */
export async function openMemcached(servers: readonly string[], run: OpenContext): Promise<MemcachedEnv> {
  const packages = 'memcache-client hashring'
  const { MemcacheClient: Client } = await needed(() => import('memcache-client'), packages, 'memcached')
  const { default: Ring } = await needed(() => import('hashring'), packages, 'memcached')
  const { MemcacheStore } = await needed(() => import('../../stores/memcache/index.js'), packages, 'memcached')
  const clients = new Map<string, MemcacheClient>()
  for (const server of servers) {
    clients.set(
      server,
      new Client({ server: { server, maxConnections: 1 }, noDelay: true, cmdTimeout: 5000, connectTimeout: CONNECT_TIMEOUT_MS }),
    )
  }
  run.onClose(() => {
    for (const c of clients.values()) c.shutdown()
  })
  const ring =
    servers.length > 1 ? new Ring(Object.fromEntries(servers.map((s) => [s, 1])), 'md5', { 'max cache size': 10_000 }) : undefined
  const versions = await unlessAborted(
    Promise.allSettled(
      servers.map((server) =>
        answered(
          (clients.get(server) as MemcacheClient).version().catch((err: Error) => {
            throw new BenchSetupError(`cannot connect to memcached at ${server}: ${err.message}`)
          }),
          `memcached at ${server}`,
        ),
      ),
    ),
    run.signal,
  )
  for (const v of versions) if (v.status === 'rejected') throw v.reason
  const first = versions[0] as PromiseFulfilledResult<string[]>
  const opened: MemcacheStore[] = []
  run.onClose(async () => {
    await Promise.allSettled(opened.map((s) => s.close()))
  })
  const memcached: MemcachedEnv = {
    servers,
    clients,
    ring,
    version: `memcached ${String(first.value.join(' ')).replace(/^VERSION\s*/, '')}`,
    clientFor: (key) => clients.get(ring === undefined ? (servers[0] as string) : (ring.get(key) as string)) as MemcacheClient,
    newStore: () => {
      run.notClosed()
      const store = new MemcacheStore({ servers: [...servers], prefix: run.prefix, lifetime: BENCH_TTL_SECONDS, timeout: 5000 })
      opened.push(store)
      return store
    },
  }
  run.log(`  memcached: ${servers.join(', ')} (${memcached.version})`)
  return memcached
}
