import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { envelopeKind, KIND_TOMBSTONE } from '../../src/core/codec.js'
import { StoreUnavailableError } from '../../src/core/errors.js'
import { keysOfObject } from '../../src/core/key-encoding.js'
import { describeModel } from '../../src/core/registry.js'
import { ChainedStore, ProcessMemoryStore } from '../../src/index.js'
import { MemcacheStore, type MemcacheStoreOptions } from '../../src/stores/memcache/index.js'
import { ConformanceUser, makeUser } from '../../src/testing/index.js'
import { type MemcachedServers, selectedStores, startMemcached } from '../harness/servers.js'

let prefixes = 0
const uniquePrefix = (): string => `mf${process.pid}x${++prefixes}`
const userKey = (prefix: string, id: number): string => `${prefix}:ConformanceUser|id=n${id}`
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Polls `check` every 25 ms until it returns true (or resolves true); fails after `ms`. */
async function until(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting until ${what}`)
    await sleep(25)
  }
}

/** `mg <key> t` straight to one server: true when the key is there. */
function present(server: string, key: string): Promise<boolean> {
  const [host, port] = server.split(':') as [string, string]
  return new Promise((resolve, reject) => {
    let text = ''
    const socket = connect({ host, port: Number(port) })
    socket.setTimeout(2000, () => {
      socket.destroy()
      reject(new Error(`no reply from ${server}`))
    })
    socket.once('connect', () => socket.write(`mg ${key} t\r\n`))
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1')
      if (text.endsWith('\r\n')) {
        socket.destroy()
        resolve(text.startsWith('HD'))
      }
    })
    socket.once('error', reject)
  })
}

async function elapsed<T>(fn: () => Promise<T>): Promise<{ ms: number; result: PromiseSettledResult<T> }> {
  const t0 = performance.now()
  const [result] = await Promise.allSettled([fn()])
  return { ms: performance.now() - t0, result: result as PromiseSettledResult<T> }
}

/** A timed call for an assertion's message: how long it took and how it settled. */
function shown(call: { ms: number; result: PromiseSettledResult<unknown> }): string {
  const how = call.result.status === 'fulfilled' ? 'fulfilled' : `rejected: ${(call.result.reason as Error)?.message}`
  return `${call.ms.toFixed(1)} ms, ${how}`
}

describe.runIf(selectedStores().has('memcached'))('MemcacheStore with failing servers (3 memcached processes)', () => {
  let pool: MemcachedServers
  const stores: MemcacheStore[] = []
  const users = Array.from({ length: 300 }, (_, i) => makeUser(i))
  const ids = users.map((u) => ({ id: u.id }))

  beforeAll(async () => {
    pool = await startMemcached(3)
  })
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()))
    await pool?.stop()
  })

  function make(options: Partial<MemcacheStoreOptions> = {}): { store: MemcacheStore; prefix: string; errors: StoreUnavailableError[] } {
    const prefix = uniquePrefix()
    const errors: StoreUnavailableError[] = []
    const store = new MemcacheStore({ servers: pool.servers, prefix, onError: (e) => errors.push(e), ...options })
    stores.push(store)
    return { store, prefix, errors }
  }

  /**
   * `victims`: the users whose record lives on server `index`; `others`: the rest; `safe`: users none
   * of whose keys (record and aliases) live there, so writing them never touches that server.
   */
  function split(
    store: MemcacheStore,
    prefix: string,
    index: number,
  ): { victims: ConformanceUser[]; others: ConformanceUser[]; safe: ConformanceUser[] } {
    const address = pool.servers[index] as string
    const info = describeModel(ConformanceUser)
    const victims = users.filter((u) => store.backend.serverFor(userKey(prefix, u.id)) === address)
    const others = users.filter((u) => !victims.includes(u))
    const safe = users.filter((u) => {
      const keys = keysOfObject(info, u, false, 'test')
      return [keys.record, ...keys.aliases].every((k) => store.backend.serverFor(`${prefix}:${k}`) !== address)
    })
    expect(victims.length).toBeGreaterThan(20)
    expect(safe.length).toBeGreaterThan(20)
    return { victims, others, safe }
  }

  /** Expected batchGet result when server's records are unreachable: hits elsewhere, misses there. */
  const expectedWithout = (victims: readonly ConformanceUser[]) => users.map((u) => (victims.includes(u) ? undefined : u))

  it('SIGKILL of one server mid-workload: its share misses and is reported, writes to it reject, the rest is served; recovers after restart', async () => {
    const { store, prefix, errors } = make({ timeout: 500, retryDelay: 100 })
    const victim = pool.nodes[1] as MemcachedServers['nodes'][number]
    const address = pool.servers[1] as string
    const { victims, others, safe } = split(store, prefix, 1)
    await store.batchPut(users)

    // a workload of batch reads and writes running throughout
    let running = true
    let iterations = 0
    let slowest = 0
    const unexpected: unknown[] = []
    const workload = (async () => {
      while (running) {
        const { ms, result } = await elapsed(() => store.batchGet(ConformanceUser, ids))
        slowest = Math.max(slowest, ms)
        if (result.status === 'rejected') unexpected.push(result.reason)
        const put = await elapsed(() => store.batchPut(safe.slice(0, 10)))
        if (put.result.status === 'rejected') unexpected.push(put.result.reason)
        iterations++
      }
    })()
    await until('the workload has run', () => iterations >= 5)

    victim.kill('SIGKILL')
    await until('the dead server is reported', () => errors.length > 0)
    const reported = errors[0] as StoreUnavailableError
    expect(reported).toBeInstanceOf(StoreUnavailableError)
    expect(reported.message).toContain(address)
    expect(reported.cause).toBeDefined()

    // reads: every other server's records are still served; the dead server's keys read as misses
    expect(await store.batchGet(ConformanceUser, ids)).toEqual(expectedWithout(victims))
    // writes touching the dead server reject, naming it; writes elsewhere succeed
    const write = store.put(victims[0] as ConformanceUser)
    await expect(write).rejects.toThrow(StoreUnavailableError)
    await expect(write).rejects.toThrow(address)
    await expect(store.batchPut([safe[0] as ConformanceUser, victims[1] as ConformanceUser])).rejects.toThrow(StoreUnavailableError)
    const victimKey = userKey(prefix, (victims[2] as ConformanceUser).id)
    await expect(store.backend.addMany([{ key: victimKey, value: Buffer.from('x'), expiresAt: undefined }])).rejects.toThrow(address)
    await store.batchPut(safe)
    expect(store.stats()[1]?.down).toBe(true)

    // a chain above it reads the dead share from the layer below, and counts only live hits
    const below = new ProcessMemoryStore({})
    await below.batchPut(users)
    const chain = new ChainedStore([store, below])
    expect(await chain.batchGet(ConformanceUser, ids)).toEqual(users)
    expect(chain.stats()[0]?.hits).toBe(others.length)

    await victim.restart()
    await until('the restarted server takes writes again', async () => {
      try {
        await store.put(victims[0] as ConformanceUser)
        return true
      } catch {
        return false
      }
    })
    expect(await store.get(ConformanceUser, { id: (victims[0] as ConformanceUser).id })).toEqual(victims[0])
    expect(store.stats()[1]?.down).toBe(false)
    await store.batchPut(users)
    expect(await store.batchGet(ConformanceUser, ids)).toEqual(users)

    running = false
    await workload
    // the workload never hung and never saw anything but StoreUnavailableError (its writes avoid the victim)
    expect(slowest).toBeLessThan(500 + 1000)
    expect(unexpected).toEqual([])
  })

  it('SIGSTOP of one server: calls return within the timeout, then fail fast until retryDelay; SIGCONT recovers without serving stale data', async () => {
    const timeout = 300
    const { store, prefix, errors } = make({ timeout, retryDelay: 600 })
    const victim = pool.nodes[2] as MemcachedServers['nodes'][number]
    const address = pool.servers[2] as string
    const { victims, safe } = split(store, prefix, 2)
    await store.batchPut(users)
    const stale = victims[0] as ConformanceUser
    const staleKey = userKey(prefix, stale.id)
    expect(await present(address, staleKey)).toBe(true)

    victim.kill('SIGSTOP')
    try {
      // a read waits for the frozen server at most `timeout` ms, and answers with the other servers' hits
      const read = await elapsed(() => store.batchGet(ConformanceUser, ids))
      const why = `${shown(read)}; reported: ${errors.map((e) => e.message).join(' | ')}; servers: ${JSON.stringify(store.stats())}`
      expect(read.ms, why).toBeGreaterThanOrEqual(timeout - 5)
      expect(read.ms, why).toBeLessThan(timeout + 200)
      expect(read.result).toEqual({ status: 'fulfilled', value: expectedWithout(victims) })
      expect(errors.at(-1)?.message).toContain(address)
      expect(errors.at(-1)?.message).toMatch(/within 300 ms/)

      // while it is down, a write to it fails at once, naming it
      const changed = Object.assign(Object.create(ConformanceUser.prototype), stale, { name: 'changed while frozen' }) as ConformanceUser
      const write = await elapsed(() => store.put(changed))
      expect(write.ms).toBeLessThan(50)
      expect(write.result.status).toBe('rejected')
      const reason = (write.result as PromiseRejectedResult).reason as StoreUnavailableError
      expect(reason).toBeInstanceOf(StoreUnavailableError)
      expect(reason.message).toContain(address)
      expect(reason.message).toMatch(/down/)
      // the other servers keep working at full speed
      const other = await elapsed(() => store.batchPut(safe))
      expect(other.result.status).toBe('fulfilled')
      expect(other.ms).toBeLessThan(timeout)
      expect(store.stats()[2]?.pendingRepairs).toBeGreaterThanOrEqual(1)

      // after retryDelay the next call tries the server again, and again gives up after `timeout`
      await sleep(650)
      const retry = await elapsed(() => store.get(ConformanceUser, { id: stale.id }))
      expect(retry.ms, shown(retry)).toBeGreaterThanOrEqual(timeout - 5)
      expect(retry.ms, shown(retry)).toBeLessThan(timeout + 200)
    } finally {
      victim.kill('SIGCONT')
    }

    // the frozen server still holds the old copy its failed write meant to replace: it is never served
    await until('the thawed server answers again', async () => {
      const got = await store.batchGet(ConformanceUser, ids)
      return got.some((u, i) => u !== undefined && victims.includes(users[i] as ConformanceUser) && u.id !== stale.id)
    })
    expect(await store.get(ConformanceUser, { id: stale.id })).toBeUndefined()
    // repaired with a tombstone, not a delete: a repair must not remove another client's tombstone
    const [repaired] = await store.backend.getMany([staleKey])
    expect(repaired === undefined ? 'absent' : envelopeKind(repaired)).toBe(KIND_TOMBSTONE)
    expect(store.stats()[2]).toMatchObject({ down: false, pendingRepairs: 0 })
    await store.put(stale)
    expect(await store.get(ConformanceUser, { id: stale.id })).toEqual(stale)
  })

  /**
   * A store whose server 2 holds `stale` while the store's write of `changed` failed on it without
   * being sent (the server was thought down after a read timed out while it was frozen): the key awaits
   * repair in this process only. `thaw`: the server answers again before the test goes on.
   */
  async function failedWrite(thaw: boolean) {
    const timeout = 200
    const { store, prefix, errors } = make({ timeout, retryDelay: 60_000 })
    const victim = pool.nodes[2] as MemcachedServers['nodes'][number]
    const { victims } = split(store, prefix, 2)
    await store.batchPut(users)
    const stale = victims[0] as ConformanceUser
    victim.kill('SIGSTOP')
    try {
      // (its only server times out: the read rejects, and the server counts as down for retryDelay)
      await expect(store.get(ConformanceUser, { id: stale.id })).rejects.toThrow(/within 200 ms/)
      const changed = Object.assign(Object.create(ConformanceUser.prototype), stale, { name: 'changed' }) as ConformanceUser
      await expect(store.put(changed)).rejects.toThrow(/down/)
      expect(store.stats()[2]?.pendingRepairs).toBeGreaterThanOrEqual(1)
    } finally {
      if (thaw) victim.kill('SIGCONT')
    }
    errors.length = 0
    return { store, prefix, errors, stale, victim, timeout }
  }

  it('close() first repairs the keys whose writes failed: a server that answers again keeps no stale copy', async () => {
    const { store, prefix, errors, stale } = await failedWrite(true)
    await store.close()
    expect(errors).toEqual([])
    const reader = new MemcacheStore({ servers: pool.servers, prefix })
    stores.push(reader)
    expect(await reader.get(ConformanceUser, { id: stale.id })).toBeUndefined()
  })

  it('close() gives a server that does not answer one timeout, then reports the keys it leaves unrepaired', async () => {
    const { store, errors, victim, timeout } = await failedWrite(false)
    try {
      const closed = await elapsed(() => store.close())
      expect(closed.result.status).toBe('fulfilled')
      expect(closed.ms, shown(closed)).toBeGreaterThanOrEqual(timeout - 5)
      expect(closed.ms, shown(closed)).toBeLessThan(timeout + 500)
    } finally {
      victim.kill('SIGCONT')
    }
    expect(errors).toHaveLength(1)
    expect(errors[0]).toBeInstanceOf(StoreUnavailableError)
    expect(errors[0]?.message).toContain(pool.servers[2])
    expect(errors[0]?.message).toMatch(/close\(\) left \d+ keys? unrepaired/)
  })

  it('without onError, keys left unrepaired by close() are a process warning', async () => {
    const warnings: Error[] = []
    const listener = (w: Error) => {
      if ((w as Error & { code?: string }).code === 'STOCKPYLE_MEMCACHE_REPAIRS_LEFT') warnings.push(w)
    }
    process.on('warning', listener)
    try {
      const store = new MemcacheStore({ servers: ['127.0.0.1:1'], prefix: uniquePrefix(), timeout: 300 })
      await expect(store.put(users[0] as ConformanceUser)).rejects.toThrow(StoreUnavailableError)
      await store.close()
      await until('the warning is emitted', () => warnings.length > 0)
      expect(warnings[0]?.message).toMatch(/127\.0\.0\.1:1.*close\(\) left \d+ keys? unrepaired/)
    } finally {
      process.off('warning', listener)
    }
  })

  it('with partialReads: false a read rejects when one of its servers is down', async () => {
    const { store, prefix } = make({ partialReads: false, timeout: 300, retryDelay: 0 })
    const victim = pool.nodes[0] as MemcachedServers['nodes'][number]
    const { others } = split(store, prefix, 0)
    await store.batchPut(users)
    victim.kill('SIGKILL')
    try {
      await expect(store.batchGet(ConformanceUser, ids)).rejects.toThrow(StoreUnavailableError)
      await expect(store.batchGet(ConformanceUser, ids)).rejects.toThrow(pool.servers[0] as string)
      // a read that needs only live servers still answers
      expect(await store.get(ConformanceUser, { id: (others[0] as ConformanceUser).id })).toEqual(others[0])
    } finally {
      await victim.restart()
    }
    await until(
      'the restarted server answers',
      async () =>
        await store.batchGet(ConformanceUser, ids).then(
          () => true,
          () => false,
        ),
    )
  })

  it('rejects a read when every server it needs is down, naming them', async () => {
    const store = new MemcacheStore({ servers: ['127.0.0.1:1', '127.0.0.1:2'], prefix: uniquePrefix(), timeout: 300 })
    stores.push(store)
    const read = await elapsed(() => store.batchGet(ConformanceUser, ids))
    expect(read.ms).toBeLessThan(300)
    const reason = (read.result as PromiseRejectedResult).reason as StoreUnavailableError
    expect(reason).toBeInstanceOf(StoreUnavailableError)
    expect(reason.message).toContain('127.0.0.1:1')
    expect(reason.message).toContain('127.0.0.1:2')
    expect(reason.message).toMatch(
      /^memcache\(127\.0\.0\.1:1,127\.0\.0\.1:2\) store get of model `ConformanceUser` by `\{id:0\}` \(and 299 more\) failed on 2 of 2 servers: /,
    )
    expect(reason.cause).toBeInstanceOf(AggregateError)
  })

  it('without onError, warns once per server outage (not once per call)', async () => {
    const warnings: Error[] = []
    const listener = (w: Error) => {
      if ((w as Error & { code?: string }).code === 'STOCKPYLE_MEMCACHE_SERVER_DOWN') warnings.push(w)
    }
    process.on('warning', listener)
    try {
      const store = new MemcacheStore({ servers: [pool.servers[0] as string, '127.0.0.1:1'], prefix: uniquePrefix(), retryDelay: 0 })
      stores.push(store)
      for (let i = 0; i < 5; i++) await store.batchGet(ConformanceUser, ids)
      await until('the warning is emitted', () => warnings.length > 0)
      await sleep(50)
      expect(warnings).toHaveLength(1)
      expect(warnings[0]?.message).toContain('127.0.0.1:1')
    } finally {
      process.off('warning', listener)
    }
  })
})
