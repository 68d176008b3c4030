/**
 * S1, memory-layer hit: a chain [memory, Redis] answering from its memory layer, against lru-cache
 * get + msgpackr decode (the floor: a fresh copy per get, as stockpyle returns) and the peers'
 * memory-tier hits.
 */
import { LRUCache } from 'lru-cache'
import { ChainedStore } from '../../../chain/chained-store.js'
import type { Store } from '../../../contracts/base-store.js'
import { ProcessMemoryStore } from '../../../stores/memory/process-memory-store.js'
import { BENCH_TTL_SECONDS, type BenchEnv } from '../env.js'
import { BenchUser, makeUser, userFields } from '../fixtures.js'
import type { PeerCache } from '../peer.js'
import type { BenchCase } from '../runner.js'
import { closeAll, decodeHit, inChunks, judgeRow, ok, type RowResult, range, referenceRow, type ScenarioContext } from './common.js'

const KEYS = 1000

/** Runs S1. */
export async function s1MemoryHit(env: BenchEnv, o: ScenarioContext): Promise<RowResult[]> {
  const ids = range(1, KEYS)
  const lru = new LRUCache<string, Buffer>({ max: 10_000 })
  for (const id of ids) lru.set(`u:${id}`, env.packr.pack(userFields(id)))
  const memory = new ProcessMemoryStore()
  const chainMemory = new ProcessMemoryStore()
  const second: Store = env.redis?.newStore() ?? new ProcessMemoryStore({ name: 'memory-2' })
  const chain = new ChainedStore([chainMemory, second])
  const users = ids.map(makeUser)
  await memory.batchPut(users)
  await chain.batchPut(users)
  const peerCaches: PeerCache[] = []
  const row = 'S1 memory'
  const cases: BenchCase[] = [
    {
      row,
      library: 'floor',
      role: 'floor',
      label: 'lru-cache get + msgpackr decode',
      run: async (i) => decodeHit(env, lru.get(`u:${(i % KEYS) + 1}`), 'floor'),
    },
    {
      row,
      library: 'stockpyle',
      role: 'stockpyle',
      label: `ChainedStore([ProcessMemoryStore, ${second.name}]).get by primary key (memory hit)`,
      run: async (i) => ok(await chain.get(BenchUser, { id: (i % KEYS) + 1 }), 'chain'),
    },
    {
      row,
      library: 'ProcessMemoryStore alone',
      role: 'reference',
      label: 'ProcessMemoryStore.get by primary key (the layer alone, no chain)',
      run: async (i) => ok(await memory.get(BenchUser, { id: (i % KEYS) + 1 }), 'memory'),
    },
    {
      row,
      library: 'stockpyle by email',
      role: 'reference',
      label: 'ChainedStore.get by the alternate key `email` (no peer has alternate keys)',
      run: async (i) => ok(await chain.get(BenchUser, { email: `user${(i % KEYS) + 1}@example.com` }), 'chain by email'),
    },
  ]
  for (const peer of o.peers) {
    const cache = await peer.create({
      redisUrl: env.redis?.url as string,
      namespace: `${env.prefix}:s1-${peer.name}`,
      ttlSeconds: BENCH_TTL_SECONDS,
    })
    peerCaches.push(cache)
    await inChunks(ids, 100, (id) => cache.set(`u:${id}`, userFields(id)))
    cases.push({
      row,
      library: peer.name,
      role: 'peer',
      label: `${peer.name} get (memory-tier hit)`,
      run: async (i) => ok(await cache.get(`u:${(i % KEYS) + 1}`), peer.name),
    })
  }
  const results = await o.measure(cases)
  await closeAll([memory, chain, ...peerCaches])
  const title = 'memory-layer hit: get of a 10-field object (Date, nested array)'
  return [
    judgeRow(
      {
        scenario: 'S1',
        row,
        title,
        unit: 'gets/s',
        minVsFloor: 0.8,
        minVsPeer: 3,
        notes: [
          'Every contender returns a fresh copy (stockpyle and the floor decode msgpack; the peers deserialize JSON or clone), so mutating the result never changes the cache.',
          'Peers return plain objects (BentoCache and cache-manager turn the Date into a string); stockpyle returns a BenchUser instance with a Date.',
        ],
      },
      results,
    ),
    referenceRow(
      { scenario: 'S1', row: `${row} · ProcessMemoryStore alone`, title, unit: 'gets/s', headline: 'ProcessMemoryStore alone' },
      results,
    ),
  ]
}
