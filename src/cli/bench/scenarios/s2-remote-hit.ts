/**
 * S2, remote hit with an empty memory tier: every get is of a key the chain's memory layer never
 * held, so it reads Redis (or memcached) and backfills memory — as the peers run (fresh instance,
 * empty memory tier). The floor is the raw client's GET + msgpackr decode.
 */
import { ChainedStore } from '../../../chain/chained-store.js'
import { ProcessMemoryStore } from '../../../stores/memory/process-memory-store.js'
import { BENCH_TTL_SECONDS, type BenchEnv } from '../env.js'
import { BenchUser, makeUser, userFields } from '../fixtures.js'
import type { PeerCache } from '../peer.js'
import type { BenchCase } from '../runner.js'
import { closeAll, decodeHit, inChunks, judgeRow, ok, type RowResult, range, referenceRow, type ScenarioContext } from './common.js'

/**
 * Keys per contender, each read once: its warm-up takes 15% of them (see `warmUp`), 5,100 calls, enough
 * for the suite's 5,000 and the ~2,500 the chain's read takes to reach its steady speed (a pool of
 * 12,000 left 1,800: bench/RESULTS.md, round 21).
 */
const POOL = 34_000

/** Runs S2 on Redis. */
export async function s2Redis(env: BenchEnv, o: ScenarioContext): Promise<RowResult[]> {
  const redis = env.redis as NonNullable<BenchEnv['redis']>
  const base = 200_000
  const ids = range(base, POOL)
  const floorKey = (n: number): string => `${env.prefix}:floor:s2:${n}`
  {
    const pipeline = redis.client.pipeline()
    for (const id of ids) pipeline.set(floorKey(id), env.packr.pack(userFields(id)), 'EX', BENCH_TTL_SECONDS)
    await pipeline.exec()
  }
  const store = redis.newStore()
  for (let i = 0; i < ids.length; i += 1000) await store.batchPut(ids.slice(i, i + 1000).map(makeUser))
  const chain = new ChainedStore([new ProcessMemoryStore(), store])
  const peerCaches: PeerCache[] = []
  const row = 'S2 redis'
  const cases: BenchCase[] = [
    {
      row,
      library: 'floor',
      role: 'floor',
      label: 'ioredis getBuffer + msgpackr decode',
      maxCalls: POOL,
      run: async (i) => decodeHit(env, await redis.client.getBuffer(floorKey(base + i)), 'floor'),
    },
    {
      row,
      library: 'stockpyle',
      role: 'stockpyle',
      label: 'ChainedStore([ProcessMemoryStore (empty), RedisStore]).get: Redis hit + memory backfill',
      maxCalls: POOL,
      run: async (i) => ok(await chain.get(BenchUser, { id: base + i }), 'chain'),
    },
    {
      row,
      library: 'RedisStore alone',
      role: 'reference',
      label: 'RedisStore.get (the layer alone, no chain, no memory layer)',
      run: async (i) => ok(await store.get(BenchUser, { id: base + (i % POOL) }), 'RedisStore'),
    },
  ]
  for (const peer of o.peers) {
    const ns = `${env.prefix}:s2-${peer.name}`
    const writer = await peer.create({ redisUrl: redis.url, namespace: ns, ttlSeconds: BENCH_TTL_SECONDS })
    await inChunks(ids, 200, (id) => writer.set(`u:${id}`, userFields(id)))
    await writer.close()
    const reader = await peer.create({ redisUrl: redis.url, namespace: ns, ttlSeconds: BENCH_TTL_SECONDS })
    peerCaches.push(reader)
    cases.push({
      row,
      library: peer.name,
      role: 'peer',
      label: `${peer.name} get on a fresh instance (memory tier empty, Redis hit)`,
      maxCalls: POOL,
      run: async (i) => ok(await reader.get(`u:${base + i}`), peer.name),
    })
  }
  const results = await o.measure(cases)
  await closeAll([chain, ...peerCaches])
  const title = 'remote hit: memory layer empty, Redis holds the object'
  return [
    judgeRow(
      {
        scenario: 'S2',
        row,
        title,
        unit: 'gets/s',
        minVsFloor: 0.8,
        minVsPeer: 1.3,
        notes: [
          'Every read is of a key not read before by that instance, so each is a memory miss and a Redis hit.',
          'stockpyle, BentoCache and cacheable copy the hit into their memory tier (backfill); cache-manager`s get does not (only wrap does).',
        ],
      },
      results,
    ),
    referenceRow({ scenario: 'S2', row: `${row} · RedisStore alone`, title, unit: 'gets/s', headline: 'RedisStore alone' }, results),
  ]
}

/** Runs S2 on a memcached pool. */
export async function s2Memcached(env: BenchEnv, o: ScenarioContext): Promise<RowResult[]> {
  const mc = env.memcached as NonNullable<BenchEnv['memcached']>
  const base = 300_000
  const ids = range(base, POOL)
  const floorKey = (n: number): string => `${env.prefix}:floor:s2:${n}`
  await inChunks(ids, 200, (id) =>
    mc.clientFor(floorKey(id)).set(floorKey(id), env.packr.pack(userFields(id)), { lifetime: BENCH_TTL_SECONDS }),
  )
  const store = mc.newStore()
  for (let i = 0; i < ids.length; i += 1000) await store.batchPut(ids.slice(i, i + 1000).map(makeUser))
  const chain = new ChainedStore([new ProcessMemoryStore(), store])
  const row = 'S2 memcached'
  const cases: BenchCase[] = [
    {
      row,
      library: 'floor',
      role: 'floor',
      label: 'memcache-client get (ketama-picked server) + msgpackr decode',
      maxCalls: POOL,
      run: async (i) => {
        const key = floorKey(base + i)
        const reply = (await mc.clientFor(key).get<Buffer>(key)) as { value: Buffer } | undefined
        decodeHit(env, reply?.value, 'floor')
      },
    },
    {
      row,
      library: 'stockpyle',
      role: 'stockpyle',
      label: 'ChainedStore([ProcessMemoryStore (empty), MemcacheStore]).get: memcached hit + memory backfill',
      maxCalls: POOL,
      run: async (i) => ok(await chain.get(BenchUser, { id: base + i }), 'chain'),
    },
    {
      row,
      library: 'MemcacheStore alone',
      role: 'reference',
      label: 'MemcacheStore.get (the layer alone, no chain)',
      run: async (i) => ok(await store.get(BenchUser, { id: base + (i % POOL) }), 'MemcacheStore'),
    },
  ]
  const results = await o.measure(cases)
  await chain.close()
  const title = `remote hit: memory layer empty, memcached (${mc.servers.length} servers) holds the object`
  return [
    judgeRow(
      { scenario: 'S2', row, title, unit: 'gets/s', minVsFloor: 0.8, notes: ['No peer has a memcached tier in its recommended setup.'] },
      results,
    ),
    referenceRow({ scenario: 'S2', row: `${row} · MemcacheStore alone`, title, unit: 'gets/s', headline: 'MemcacheStore alone' }, results),
  ]
}
