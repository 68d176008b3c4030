import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { type Cluster, Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { encodeTombstone } from '../../src/core/codec.js'
import { StoreUnavailableError } from '../../src/core/errors.js'
import { PartialFailureError } from '../../src/core/partial-failure.js'
import { ChainedStore, LoaderStore, type Lookup } from '../../src/index.js'
import { ClusterNodes } from '../../src/stores/redis/cluster-nodes.js'
import { type RedisBackend, RedisStore, redisSlot } from '../../src/stores/redis/index.js'
import { ConformanceUser, makeUser } from '../../src/testing/index.js'
import { freePort, type RedisCluster, type RedisServer, selectedStores, startRedis, startRedisCluster } from '../harness/servers.js'

const stores = selectedStores()

/** Calls of `command` per node since the last CONFIG RESETSTAT. */
async function calls(client: Redis, command: string): Promise<number> {
  const info = await client.info('commandstats')
  return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info)?.[1] ?? 0)
}

async function elapsed(work: () => Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const start = performance.now()
  try {
    await work()
    return { ms: performance.now() - start, error: undefined }
  } catch (error) {
    return { ms: performance.now() - start, error }
  }
}

describe.runIf(stores.has('redis'))('RedisStore against a private redis-server', () => {
  let server: RedisServer
  let admin: Redis
  beforeAll(async () => {
    server = await startRedis()
    admin = new Redis({ host: server.host, port: server.port, maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true })
    admin.on('error', () => {})
    await admin.connect()
  })
  afterAll(async () => {
    admin?.disconnect()
    await server?.stop()
  })

  it('a batchGet is one MGET (two with alternate keys), a batchPut one pipeline of SETs', async () => {
    const store = new RedisStore({ url: server.url, prefix: 'count', lifetime: 60 })
    const users = Array.from({ length: 100 }, (_, i) => makeUser(i))
    await admin.config('RESETSTAT')
    await store.batchPut(users)
    expect(await calls(admin, 'set')).toBe(300)
    await admin.config('RESETSTAT')
    const byId = await store.batchGet(
      ConformanceUser,
      users.map((u) => ({ id: u.id })),
    )
    expect(byId.map((u) => u?.id)).toEqual(users.map((u) => u.id))
    expect(await calls(admin, 'mget')).toBe(1)
    expect(await calls(admin, 'get')).toBe(0)
    await admin.config('RESETSTAT')
    await store.batchGet(
      ConformanceUser,
      users.map((u) => ({ email: u.email })),
    )
    expect(await calls(admin, 'mget')).toBe(2)
    await store.close()
  })

  it('a server that is not running: StoreUnavailableError at once', async () => {
    const store = new RedisStore({ host: '127.0.0.1', port: await freePort(), timeout: 2000 })
    const { ms, error } = await elapsed(() => store.get(ConformanceUser, { id: 1 }))
    expect(error).toBeInstanceOf(StoreUnavailableError)
    expect((error as StoreUnavailableError).code).toBe('E_STORE_UNAVAILABLE')
    // the message names the model and the key (the backend knows neither), the connection's error is the cause
    expect((error as Error).message).toMatch(
      /^redis\(127\.0\.0\.1:\d+\) store get of model `ConformanceUser` by `\{id:1\}`: the connection failed: connect ECONNREFUSED/,
    )
    expect((error as Error).cause).toBeInstanceOf(Error)
    expect(((error as Error).cause as Error).message).toMatch(/^connect ECONNREFUSED/)
    expect(ms).toBeLessThan(1000)
    const put = await store.batchPut([makeUser(2), makeUser(3)]).catch((e: unknown) => e)
    expect(put).toBeInstanceOf(StoreUnavailableError)
    expect((put as Error).message).toMatch(/^redis\(127\.0\.0\.1:\d+\) store put of model `ConformanceUser` `\{id:2\}` \(and 1 more\): /)
    expect(((put as Error).cause as Error).message).toMatch(/^connect ECONNREFUSED/)
    await store.close()
  })

  it('a killed server fails fast, and the store recovers after a restart', async () => {
    const store = new RedisStore({ url: server.url, prefix: 'kill', timeout: 1000 })
    await store.put(makeUser(1))
    server.kill('SIGKILL')
    // every operation fails fast while the server is down: none waits for the timeout
    for (let i = 0; i < 5; i++) {
      const { ms, error } = await elapsed(() => store.get(ConformanceUser, { id: 1 }))
      expect(error).toBeInstanceOf(StoreUnavailableError)
      expect(ms).toBeLessThan(500)
      await expect(store.put(makeUser(2))).rejects.toThrow(StoreUnavailableError)
    }
    await server.restart()
    const started = performance.now()
    await expect
      .poll(
        () =>
          store.put(makeUser(3)).then(
            () => 'ok',
            () => 'down',
          ),
        { timeout: 5000, interval: 20 },
      )
      .toBe('ok')
    expect(performance.now() - started).toBeLessThan(2000)
    // no persistence: the restarted server is empty
    expect(await store.get(ConformanceUser, { id: 1 })).toBeUndefined()
    expect((await store.get(ConformanceUser, { email: 'user3@example.com' }))?.id).toBe(3)
    await store.close()
  })

  it('a frozen server (SIGSTOP) makes operations reject within `timeout`, and they work again after SIGCONT', async () => {
    const store = new RedisStore({ url: server.url, prefix: 'freeze', timeout: 300 })
    await store.put(makeUser(1))
    server.kill('SIGSTOP')
    try {
      const read = await elapsed(() => store.get(ConformanceUser, { id: 1 }))
      expect(read.error).toBeInstanceOf(StoreUnavailableError)
      expect((read.error as Error).message).toMatch(/within 300 ms|timed out/i)
      expect(read.ms).toBeGreaterThanOrEqual(250)
      expect(read.ms).toBeLessThan(800)
      const write = await elapsed(() => store.batchPut([makeUser(2), makeUser(3)]))
      expect(write.error).toBeInstanceOf(StoreUnavailableError)
      expect(write.ms).toBeLessThan(800)
    } finally {
      server.kill('SIGCONT')
    }
    await expect
      .poll(
        () =>
          store.get(ConformanceUser, { id: 1 }).then(
            (u) => u?.id,
            () => 'down',
          ),
        { timeout: 5000, interval: 20 },
      )
      .toBe(1)
    await store.close()
  })

  it('closing a store and a bus whose server is frozen leaves nothing that keeps the process alive past `timeout`', async () => {
    const child = spawn(process.execPath, [fileURLToPath(new URL('../faults/fixtures/close-frozen-redis.mjs', import.meta.url))], {
      env: { ...process.env, NODE_OPTIONS: '', REDIS_URL: server.url },
      stdio: ['pipe', 'pipe', 'inherit'],
    })
    const lines: string[] = []
    const said = (line: string) =>
      new Promise<void>((resolve, reject) => {
        const check = () => (lines.includes(line) ? resolve() : undefined)
        child.stdout.on('data', (chunk: Buffer) => {
          lines.push(...chunk.toString().split('\n').filter(Boolean))
          check()
        })
        child.once('exit', () => (lines.includes(line) ? resolve() : reject(new Error(`child exited before "${line}": ${lines}`))))
        check()
      })
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    await said('ready')
    server.kill('SIGSTOP')
    try {
      const goAt = performance.now()
      child.stdin.end('go\n')
      await said('closed')
      const closedAt = performance.now()
      // QUIT waits `timeout` (300 ms) for a reply that never comes; then the sockets are dropped at once
      // (the store waited a second `timeout` for them to end gracefully).
      expect(closedAt - goAt).toBeLessThan(300 + 200)
      expect(await exited).toBe(0)
      // (ioredis's default disconnectTimeout kept a timer of 2,000 ms per client whose socket never closes)
      expect(performance.now() - closedAt).toBeLessThan(1200)
    } finally {
      server.kill('SIGCONT')
      child.kill()
    }
  })

  it('a store whose first connection hits a frozen server rejects within `timeout`', async () => {
    server.kill('SIGSTOP')
    const store = new RedisStore({ url: server.url, timeout: 300 })
    try {
      const { ms, error } = await elapsed(() => store.get(ConformanceUser, { id: 1 }))
      expect(error).toBeInstanceOf(StoreUnavailableError)
      expect(ms).toBeLessThan(800)
    } finally {
      server.kill('SIGCONT')
    }
    await expect
      .poll(
        () =>
          store.get(ConformanceUser, { id: 1 }).then(
            () => 'ok',
            () => 'down',
          ),
        { timeout: 5000, interval: 20 },
      )
      .toBe('ok')
    await store.close()
  })
  describe('a server out of memory (`maxmemory`, policy `noeviction`: every SET answers OOM, DEL still works)', () => {
    /** Fills the server with a foreign key, then lowers `maxmemory` below what it uses: writes are refused until `restore`. */
    const refuseWrites = async (): Promise<void> => {
      await admin.config('SET', 'maxmemory-policy', 'noeviction')
      await admin.set('foreign:ballast', Buffer.alloc(2 * 1024 * 1024, 1))
      const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1])
      await admin.config('SET', 'maxmemory', String(used - 512 * 1024))
      await expect(admin.set('foreign:probe', 'x')).rejects.toThrow(/^OOM/)
    }
    const restore = async (): Promise<void> => {
      await admin.config('SET', 'maxmemory', '0')
      await admin.del('foreign:ballast')
    }
    /** A database layer over a Map (the chain's last layer). */
    const database = () => {
      const rows = new Map<number, ConformanceUser>()
      const find = (l: Lookup<typeof ConformanceUser>) =>
        'id' in l ? rows.get(l.id as number) : [...rows.values()].find((u) => 'email' in l && u.email === l.email)
      const store = new LoaderStore({
        model: ConformanceUser,
        load: (lookups) => lookups.map((l) => find(l as Lookup<typeof ConformanceUser>)),
        save: (users) => {
          for (const u of users) rows.set(u.id, u)
        },
        remove: (users) => {
          for (const u of users) rows.delete(u.id)
        },
      })
      return { rows, store }
    }

    it("a chain's put and delete Redis refuses leave no old copy for another process to read, not even for tombstoneLifetime", async () => {
      const db = database()
      const writer = new ChainedStore([new RedisStore({ url: server.url, prefix: 'oom', tombstoneLifetime: 30 }), db.store])
      const errors: string[] = []
      writer.events.on('cacheError', (e) => errors.push(`${e.operation}: ${(e.error as { code?: string }).code}`))
      const reader = new RedisStore({ url: server.url, prefix: 'oom' })
      const user1 = makeUser(1)
      const user2 = makeUser(2)
      await writer.batchPut([user1, user2])
      expect((await reader.get(ConformanceUser, { id: 1 }))?.name).toBe(user1.name)
      await refuseWrites()
      try {
        await writer.put(Object.assign(makeUser(1), { name: 'changed' }))
        await writer.delete(user2)
        expect(errors[0]).toBe('put: E_STORE_UNAVAILABLE')
        // no copy of the old version, by any key
        expect(await reader.get(ConformanceUser, { id: 1 })).toBeUndefined()
        expect(await reader.get(ConformanceUser, { email: user1.email })).toBeUndefined()
        const other = new ChainedStore([new RedisStore({ url: server.url, prefix: 'oom' }), db.store])
        expect((await other.get(ConformanceUser, { id: 1 }))?.name).toBe('changed')
        // the put's failure opened the layer's breaker: the delete skipped it, and its repair (once the
        // breaker lets it through) deletes the copy instead of waiting 30 s to do without a tombstone
        const started = performance.now()
        await expect.poll(() => reader.get(ConformanceUser, { id: 2 }), { timeout: 5000, interval: 50 }).toBeUndefined()
        expect(performance.now() - started).toBeLessThan(2500)
        expect(await other.get(ConformanceUser, { id: 2 })).toBeUndefined()
        await other.close()
      } finally {
        await restore()
      }
      await writer.close()
      await reader.close()
    })

    it('a repair Redis refuses deletes the copies at once, keeps tombstones, and still fails', async () => {
      const store = new RedisStore({ url: server.url, prefix: 'oomrepair' })
      const backend = store.backend as RedisBackend
      const longer = encodeTombstone(Date.now() + 60_000)
      await backend.setMany([
        { key: 'oomrepair:copy', value: Buffer.from('a copy'), expiresAt: undefined },
        { key: 'oomrepair:tomb', value: longer, expiresAt: undefined },
      ])
      await refuseWrites()
      try {
        const error = await backend.repairMany(['oomrepair:copy', 'oomrepair:tomb', 'oomrepair:none'], Date.now() + 10_000).then(
          () => undefined,
          (e: unknown) => e,
        )
        expect(error).toBeInstanceOf(StoreUnavailableError)
        expect((error as Error).message).toMatch(/OOM/)
        expect(await admin.exists('oomrepair:copy')).toBe(0)
        expect(await admin.getBuffer('oomrepair:tomb')).toEqual(longer)
        expect(await admin.exists('oomrepair:none')).toBe(0)
      } finally {
        await restore()
        await admin.del('oomrepair:tomb')
      }
      await store.close()
    })
  })
})

/**
 * When a master's part runs late, the breaker decides from what the client holds for it (`held`, read
 * from ioredis on a real cluster; set here to what it reads in each case) and the order of the parts:
 * one connection per master, answered in order. No server: the timing is the point, on a fake clock.
 */
describe('ClusterNodes: a late part opens the breaker only when its master gave no sign of life', () => {
  const node = '10.0.0.1:7000'
  const group = new Map([[node, 1]])
  const never = () => new Promise<void>(() => {})
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'performance'] })
  })
  afterEach(() => {
    vi.useRealTimers()
  })
  const nodesHolding = (idle: boolean, retrying = 0) => {
    const nodes = new ClusterNodes('redis-cluster(x)', 250, 1000)
    nodes.held = () => ({ idle, retrying })
    nodes.describe = () => `${idle ? 0 : 3} command(s) awaiting a reply`
    return nodes
  }
  /** Runs a part that completes after `ms` (never when undefined); resolves with its failure's message. */
  const part = (nodes: ClusterNodes, ms?: number) =>
    nodes
      .run('get', group, () => (ms === undefined ? never() : new Promise<void>((resolve) => setTimeout(resolve, ms))))
      .then((failures) => failures[0]?.error.message)

  it('a master that answered a part sent before this one, then froze: "no answer", skipped from then on', async () => {
    const nodes = nodesHolding(false)
    // caller A's part (sent first) is answered at 10 ms; then the master freezes: B's part stays awaited
    const [a, b] = [part(nodes, 10), part(nodes)]
    await vi.advanceTimersByTimeAsync(260)
    expect(await a).toBeUndefined()
    expect(await b).toBe(`redis-cluster(x) store get on master ${node}: no answer within 250 ms (3 command(s) awaiting a reply)`)
    expect(nodes.down).toEqual([node])
    // the next call does not wait the timeout again
    const c = part(nodes)
    await vi.advanceTimersByTimeAsync(0)
    expect(await c).toMatch(`master ${node} failed without trying: it failed (redis-cluster(x) store get on master ${node}: no answer`)
  })

  it('a part sent after this one was answered: the master answers (this part is held elsewhere), not skipped', async () => {
    const nodes = nodesHolding(false, 2)
    const b = part(nodes)
    await vi.advanceTimersByTimeAsync(5)
    // sent after B's commands and answered: the master answered those too (B's wait on a redirection)
    const c = part(nodes, 10)
    await vi.advanceTimersByTimeAsync(260)
    expect(await c).toBeUndefined()
    expect(await b).toBe(
      `redis-cluster(x) store get on master ${node}, which answers: the part was not done after 250 ms, held for a redirection (the client holds 2 command(s), of any master, to retry after TRYAGAIN: a slot being migrated, its keys split between two masters, answers so to a multi-key command until the migration ends); the master is not skipped (3 command(s) awaiting a reply)`,
    )
    expect(nodes.down).toEqual([])
  })

  it('a master that awaits nothing from the client answered all it was sent: not skipped', async () => {
    const nodes = nodesHolding(true)
    const b = part(nodes)
    await vi.advanceTimersByTimeAsync(260)
    expect(await b).toBe(
      `redis-cluster(x) store get on master ${node}, which answers: the part was not done after 250 ms; the master is not skipped (0 command(s) awaiting a reply)`,
    )
    expect(nodes.down).toEqual([])
  })
})

describe.runIf(stores.has('redis-cluster'))('RedisStore against a private Redis Cluster', () => {
  let cluster: RedisCluster
  let admins: Redis[]
  beforeAll(async () => {
    cluster = await startRedisCluster(3)
    admins = cluster.nodes.map(
      (n) => new Redis({ host: n.host, port: n.port, maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true }),
    )
    for (const a of admins) a.on('error', () => {})
    await Promise.all(admins.map((a) => a.connect()))
  })
  afterAll(async () => {
    for (const a of admins ?? []) a.disconnect()
    await cluster?.stop()
  })

  const resetStats = () => Promise.all(admins.map((a) => a.config('RESETSTAT')))
  const totalCalls = async (command: string) => (await Promise.all(admins.map((a) => calls(a, command)))).reduce((x, y) => x + y, 0)

  it('computes the same hash slots as the server', async () => {
    const keys = ['a', 'stockpyle:ConformanceUser|id=n1', '{tag}x', 'x{}{y}', 'ü{ß}', 'k{}']
    for (const key of keys) expect(redisSlot(key)).toBe(await admins[0]!.cluster('KEYSLOT', key))
  })

  it('reads a batch with one MGET per hash slot, one pipeline per node', async () => {
    const store = new RedisStore({ cluster: cluster.nodes, prefix: 'slots' })
    const users = Array.from({ length: 100 }, (_, i) => makeUser(i))
    await store.batchPut(users)
    const recordKeys = users.map((u) => `slots:ConformanceUser|id=n${u.id}`)
    // the record keys as the store writes them exist on the server
    const client = store.client as Cluster
    expect(await client.exists(recordKeys[0]!)).toBe(1)
    const slots = new Set(recordKeys.map(redisSlot))
    await resetStats()
    const got = await store.batchGet(
      ConformanceUser,
      users.map((u) => ({ id: u.id })),
    )
    expect(got.map((u) => u?.id)).toEqual(users.map((u) => u.id))
    expect(await totalCalls('mget')).toBe(slots.size)
    expect(await totalCalls('get')).toBe(0)
    // every node served only the slots it owns
    for (const admin of admins) expect(await calls(admin, 'mget')).toBeGreaterThan(0)
    await store.close()
  })

  it('keys sharing a hash tag are read with a single MGET', async () => {
    const store = new RedisStore({ cluster: cluster.nodes, prefix: 'tags' })
    const backend = store.backend
    const keys = Array.from({ length: 50 }, (_, i) => `{same}:${i}`)
    await backend.setMany(keys.map((key) => ({ key, value: Buffer.from(key), expiresAt: undefined })))
    await resetStats()
    const got = await backend.getMany([...keys, keys[0]!])
    expect(got.map((v) => v?.toString())).toEqual([...keys, keys[0]])
    expect(await totalCalls('mget')).toBe(1)
    await backend.deleteMany(keys)
    await store.close()
  })

  it('a killed master makes operations fail within `timeout`; the store recovers after the node restarts', async () => {
    const store = new RedisStore({ cluster: cluster.nodes, prefix: 'ckill', timeout: 500 })
    const users = Array.from({ length: 30 }, (_, i) => makeUser(i))
    await store.batchPut(users)
    const victim = cluster.servers[1]!
    victim.kill('SIGKILL')
    const { ms, error } = await elapsed(() =>
      store.batchGet(
        ConformanceUser,
        users.map((u) => ({ id: u.id })),
      ),
    )
    expect(error).toBeInstanceOf(StoreUnavailableError)
    expect(ms).toBeLessThan(1500)
    await victim.restart()
    await cluster.waitHealthy()
    await expect
      .poll(
        () =>
          store.batchPut(users).then(
            () => 'ok',
            (e: Error) => e.message,
          ),
        { timeout: 10_000, interval: 50 },
      )
      .toBe('ok')
    expect(
      (
        await store.batchGet(
          ConformanceUser,
          users.map((u) => ({ id: u.id })),
        )
      ).map((u) => u?.id),
    ).toEqual(users.map((u) => u.id))
    await store.close()
  })

  it("a frozen master's timeout says what the client held for it: the connection's state and the commands awaiting a reply", async () => {
    const store = new RedisStore({ cluster: cluster.nodes, prefix: 'cfrozen', timeout: 300, retryDelay: 2000 })
    const users = Array.from({ length: 40 }, (_, i) => makeUser(i))
    await store.batchPut(users)
    const victim = cluster.servers[2]!
    const address = `${cluster.nodes[2]!.host}:${cluster.nodes[2]!.port}`
    const slots = (store.client as Cluster).slots
    const onVictim = users.filter((u) => slots[redisSlot(`cfrozen:ConformanceUser|id=n${u.id}`)]?.[0] === address)
    expect(onVictim.length).toBeGreaterThan(3)
    victim.kill('SIGSTOP')
    try {
      const { error } = await elapsed(() =>
        store.batchGet(
          ConformanceUser,
          onVictim.map((u) => ({ id: u.id })),
        ),
      )
      expect(error).toBeInstanceOf(StoreUnavailableError)
      expect((error as Error).message).toMatch(
        new RegExp(
          `master ${address}: no answer within 300 ms \\(cluster ready.*; connection ready, [1-9]\\d* command\\(s\\) awaiting a reply`,
        ),
      )
      // a master that gave no reply at all is skipped: its keys fail at once for `retryDelay`
      const next = await elapsed(() => store.get(ConformanceUser, { id: onVictim[0]!.id }))
      expect(next.error).toBeInstanceOf(StoreUnavailableError)
      expect((next.error as Error).message).toContain(`master ${address} failed without trying`)
      expect(next.ms).toBeLessThan(100)
    } finally {
      victim.kill('SIGCONT')
    }
    await cluster.waitHealthy()
    await store.close()
  })

  it('close() with every master frozen takes about `timeout`: QUIT gets no answer, then the sockets are dropped at once', async () => {
    const store = new RedisStore({ cluster: cluster.nodes, prefix: 'cclose', timeout: 300, retryDelay: 100 })
    await store.put(makeUser(1))
    for (const server of cluster.servers) server.kill('SIGSTOP')
    try {
      const { ms, error } = await elapsed(() => store.close())
      expect(error).toBeUndefined()
      // (taking the nodes after disconnect(), which empties the cluster's list, left them to end
      // gracefully: a second `timeout`, 600 ms in all)
      expect(ms).toBeLessThan(300 + 200)
    } finally {
      for (const server of cluster.servers) server.kill('SIGCONT')
    }
    await cluster.waitHealthy()
  })

  it('a partial failure names the keys sent to the failed master, also when the slot map moved them before it failed (a failover)', async () => {
    const store = new RedisStore({ cluster: cluster.nodes, prefix: 'cmoved', timeout: 300, retryDelay: 100 })
    const keys = Array.from({ length: 60 }, (_, i) => `cmoved:k${i}`)
    const entries = keys.map((key) => ({ key, value: Buffer.from('v1'), expiresAt: undefined }))
    await store.backend.setMany(entries)
    const victim = cluster.servers[2]!
    const address = (i: number) => `${cluster.nodes[i]!.host}:${cluster.nodes[i]!.port}`
    const slots = (store.client as Cluster).slots
    const onVictim = keys.flatMap((key, i) => (slots[redisSlot(key)]?.[0] === address(2) ? [i] : []))
    expect(onVictim.length).toBeGreaterThan(5)
    victim.kill('SIGSTOP')
    try {
      const writing = store.backend.setMany(entries.map((e) => ({ ...e, value: Buffer.from('v2') })))
      // the write went out grouped by the slot map of its start; a failover's slot refresh (started by
      // an earlier failure) lands before the frozen master's part fails: its slots now name another
      // master. Those keys were sent to the frozen one and may not hold v2: they must be named failed.
      slots.forEach((nodes, slot) => {
        if (nodes[0] === address(2)) slots[slot] = [address(0)]
      })
      const error = await writing.then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error).toBeInstanceOf(PartialFailureError)
      expect((error as PartialFailureError).nodes).toEqual([address(2)])
      expect((error as PartialFailureError).failed).toEqual(onVictim)
    } finally {
      victim.kill('SIGCONT')
    }
    await cluster.waitHealthy()
    await store.close()
  })

  it('a master that refuses with CLUSTERDOWN (its cluster lost the majority) fails its part at once, naming why', async () => {
    const store = new RedisStore({ cluster: cluster.nodes, prefix: 'cdown', timeout: 3000, retryDelay: 100 })
    const users = Array.from({ length: 60 }, (_, i) => makeUser(i))
    await store.batchPut(users)
    const first = `${cluster.nodes[0]!.host}:${cluster.nodes[0]!.port}`
    const slots = (store.client as Cluster).slots
    const onFirst = users.filter((u) => slots[redisSlot(`cdown:ConformanceUser|id=n${u.id}`)]?.[0] === first)
    expect(onFirst.length).toBeGreaterThan(5)
    const frozen = cluster.servers.slice(1)
    for (const s of frozen) s.kill('SIGSTOP')
    try {
      // the first master flags the others failing after cluster-node-timeout, then refuses every command
      await expect
        .poll(async () => /cluster_state:(\w+)/.exec(await admins[0]!.cluster('INFO'))?.[1], { timeout: 15_000, interval: 100 })
        .toBe('fail')
      const { ms, error } = await elapsed(() =>
        store.batchGet(
          ConformanceUser,
          onFirst.map((u) => ({ id: u.id })),
        ),
      )
      expect(error).toBeInstanceOf(StoreUnavailableError)
      expect((error as Error).message).toContain('CLUSTERDOWN')
      // an answer, not a silence: no waiting for the timeout (3 s) or for a slot refresh that asks a frozen master
      expect(ms).toBeLessThan(1000)
    } finally {
      for (const s of frozen) s.kill('SIGCONT')
    }
    await cluster.waitHealthy()
    await store.close()
  })

  it('a slot moved to another master (a reshard) is followed: a store idle meanwhile reads and writes at once, no master counted failed', async () => {
    const store = new RedisStore({ cluster: cluster.nodes, prefix: 'reshard', timeout: 2000, retryDelay: 10_000 })
    const users = Array.from({ length: 300 }, (_, i) => makeUser(i))
    await store.batchPut(users)
    const ids = await Promise.all(admins.map((a) => a.call('CLUSTER', 'MYID') as Promise<string>))
    const address = (i: number) => `${cluster.nodes[i]!.host}:${cluster.nodes[i]!.port}`
    const recordKey = (id: number) => `reshard:ConformanceUser|id=n${id}`
    const [from, to] = [0, 1]
    const owners = (store.client as Cluster).slots
    const moving = [...new Set(users.map((u) => redisSlot(recordKey(u.id))))].filter((s) => owners[s]?.[0] === address(from)).slice(0, 5)
    expect(moving).toHaveLength(5)
    const source = admins[from]!
    const target = admins[to]!
    for (const slot of moving) {
      await target.call('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', ids[from]!)
      await source.call('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', ids[to]!)
      const keys = (await source.call('CLUSTER', 'GETKEYSINSLOT', String(slot), '1000')) as string[]
      if (keys.length > 0)
        await source.call('MIGRATE', cluster.nodes[to]!.host, String(cluster.nodes[to]!.port), '', '0', '5000', 'KEYS', ...keys)
    }
    const lookups = users.map((u) => ({ id: u.id }))
    const started = performance.now()
    // mid-migration: the keys are on the target, the slots still the source's (it answers ASK)
    expect((await store.batchGet(ConformanceUser, lookups)).map((u) => u?.id)).toEqual(users.map((u) => u.id))
    await store.batchPut(users.map((u) => Object.assign(makeUser(u.id), { name: 'while moving' })))
    expect((await store.batchGet(ConformanceUser, lookups)).map((u) => u?.name)).toEqual(users.map(() => 'while moving'))
    for (const slot of moving)
      for (const admin of [target, source, ...admins]) await admin.call('CLUSTER', 'SETSLOT', String(slot), 'NODE', ids[to]!)
    // moved: the source answers MOVED
    expect((await store.batchGet(ConformanceUser, lookups)).map((u) => u?.id)).toEqual(users.map((u) => u.id))
    await store.batchPut(users.map((u) => Object.assign(makeUser(u.id), { name: 'after the move' })))
    expect((await store.batchGet(ConformanceUser, lookups)).map((u) => u?.name)).toEqual(users.map(() => 'after the move'))
    expect(performance.now() - started).toBeLessThan(1500)
    const moved = users.find((u) => moving.includes(redisSlot(recordKey(u.id))))!
    expect(await target.exists(recordKey(moved.id))).toBe(1)
    await store.close()
  })

  it('a slot whose keys a migration split (TRYAGAIN past `timeout`) fails only its part: the master is not skipped, its other slots answer at once', async () => {
    const store = new RedisStore({ cluster: cluster.nodes, prefix: 'ctryagain', timeout: 300, retryDelay: 10_000 })
    await store.put(makeUser(0)) // connects: the slot map is known
    const ids = await Promise.all(admins.map((a) => a.call('CLUSTER', 'MYID') as Promise<string>))
    const address = (i: number) => `${cluster.nodes[i]!.host}:${cluster.nodes[i]!.port}`
    const recordKey = (id: number) => `ctryagain:ConformanceUser|id=n${id}`
    const owners = (store.client as Cluster).slots
    const [from, to] = [2, 0]
    // two records in one slot of master `from`, and a record of that master in another slot
    const bySlot = new Map<number, number[]>()
    for (let id = 1; bySlot.size < 2 || ![...bySlot.values()].some((inSlot) => inSlot.length >= 2); id++) {
      const slot = redisSlot(recordKey(id))
      if (owners[slot]?.[0] === address(from)) bySlot.set(slot, [...(bySlot.get(slot) ?? []), id])
    }
    const [slot, pair] = [...bySlot].find(([, inSlot]) => inSlot.length >= 2)!
    const other = [...bySlot].find(([s]) => s !== slot)![1][0]!
    await store.batchPut([...pair, other].map((id) => makeUser(id)))
    const source = admins[from]!
    const target = admins[to]!
    await target.call('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', ids[from]!)
    await source.call('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', ids[to]!)
    try {
      // one of the slot's records has moved, the other not yet: a multi-key command on it gets TRYAGAIN
      await source.call('MIGRATE', cluster.nodes[to]!.host, String(cluster.nodes[to]!.port), '', '0', '5000', 'KEYS', recordKey(pair[0]!))
      const { ms, error } = await elapsed(() =>
        store.batchGet(
          ConformanceUser,
          pair.map((id) => ({ id })),
        ),
      )
      expect(error).toBeInstanceOf(StoreUnavailableError)
      expect((error as Error).message).toMatch(
        new RegExp(
          `master ${address(from)}, which answers: the part was not done after 300 ms, held for a redirection \\(the client holds [1-9]\\d* command\\(s\\), of any master, to retry after TRYAGAIN: a slot being migrated`,
        ),
      )
      expect(ms).toBeLessThan(300 + 200)
      // the master answered (TRYAGAIN): it is not skipped, and a key of another slot is read and written at once
      const started = performance.now()
      expect((await store.get(ConformanceUser, { id: other }))?.id).toBe(other)
      await store.put(Object.assign(makeUser(other), { name: 'after the split slot failed' }))
      expect((await store.get(ConformanceUser, { id: other }))?.name).toBe('after the split slot failed')
      expect(performance.now() - started).toBeLessThan(200)
    } finally {
      // finish the migration: the slot's other keys move, then every master says the slot is the target's
      for (;;) {
        const keys = (await source.call('CLUSTER', 'GETKEYSINSLOT', String(slot), '100')) as string[]
        if (keys.length === 0) break
        await source.call('MIGRATE', cluster.nodes[to]!.host, String(cluster.nodes[to]!.port), '', '0', '5000', 'REPLACE', 'KEYS', ...keys)
      }
      for (const admin of [target, source, ...admins]) await admin.call('CLUSTER', 'SETSLOT', String(slot), 'NODE', ids[to]!)
      await store.close()
    }
  })
})
