/**
 * S3, batchGet of 100 with an empty memory tier: the chain [memory, Redis] (or memcached) with its
 * memory layer cleared before each call (untimed), so it reads the 100 objects below and backfills
 * memory — as the peers run. The floor is one MGET (one multi-get per memcached server, in parallel)
 * + msgpackr decode of each value.
 */
import { ChainedStore } from '../../../chain/chained-store.js'
import { ProcessMemoryStore } from '../../../stores/memory/process-memory-store.js'
import { BENCH_TTL_SECONDS, type BenchEnv } from '../env.js'
import { BenchUser, makeUser, userFields } from '../fixtures.js'
import type { PeerCache } from '../peer.js'
import type { BenchCase } from '../runner.js'
import {
  byLibrary,
  closeAll,
  countCommands,
  decodeAll,
  decodeHit,
  inChunks,
  judgeRow,
  okAll,
  peerMulti,
  type RowResult,
  range,
  referenceRow,
  type ScenarioContext,
} from './common.js'

const BATCH = 100
const BATCHES = 10
const PEER_CALLS = 700

/** Runs S3 on Redis. */
export async function s3Redis(env: BenchEnv, o: ScenarioContext): Promise<RowResult[]> {
  const redis = env.redis as NonNullable<BenchEnv['redis']>
  const base = 400_000
  const ids = range(base, BATCHES * BATCH)
  const batchIds = (i: number): number[] => ids.slice((i % BATCHES) * BATCH, ((i % BATCHES) + 1) * BATCH)
  const floorKey = (n: number): string => `${env.prefix}:floor:s3:${n}`
  {
    const pipeline = redis.client.pipeline()
    for (const id of ids) pipeline.set(floorKey(id), env.packr.pack(userFields(id)), 'EX', BENCH_TTL_SECONDS)
    await pipeline.exec()
  }
  const writer = redis.newStore()
  await writer.batchPut(ids.map(makeUser))
  const store = redis.newStore()
  const chainStore = redis.newStore()
  const commands = countCommands(chainStore.client)
  let before = 0
  const memory = new ProcessMemoryStore()
  const chain = new ChainedStore([memory, chainStore])
  const lookups = range(0, BATCHES).map((b) => batchIds(b).map((id) => ({ id })))
  const peerCaches: PeerCache[] = []
  const row = 'S3 redis'
  const cases: BenchCase[] = [
    {
      row,
      library: 'floor',
      role: 'floor',
      label: 'ioredis mgetBuffer of 100 keys + msgpackr decode of each',
      run: async (i) => decodeAll(env, await redis.client.mgetBuffer(batchIds(i).map(floorKey))),
    },
    {
      row,
      library: 'stockpyle',
      role: 'stockpyle',
      label: 'ChainedStore([ProcessMemoryStore (cleared before each call, untimed), RedisStore]).batchGet of 100, with memory backfill',
      setup: async () => {
        await chain.get(BenchUser, { id: base })
        await memory.clear()
        before = commands.get('mget') ?? 0
      },
      prepare: () => memory.clear(),
      run: async (i) => okAll(await chain.batchGet(BenchUser, lookups[i % BATCHES] as { id: number }[]), 'chain batchGet'),
      after: async (calls) => ({ mgetPerBatch: ((commands.get('mget') ?? 0) - before) / calls }),
    },
    {
      row,
      library: 'RedisStore alone',
      role: 'reference',
      label: 'RedisStore.batchGet of 100 primary keys (the layer alone, no chain, no memory layer)',
      run: async (i) => okAll(await store.batchGet(BenchUser, lookups[i % BATCHES] as { id: number }[]), 'RedisStore batchGet'),
    },
  ]
  for (const peer of o.peers) {
    const ns = `${env.prefix}:s3-${peer.name}`
    const pool = range(500_000, PEER_CALLS * BATCH)
    const w = await peer.create({ redisUrl: redis.url, namespace: ns, ttlSeconds: BENCH_TTL_SECONDS })
    await inChunks(pool, 200, (id) => w.set(`u:${id}`, userFields(id)))
    await w.close()
    const reader = await peer.create({ redisUrl: redis.url, namespace: ns, ttlSeconds: BENCH_TTL_SECONDS })
    peerCaches.push(reader)
    cases.push({
      row,
      library: peer.name,
      role: 'peer',
      label:
        reader.getMany === undefined
          ? `${peer.name}: no batch get, Promise.all of 100 gets (memory tier empty)`
          : `${peer.name} batch get of 100 keys (memory tier empty)`,
      maxCalls: PEER_CALLS,
      run: async (i) =>
        okAll(
          await peerMulti(
            reader,
            range(500_000 + i * BATCH, BATCH).map((id) => `u:${id}`),
          ),
          peer.name,
        ),
    })
  }
  const results = await o.measure(cases)
  await closeAll([chain, store, writer, ...peerCaches])
  const mget = byLibrary(results, 'stockpyle')?.extra.mgetPerBatch
  const title = 'batchGet of 100 objects from Redis, memory tier empty'
  return [
    judgeRow(
      {
        scenario: 'S3',
        row,
        title,
        unit: 'batches/s',
        minVsFloor: 0.6,
        minVsPeer: 3,
        extra: {
          text: 'one MGET per batch',
          met: typeof mget === 'number' ? Math.abs(mget - 1) < 1e-9 : undefined,
          detail: `MGET per batch = ${typeof mget === 'number' ? mget.toFixed(2) : '?'}`,
        },
        notes: [
          'Peers read keys never read before by that instance (memory tier empty). BentoCache has no batch get: it is Promise.all of 100 gets.',
        ],
      },
      results,
    ),
    referenceRow({ scenario: 'S3', row: `${row} · RedisStore alone`, title, unit: 'batches/s', headline: 'RedisStore alone' }, results),
  ]
}

/** Runs S3 on a memcached pool. */
export async function s3Memcached(env: BenchEnv, o: ScenarioContext): Promise<RowResult[]> {
  const mc = env.memcached as NonNullable<BenchEnv['memcached']>
  const base = 600_000
  const ids = range(base, BATCHES * BATCH)
  const batchIds = (i: number): number[] => ids.slice((i % BATCHES) * BATCH, ((i % BATCHES) + 1) * BATCH)
  const floorKey = (n: number): string => `${env.prefix}:floor:s3:${n}`
  await inChunks(ids, 200, (id) =>
    mc.clientFor(floorKey(id)).set(floorKey(id), env.packr.pack(userFields(id)), { lifetime: BENCH_TTL_SECONDS }),
  )
  const floorGroups = range(0, BATCHES).map((b) => {
    const groups = new Map<string, string[]>()
    for (const id of batchIds(b)) {
      const key = floorKey(id)
      const server = mc.ring === undefined ? (mc.servers[0] as string) : (mc.ring.get(key) as string)
      const list = groups.get(server)
      if (list === undefined) groups.set(server, [key])
      else list.push(key)
    }
    return [...groups]
  })
  const writer = mc.newStore()
  await writer.batchPut(ids.map(makeUser))
  const store = mc.newStore()
  const chainStore = mc.newStore()
  const memory = new ProcessMemoryStore()
  const chain = new ChainedStore([memory, chainStore])
  const lookups = range(0, BATCHES).map((b) => batchIds(b).map((id) => ({ id })))
  let before: number[] = []
  const row = 'S3 memcached'
  const cases: BenchCase[] = [
    {
      row,
      library: 'floor',
      role: 'floor',
      label: `memcache-client multi-get per server (${mc.servers.length} servers, ketama, in parallel) + msgpackr decode`,
      run: async (i) => {
        const groups = floorGroups[i % BATCHES] as [string, string[]][]
        await Promise.all(
          groups.map(async ([server, keys]) => {
            const client = mc.clients.get(server) as NonNullable<ReturnType<typeof mc.clients.get>>
            const reply = (await client.get<Buffer>(keys)) as unknown as Record<string, { value: Buffer } | undefined>
            for (const key of keys) decodeHit(env, reply[key]?.value, 'floor')
          }),
        )
      },
    },
    {
      row,
      library: 'stockpyle',
      role: 'stockpyle',
      label: 'ChainedStore([ProcessMemoryStore (cleared before each call, untimed), MemcacheStore]).batchGet of 100, with memory backfill',
      setup: async () => {
        await chain.get(BenchUser, { id: base })
        await memory.clear()
        before = chainStore.stats().map((s) => s.getRequests)
      },
      prepare: () => memory.clear(),
      run: async (i) => okAll(await chain.batchGet(BenchUser, lookups[i % BATCHES] as { id: number }[]), 'chain batchGet'),
      after: async (calls) => {
        const per = chainStore.stats().map((s, k) => (s.getRequests - (before[k] ?? 0)) / calls)
        return { requestsPerServerPerBatch: per.map((v) => v.toFixed(2)).join(' / '), maxRequestsPerServer: Math.max(...per) }
      },
    },
    {
      row,
      library: 'MemcacheStore alone',
      role: 'reference',
      label: `MemcacheStore.batchGet of 100 primary keys (${mc.servers.length} servers; the layer alone, no chain)`,
      run: async (i) => okAll(await store.batchGet(BenchUser, lookups[i % BATCHES] as { id: number }[]), 'MemcacheStore batchGet'),
    },
  ]
  const results = await o.measure(cases)
  await closeAll([chain, store, writer])
  const extra = byLibrary(results, 'stockpyle')?.extra
  const maxPer = extra?.maxRequestsPerServer
  const title = `batchGet of 100 objects from a ${mc.servers.length}-server memcached pool, memory tier empty`
  return [
    judgeRow(
      {
        scenario: 'S3',
        row,
        title,
        unit: 'batches/s',
        minVsFloor: 0.6,
        extra: {
          text: 'one request per server',
          met: typeof maxPer === 'number' ? Math.abs(maxPer - 1) < 1e-9 : undefined,
          detail: `get requests per server per batch = ${extra?.requestsPerServerPerBatch ?? '?'}`,
        },
        notes: ['No peer has a memcached tier in its recommended memory + Redis setup.'],
      },
      results,
    ),
    referenceRow(
      { scenario: 'S3', row: `${row} · MemcacheStore alone`, title, unit: 'batches/s', headline: 'MemcacheStore alone' },
      results,
    ),
  ]
}
