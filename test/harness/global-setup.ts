/**
 * vitest globalSetup: starts the servers the selected stores need (`STOCKPYLE_STORES`, default all:
 * memory, sqlite, memcached, redis, redis-cluster, postgres) and hands their addresses to tests via
 * `provide()` / `inject()`. A selected store whose server cannot start fails the whole run.
 */
import type { TestProject } from 'vitest/node'
import { requireBinaries, selectedStores, startMemcached, startPostgres, startRedis, startRedisCluster } from './servers.js'

export default async function setup({ provide }: Pick<TestProject, 'provide'>): Promise<() => Promise<void>> {
  const stores = selectedStores()
  provide('stockpyleStores', [...stores])
  const stops: (() => Promise<void>)[] = []
  const teardown = async (): Promise<void> => {
    const results = await Promise.allSettled(stops.map((stop) => stop()))
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed.length > 0)
      throw new AggregateError(
        failed.map((f) => f.reason),
        'test harness: stopping servers failed',
      )
  }
  const started = Date.now()
  // one apt-get for everything missing, before anything starts
  const binaries: string[] = []
  if (stores.has('memcached')) binaries.push('memcached')
  if (stores.has('redis') || stores.has('redis-cluster')) binaries.push('redis-server', 'redis-cli')
  if (stores.has('postgres')) binaries.push('postgres', 'initdb', 'pg_isready')
  if (binaries.length > 0) requireBinaries(...binaries)
  const tasks: Promise<void>[] = []
  if (stores.has('memcached')) {
    tasks.push(
      startMemcached(3).then((m) => {
        stops.push(async () => {
          // items lost early (evicted, moved, flushed) make lifetime and coherence tests fail: say so
          const stats = await m.stats().catch((err: unknown) => `unknown (${String(err)})`)
          console.log(`test harness: the shared memcached servers at the end: ${JSON.stringify(stats)}`)
          await m.stop()
        })
        provide('memcachedServers', m.servers)
      }),
    )
  }
  if (stores.has('redis')) {
    tasks.push(
      startRedis().then((r) => {
        stops.push(r.stop)
        provide('redis', { host: r.host, port: r.port, url: r.url })
      }),
    )
  }
  if (stores.has('redis-cluster')) {
    tasks.push(
      startRedisCluster(3).then((c) => {
        stops.push(c.stop)
        provide('redisCluster', c.nodes)
      }),
    )
  }
  if (stores.has('postgres')) {
    tasks.push(
      startPostgres().then((p) => {
        stops.push(p.stop)
        provide('postgresUrl', p.url)
      }),
    )
  }
  const results = await Promise.allSettled(tasks)
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed.length > 0) {
    await teardown().catch(() => {})
    const reasons = failed.map((f) => (f.reason instanceof Error ? f.reason.message : String(f.reason)))
    throw new Error(`test harness: could not start the servers for STOCKPYLE_STORES=${[...stores].join(',')}:\n${reasons.join('\n\n')}`)
  }
  if (tasks.length > 0) console.log(`test harness: servers for ${[...stores].join(', ')} ready in ${Date.now() - started} ms`)
  return teardown
}
