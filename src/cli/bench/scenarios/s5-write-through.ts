/**
 * S5, write-through: a put of a new object through [memory, Redis, PostgreSQL], against the raw
 * clients doing the necessary work — a Kysely upsert and an ioredis SET (msgpackr, EX) — and against
 * the same upsert followed by each peer's set (peers have no database layer).
 */
import { ChainedStore } from '../../../chain/chained-store.js'
import type { Store } from '../../../contracts/base-store.js'
import { ProcessMemoryStore } from '../../../stores/memory/process-memory-store.js'
import { BENCH_TTL_SECONDS, type BenchEnv, type SqlEnv } from '../env.js'
import { BenchUser, makeUser, upsertUser, userFields } from '../fixtures.js'
import type { BenchCase } from '../runner.js'
import { judgeRow, type RowResult, type ScenarioContext } from './common.js'

/** Runs S5 on one SQL database (PostgreSQL when there is one). */
export async function s5WriteThrough(env: BenchEnv, sqlEnv: SqlEnv, o: ScenarioContext): Promise<RowResult[]> {
  const { db } = sqlEnv
  const row = `S5 ${sqlEnv.dialect}`
  const upsert = (id: number): Promise<unknown> => upsertUser(db, sqlEnv.table, sqlEnv.dialect, id)
  const layers: Store[] = [new ProcessMemoryStore()]
  if (env.redis !== undefined) layers.push(env.redis.newStore())
  layers.push(await sqlEnv.newStore())
  const chain = new ChainedStore(layers)
  await chain.get(BenchUser, { id: 1 })
  const floorKey = (n: number): string => `${env.prefix}:floor:s5:${n}`
  const redisClient = env.redis?.client
  const caseBase = (k: number): number => 1_000_000 + k * 1_000_000
  const cases: BenchCase[] = [
    {
      row,
      library: 'floor',
      role: 'floor',
      label: `Kysely insert … on conflict (id) do update${redisClient === undefined ? '' : ' + ioredis SET (msgpackr, EX)'}`,
      run: async (i) => {
        const id = caseBase(0) + i
        await upsert(id)
        await redisClient?.set(floorKey(id), env.packr.pack(userFields(id)), 'EX', BENCH_TTL_SECONDS)
      },
    },
    {
      row,
      library: 'stockpyle',
      role: 'stockpyle',
      label: `ChainedStore([${layers.map((l) => l.name).join(', ')}]).put of a new object`,
      run: (i) => chain.put(makeUser(caseBase(1) + i)),
    },
  ]
  const closers: { close(): Promise<void> }[] = [chain]
  if (env.redis !== undefined) {
    let k = 2
    for (const peer of o.peers) {
      const cache = await peer.create({
        redisUrl: env.redis.url,
        namespace: `${env.prefix}:s5-${peer.name}`,
        ttlSeconds: BENCH_TTL_SECONDS,
      })
      closers.push(cache)
      const b = caseBase(k++)
      cases.push({
        row,
        library: peer.name,
        role: 'peer',
        label: `the same Kysely upsert, then ${peer.name} set (memory + Redis): peers have no database layer`,
        run: async (i) => {
          const id = b + i
          await upsert(id)
          await cache.set(`u:${id}`, userFields(id))
        },
      })
    }
  }
  const results = await o.measure(cases)
  await Promise.allSettled(closers.map((c) => c.close()))
  return [
    judgeRow(
      {
        scenario: 'S5',
        row,
        title: `write-through: put of a new object through [memory${env.redis === undefined ? '' : ', Redis'}, ${sqlEnv.dialect === 'sqlite' ? 'SQLite' : 'PostgreSQL'}]`,
        unit: 'puts/s',
        minVsFloor: 0.8,
        notes: [
          'stockpyle writes the database first, then Redis (record + alias for the alternate key), then memory; the floor writes one row and one Redis key.',
        ],
      },
      results,
    ),
  ]
}
