import { Cluster, Redis } from 'ioredis'
import { MemcacheClient } from 'memcache-client'
import pg from 'pg'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { pidAlive, selectedStores, startMemcached, startPostgres, startRedis, startRedisCluster } from './servers.js'

const stores = selectedStores()

describe('test harness', () => {
  it('selectedStores() matches what the global setup provided', () => {
    expect([...stores].sort()).toEqual([...inject('stockpyleStores')].sort())
  })

  describe.runIf(stores.has('memcached'))('memcached', () => {
    it('starts, serves, restarts and stops', async () => {
      const mc = await startMemcached(2)
      try {
        expect(mc.servers).toHaveLength(2)
        const node = mc.nodes[0]!
        const client = new MemcacheClient({ server: mc.servers[0]!, cmdTimeout: 2000 })
        await client.set('harness', 'yes', { lifetime: 60 })
        expect((await client.get<string>('harness'))?.value).toBe('yes')
        const oldPid = node.pid
        node.kill('SIGKILL')
        await node.restart()
        expect(node.pid).not.toBe(oldPid)
        expect(pidAlive(oldPid)).toBe(false)
        await expect.poll(async () => (await client.get<string>('harness').catch(() => 'error')) ?? 'miss', { timeout: 5000 }).toBe('miss')
        client.shutdown()
      } finally {
        const pids = mc.nodes.map((n) => n.pid)
        await mc.stop()
        for (const pid of pids) expect(pidAlive(pid)).toBe(false)
      }
    })

    it('the global memcached servers answer', async () => {
      const servers = inject('memcachedServers')
      expect(servers).toHaveLength(3)
      for (const server of servers) {
        const client = new MemcacheClient({ server, cmdTimeout: 2000 })
        expect((await client.version()).join(' ')).toMatch(/\d+\.\d+/)
        client.shutdown()
      }
    })
  })

  describe.runIf(stores.has('redis'))('redis', () => {
    it('starts, freezes, thaws, restarts and stops', async () => {
      const server = await startRedis()
      const client = new Redis({ host: server.host, port: server.port, commandTimeout: 300, maxRetriesPerRequest: 0, lazyConnect: true })
      client.on('error', () => {}) // connection errors while the server is killed are expected
      try {
        await client.connect()
        expect(await client.ping()).toBe('PONG')
        server.kill('SIGSTOP')
        await expect(client.ping()).rejects.toThrow(/timed out/i)
        server.kill('SIGCONT')
        await expect.poll(() => client.ping().catch(() => 'down'), { timeout: 5000 }).toBe('PONG')
        const oldPid = server.pid
        await server.restart()
        expect(pidAlive(oldPid)).toBe(false)
        await expect.poll(() => client.ping().catch(() => 'down'), { timeout: 5000 }).toBe('PONG')
      } finally {
        client.disconnect()
        const pid = server.pid
        await server.stop()
        expect(pidAlive(pid)).toBe(false)
      }
    })

    it('the global redis answers', async () => {
      const { url } = inject('redis')
      const client = new Redis(url)
      expect(await client.ping()).toBe('PONG')
      client.disconnect()
    })
  })

  describe.runIf(stores.has('redis-cluster'))('redis cluster', () => {
    it('starts a healthy cluster and stops every node', async () => {
      const cluster = await startRedisCluster(3)
      const client = new Cluster(cluster.nodes)
      try {
        const keys = Array.from({ length: 50 }, (_, i) => `k${i}`)
        await Promise.all(keys.map((k) => client.set(k, k)))
        expect(await Promise.all(keys.map((k) => client.get(k)))).toEqual(keys)
        const info = await client.cluster('INFO')
        expect(String(info)).toContain('cluster_state:ok')
      } finally {
        client.disconnect()
        const pids = cluster.servers.map((s) => s.pid)
        await cluster.stop()
        for (const pid of pids) expect(pidAlive(pid)).toBe(false)
      }
    })

    it('the global cluster answers', async () => {
      const client = new Cluster(inject('redisCluster'))
      expect(await client.set('harness', '1')).toBe('OK')
      await client.quit()
    })
  })

  describe.runIf(stores.has('postgres'))('postgres', () => {
    const pools: pg.Pool[] = []
    afterAll(async () => {
      await Promise.all(pools.map((p) => p.end()))
    })

    it('starts, serves and stops', async () => {
      const server = await startPostgres()
      try {
        const client = new pg.Client({ connectionString: server.url })
        await client.connect()
        const { rows } = await client.query('select 1 + 1 as two')
        expect(rows[0].two).toBe(2)
        await client.end()
      } finally {
        const pid = server.pid
        await server.stop()
        expect(pidAlive(pid)).toBe(false)
      }
    })

    it('the global postgres answers', async () => {
      const pool = new pg.Pool({ connectionString: inject('postgresUrl'), max: 1 })
      pools.push(pool)
      const { rows } = await pool.query('show fsync')
      expect(rows[0].fsync).toBe('off')
    })
  })
})
