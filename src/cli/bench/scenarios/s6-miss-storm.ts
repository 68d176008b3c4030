/**
 * S6, hot-miss storm: 1,000 concurrent gets of one uncached object through [memory, Redis, SQL]
 * must cause exactly one database read (single-flight); the floor is lru-cache's fetch() with a
 * one-row loader, the peers their getOrSet/wrap.
 */
import { LRUCache } from 'lru-cache'
import { ChainedStore } from '../../../chain/chained-store.js'
import type { Store } from '../../../contracts/base-store.js'
import { ProcessMemoryStore } from '../../../stores/memory/process-memory-store.js'
import { CountingStore } from '../counting-store.js'
import { BENCH_TTL_SECONDS, type BenchEnv, type SqlEnv } from '../env.js'
import { BenchUser } from '../fixtures.js'
import type { BenchCase } from '../runner.js'
import { byLibrary, closeAll, ok, type RowResult, type ScenarioContext } from './common.js'

const STORM = 1000

/** Adds one to the last element (the current storm's load count). */
function bump(counts: number[]): void {
  counts[counts.length - 1] = (counts[counts.length - 1] ?? 0) + 1
}

const S6_CALLS = 60

/** Runs S6 on one SQL database (PostgreSQL when there is one). */
export async function s6MissStorm(env: BenchEnv, sqlEnv: SqlEnv, o: ScenarioContext): Promise<RowResult[]> {
  const { db } = sqlEnv
  const row = `S6 ${sqlEnv.dialect}`
  const selectOne = (id: number): Promise<object | undefined> =>
    db.selectFrom(sqlEnv.table).selectAll().where('id', '=', id).executeTakeFirst() as Promise<object | undefined>
  const idFor = (k: number, i: number): number => 10_001 + k * 1000 + i
  const tally = (loads: number[]): Record<string, number> => ({
    storms: loads.length,
    minLoads: Math.min(...loads),
    maxLoads: Math.max(...loads),
  })
  const storm = async (get: () => Promise<unknown>): Promise<void> => {
    const all = await Promise.all(Array.from({ length: STORM }, get))
    for (const v of all) ok(v, 'storm')
  }
  // floor: lru-cache's own single-flight
  const floorLoads: number[] = []
  const lru = new LRUCache<number, object>({
    max: 10_000,
    fetchMethod: async (id) => {
      bump(floorLoads)
      return selectOne(id)
    },
  })
  // stockpyle: a chain whose database layer counts the reads that reach it
  const counting = new CountingStore(await sqlEnv.newStore())
  const layers: Store[] = [new ProcessMemoryStore()]
  if (env.redis !== undefined) layers.push(env.redis.newStore())
  layers.push(counting)
  const chain = new ChainedStore(layers)
  await chain.get(BenchUser, { id: 1 })
  const stockpyleLoads: number[] = []
  const cases: BenchCase[] = [
    {
      row,
      library: 'floor',
      role: 'floor',
      label: 'lru-cache fetch() with a fetchMethod doing one Kysely select',
      maxCalls: S6_CALLS,
      prepare: () => void floorLoads.push(0),
      run: (i) => storm(() => lru.fetch(idFor(0, i))),
      after: async () => tally(floorLoads),
    },
    {
      row,
      library: 'stockpyle',
      role: 'stockpyle',
      label: `${STORM} concurrent ChainedStore([${layers.map((l) => l.name).join(', ')}]).get of one uncached object`,
      maxCalls: S6_CALLS,
      prepare: () => {
        counting.reset()
      },
      run: async (i) => {
        await storm(() => chain.get(BenchUser, { id: idFor(1, i) }))
        stockpyleLoads.push(counting.lookups)
      },
      after: async () => tally(stockpyleLoads),
    },
  ]
  const closers: { close(): Promise<void> }[] = [chain]
  if (env.redis !== undefined) {
    let k = 2
    for (const peer of o.peers) {
      const cache = await peer.create({
        redisUrl: env.redis.url,
        namespace: `${env.prefix}:s6-${peer.name}`,
        ttlSeconds: BENCH_TTL_SECONDS,
      })
      closers.push(cache)
      const loads: number[] = []
      const kk = k++
      cases.push({
        row,
        library: peer.name,
        role: 'peer',
        label: `${STORM} concurrent ${peer.name} getOrSet of one uncached key, loader = one Kysely select`,
        maxCalls: S6_CALLS,
        prepare: () => void loads.push(0),
        run: (i) =>
          storm(() =>
            cache.getOrSet(`s6:${idFor(kk, i)}`, () => {
              bump(loads)
              return selectOne(idFor(kk, i))
            }),
          ),
        after: async () => tally(loads),
      })
    }
  }
  const results = await o.measure(cases)
  await closeAll(closers)
  const s = byLibrary(results, 'stockpyle')?.extra
  const met = s === undefined ? undefined : s.minLoads === 1 && s.maxLoads === 1
  return [
    {
      scenario: 'S6',
      row,
      title: `hot-miss storm: ${STORM} concurrent gets of one uncached object (${sqlEnv.dialect})`,
      unit: 'storms/s',
      cases: results,
      floor: 'floor',
      headline: 'stockpyle',
      withPeers: true,
      layerAlone: false,
      target: {
        text: 'exactly 1 database read per storm',
        met,
        detail: `database reads per storm: ${s?.minLoads ?? '?'}–${s?.maxLoads ?? '?'}`,
      },
      notes: [
        'ms per storm = 1000 / storms/s. Loads are counted by a wrapper store (stockpyle) or in the loader (floor, peers).',
        'The floor hands the same object to all 1,000 callers; stockpyle gives each caller its own copy (a caller mutating its result cannot affect another).',
      ],
    },
  ]
}
