import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ChainedStore, type Store } from '../../src/index.js'
import { MemcacheStore } from '../../src/stores/memcache/index.js'
import { RedisStore } from '../../src/stores/redis/index.js'
import { createTable, SqlStore } from '../../src/stores/sql/index.js'
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
