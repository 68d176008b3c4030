import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type CacheErrorEvent, ChainedStore, type Store, StoreClosedError, StoreUnavailableError } from '../../src/index.js'
import { MemcacheStore } from '../../src/stores/memcache/index.js'
import { RedisStore } from '../../src/stores/redis/index.js'
import { createTable, SqlStore } from '../../src/stores/sql/index.js'
import { FaultStore } from '../../src/testing/index.js'
import { type MemcachedServers, type RedisServer, selectedStores, startMemcached, startRedis } from '../harness/servers.js'

class Doc {
  static readonly stockpyleName = 'FaultDoc'
  static readonly stockpyleKeys = ['id', 'slug'] as const
  constructor(
    public id: number,
    public slug: string,
    public version: number,
  ) {}
}

const KEYS = 40
const ACTORS = 8

interface Outcome {
  failedReads: number
  failedWrites: number
  staleReads: string[]
  lost: string[]
}

/**
 * A workload of `ops` operations per actor over `chain`; each actor owns KEYS/ACTORS keys (sole writer,
 * versions increase), reads its own keys by both keys and checks it never sees a version older than
 * the last one it wrote and saw acknowledged. `fault(step)` runs at chosen steps of actor 0.
 */
async function workload(chain: Store, db: Store, ops: number, fault: (step: number) => Promise<void>): Promise<Outcome> {
  const outcome: Outcome = { failedReads: 0, failedWrites: 0, staleReads: [], lost: [] }
  const acked = new Map<number, number>()
  await chain.batchPut(Array.from({ length: KEYS }, (_, id) => new Doc(id, `doc-${id}`, 0)))
  for (let id = 0; id < KEYS; id++) acked.set(id, 0)
  const actor = async (a: number) => {
    const mine = Array.from({ length: KEYS / ACTORS }, (_, k) => a * (KEYS / ACTORS) + k)
    for (let step = 0; step < ops; step++) {
      if (a === 0) await fault(step)
      const id = mine[step % mine.length] as number
      if (step % 3 === 0) {
        const version = (acked.get(id) ?? 0) + 1
        try {
          await chain.put(new Doc(id, `doc-${id}`, version))
          acked.set(id, version)
        } catch {
          outcome.failedWrites++
        }
      } else {
        const floor = acked.get(id) ?? 0
        try {
          const [byId, bySlug] = await chain.batchGet(Doc, [{ id }, { slug: `doc-${id}` }])
          for (const got of [byId, bySlug]) {
            if ((got?.version ?? -1) < floor) outcome.staleReads.push(`doc ${id}: read v${got?.version} after v${floor} was acknowledged`)
          }
        } catch {
          outcome.failedReads++
        }
      }
    }
  }
  await Promise.all(Array.from({ length: ACTORS }, (_, a) => actor(a)))
  const stored = await db.batchGet(
    Doc,
    Array.from({ length: KEYS }, (_, id) => ({ id })),
  )
  stored.forEach((doc, id) => {
    if (doc?.version !== acked.get(id)) outcome.lost.push(`doc ${id}: database has v${doc?.version}, acknowledged v${acked.get(id)}`)
  })
  // after healing, every layer answers with the database's version
  for (let id = 0; id < KEYS; id++) {
    const got = await chain.get(Doc, { slug: `doc-${id}` })
    if (got?.version !== acked.get(id))
      outcome.staleReads.push(`doc ${id}: after healing read v${got?.version}, database v${acked.get(id)}`)
  }
  return outcome
}

async function sqlite(): Promise<SqlStore> {
  const sql = new SqlStore({ url: 'sqlite::memory:' })
  await createTable(sql, Doc, { columns: { id: 'integer', slug: 'text', version: 'integer' } })
  return sql
}

const stores = selectedStores()

describe.runIf(stores.has('redis') && stores.has('sqlite'))('chain over a real Redis that dies and freezes', () => {
  let server: RedisServer
  beforeAll(async () => {
    server = await startRedis()
  })
  afterAll(async () => {
    await server?.stop()
  })

  it('SIGKILL mid-workload, then restart: no failed reads, no lost writes, no stale reads', async () => {
    const db = await sqlite()
    const redis = new RedisStore({ url: server.url, timeout: 300, prefix: 'fault-kill' })
    const chain = new ChainedStore([redis, db], { breaker: { failures: 1, halfOpenAfter: 100 } })
    const outcome = await workload(chain, db, 150, async (step) => {
      if (step === 40) server.kill('SIGKILL')
      if (step === 90) await server.restart()
    })
    expect(outcome).toEqual({ failedReads: 0, failedWrites: 0, staleReads: [], lost: [] })
    expect(chain.stats()[0]?.errors).toBeGreaterThan(0)
    await chain.close()
  })

  it('SIGSTOP mid-workload: calls return within the timeout; after SIGCONT no stale copy is served', async () => {
    const db = await sqlite()
    const redis = new RedisStore({ url: server.url, timeout: 200, prefix: 'fault-stop' })
    const chain = new ChainedStore([redis, db], { breaker: { failures: 1, halfOpenAfter: 100 } })
    let slowest = 0
    const outcome = await workload(chain, db, 150, async (step) => {
      if (step === 40) server.kill('SIGSTOP')
      if (step === 41) {
        const t0 = performance.now()
        await chain.get(Doc, { id: 0 })
        slowest = performance.now() - t0
      }
      if (step === 90) server.kill('SIGCONT')
    })
    expect(outcome).toEqual({ failedReads: 0, failedWrites: 0, staleReads: [], lost: [] })
    expect(slowest).toBeLessThan(1000)
    await chain.close()
  })
})

describe.runIf(stores.has('memcached') && stores.has('sqlite'))('chain over a real 3-server memcached pool that loses a server', () => {
  let pool: MemcachedServers
  beforeAll(async () => {
    pool = await startMemcached(3)
  })
  afterAll(async () => {
    await pool?.stop()
  })

  it('SIGKILL one of three mid-workload, then restart: no failed reads, no lost writes, no stale reads', async () => {
    const db = await sqlite()
    const memcache = new MemcacheStore({ servers: pool.servers, timeout: 300, prefix: 'fault-mc', onError: () => {} })
    const chain = new ChainedStore([memcache, db], { breaker: { failures: 1, halfOpenAfter: 100 } })
    const victim = pool.nodes[1]
    const outcome = await workload(chain, db, 150, async (step) => {
      if (step === 40) victim?.kill('SIGKILL')
      if (step === 90) await victim?.restart()
    })
    expect(outcome).toEqual({ failedReads: 0, failedWrites: 0, staleReads: [], lost: [] })
    await chain.close()
  })

  it('SIGSTOP one of three: after SIGCONT no stale copy is served', async () => {
    const db = await sqlite()
    const memcache = new MemcacheStore({ servers: pool.servers, timeout: 200, prefix: 'fault-mc-stop', onError: () => {} })
    const chain = new ChainedStore([memcache, db], { breaker: { failures: 1, halfOpenAfter: 100 } })
    const victim = pool.nodes[2]
    const outcome = await workload(chain, db, 150, async (step) => {
      if (step === 40) victim?.kill('SIGSTOP')
      if (step === 90) victim?.kill('SIGCONT')
    })
    expect(outcome).toEqual({ failedReads: 0, failedWrites: 0, staleReads: [], lost: [] })
    await chain.close()
  })
})

describe.runIf(stores.has('redis') && stores.has('sqlite'))('closing a chain while repairs are pending (real Redis)', () => {
  let server: RedisServer
  let prefixes = 0
  beforeAll(async () => {
    server = await startRedis()
  })
  afterAll(async () => {
    await server?.stop()
  })
  const COUNT = 50
  const ids = Array.from({ length: COUNT }, (_, id) => ({ id }))

  /**
   * A chain [fault(Redis), SQLite] whose Redis holds v1 of COUNT docs while the database holds v2: the
   * puts of v2 failed on Redis (injected), so did their invalidations, and COUNT repairs are pending.
   * The breaker's `halfOpenAfter` is a minute: the background drain does not retry before close().
   */
  async function staleRedis(options: { timeout?: number; onCacheError?: 'throw'; maxPendingRepairs?: number } = {}) {
    const db = await sqlite()
    const prefix = `close-repairs-${++prefixes}`
    const redis = new RedisStore({ url: server.url, timeout: 300, prefix })
    const faulty = new FaultStore(redis)
    const chain = new ChainedStore([faulty, db], { breaker: { failures: 1, halfOpenAfter: 60_000 }, ...options })
    const events: CacheErrorEvent[] = []
    chain.events.on('cacheError', (e) => events.push(e))
    await chain.batchPut(ids.map(({ id }) => new Doc(id, `doc-${id}`, 1)))
    faulty.fail('put', 'delete')
    const v2 = chain.batchPut(ids.map(({ id }) => new Doc(id, `doc-${id}`, 2)))
    if (options.onCacheError === 'throw') await expect(v2).rejects.toThrow(StoreUnavailableError)
    else await v2
    expect((await db.batchGet(Doc, ids)).map((d) => d?.version)).toEqual(ids.map(() => 2))
    // past maxPendingRepairs the repairs are dropped and the layer fenced: it must be cleared instead
    expect(chain.stats()[0]?.pendingRepairs).toBe(options.maxPendingRepairs === undefined ? COUNT : 0)
    const reader = new RedisStore({ url: server.url, prefix })
    expect((await reader.batchGet(Doc, ids)).map((d) => d?.version)).toEqual(ids.map(() => 1))
    events.length = 0
    return { chain, faulty, redis, reader, events }
  }

  async function timed(work: () => Promise<void>): Promise<number> {
    const t0 = performance.now()
    await work()
    return performance.now() - t0
  }

  it('a layer that is back by then: close() applies the pending repairs, and Redis serves no stale copy afterwards', async () => {
    const { chain, faulty, reader, events } = await staleRedis()
    faulty.recover()
    await chain.close()
    expect((await reader.batchGet(Doc, ids)).map((d) => d?.version)).toEqual(ids.map(() => undefined))
    expect(events).toEqual([])
    await reader.close()
  })

  it('a layer still failing: close() resolves at once and reports the abandoned repairs as a cacheError', async () => {
    const { chain, reader, events } = await staleRedis()
    const ms = await timed(() => chain.close())
    expect(ms).toBeLessThan(500)
    expect(events).toHaveLength(1)
    const [event] = events as [CacheErrorEvent]
    expect(event).toMatchObject({ index: 0, layer: chain.layers[0]?.name, operation: 'repair' })
    expect(event.error).toBeInstanceOf(StoreUnavailableError)
    expect((event.error as Error).message).toMatch(/50 repairs.*still pending.*close/)
    expect((event.error as Error).cause).toBeInstanceOf(StoreUnavailableError)
    expect(chain.stats()[0]?.errors).toBeGreaterThan(0)
    // the copies stay until their lifetime: what was reported
    expect((await reader.batchGet(Doc, ids)).map((d) => d?.version)).toEqual(ids.map(() => 1))
    await reader.close()
  })

  it('a layer that does not answer: close() gives up after the chain’s timeout and reports the repairs', async () => {
    const { chain, faulty, reader, events } = await staleRedis({ timeout: 200 })
    faulty.recover()
    const release = faulty.gate('delete')
    try {
      const ms = await timed(() => chain.close())
      expect(ms).toBeGreaterThanOrEqual(190)
      expect(ms).toBeLessThan(1000)
    } finally {
      release()
    }
    expect(events.map((e) => [e.operation, e.index])).toEqual([['repair', 0]])
    expect((events[0]?.error as Error | undefined)?.message).toMatch(/50 repairs.*within 200 ms/)
    await reader.close()
  })

  it('without a timeout, close() gives a layer that does not answer 1000 ms', async () => {
    const { chain, faulty, reader, events } = await staleRedis()
    faulty.recover()
    const release = faulty.gate('delete')
    try {
      const ms = await timed(() => chain.close())
      expect(ms).toBeGreaterThanOrEqual(990)
      expect(ms).toBeLessThan(2500)
    } finally {
      release()
    }
    expect(events.map((e) => e.operation)).toEqual(['repair'])
    await reader.close()
  })

  it("under onCacheError 'throw', close() closes every layer, then rejects with the abandoned repairs", async () => {
    const { chain, redis, reader } = await staleRedis({ onCacheError: 'throw' })
    await expect(chain.close()).rejects.toThrow(/50 repairs.*still pending/)
    await expect(redis.get(Doc, { id: 0 })).rejects.toThrow(StoreClosedError)
    await reader.close()
  })

  it('a fenced layer that is back by then: close() clears it', async () => {
    const { chain, faulty, reader, events } = await staleRedis({ maxPendingRepairs: 10 })
    faulty.recover()
    await chain.close()
    expect((await reader.batchGet(Doc, ids)).map((d) => d?.version)).toEqual(ids.map(() => undefined))
    expect(events).toEqual([])
    await reader.close()
  })

  it('a fenced layer still failing: close() reports that it was not cleared', async () => {
    const { chain, events, reader } = await staleRedis({ maxPendingRepairs: 10 })
    await chain.close()
    expect(events.map((e) => [e.operation, e.index])).toEqual([['repair', 0]])
    expect((events[0]?.error as Error | undefined)?.message).toMatch(/fenced.*not yet cleared when chain `chain` closed/)
    await reader.close()
  })

  it('close() adds no wait when nothing is pending', async () => {
    const db = await sqlite()
    const redis = new RedisStore({ url: server.url, timeout: 300, prefix: `close-idle-${++prefixes}` })
    const chain = new ChainedStore([redis, db], { timeout: 5000 })
    await chain.put(new Doc(1, 'doc-1', 1))
    expect(await timed(() => chain.close())).toBeLessThan(200)
  })
})
