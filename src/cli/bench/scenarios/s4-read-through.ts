/**
 * S4, cold read-through of 1,000 objects: the chain [memory, Redis, SQL] with both caches emptied
 * before each call (untimed) reads the 1,000 rows with one query and backfills Redis and memory.
 * The floor does the same necessary work by hand: one Kysely `where id in (…)` query mapping each row
 * to an object, one pipelined Redis SET per row (msgpackr, EX) and an lru-cache set per row. A second
 * row compares SqlStore alone with the query + mapping. Floor and store read the same table (JSON /
 * jsonb columns for the nested arrays, timestamptz, boolean, double precision).
 */
import { LRUCache } from 'lru-cache'
import { ChainedStore } from '../../../chain/chained-store.js'
import { ProcessMemoryStore } from '../../../stores/memory/process-memory-store.js'
import { BENCH_TTL_SECONDS, type BenchEnv, type SqlEnv } from '../env.js'
import { BenchUser } from '../fixtures.js'
import type { BenchCase } from '../runner.js'
import { judgeRow, ok, okAll, type RowResult, range, type ScenarioContext } from './common.js'

const BATCH = 1000
const PEER_CALLS = 40

/** A hand-written row → object mapping, as an application without stockpyle would write it. */
export function mapRow(r: Record<string, unknown>): BenchUser {
  const json = (v: unknown): never => (typeof v === 'string' ? JSON.parse(v) : v) as never
  return new BenchUser(
    Number(r.id),
    r.email as string,
    r.name as string,
    Number(r.org),
    r.role as string,
    r.active === true || r.active === 1 || r.active === 1n,
    Number(r.score),
    r.created instanceof Date ? r.created : new Date(r.created as string),
    json(r.tags),
    json(r.points),
  )
}

/** Runs S4 on one SQL database. */
export async function s4ReadThrough(env: BenchEnv, sqlEnv: SqlEnv, o: ScenarioContext): Promise<RowResult[]> {
  const { db } = sqlEnv
  const ids = range(1, BATCH)
  const lookups = ids.map((id) => ({ id }))
  const store = await sqlEnv.newStore()
  await store.get(BenchUser, { id: 1 })
  const row = `S4 ${sqlEnv.dialect}`
  const dbName = sqlEnv.dialect === 'sqlite' ? 'SQLite' : 'PostgreSQL'
  const selectOne = (id: number): Promise<unknown> => db.selectFrom(sqlEnv.table).selectAll().where('id', '=', id).executeTakeFirst()
  const queryAndMap = async (): Promise<BenchUser[]> => {
    const rows = await db.selectFrom(sqlEnv.table).selectAll().where('id', 'in', ids).execute()
    if (rows.length !== BATCH) throw new Error(`floor: ${rows.length} rows`)
    return rows.map((r) => mapRow(r as Record<string, unknown>))
  }
  const cases: BenchCase[] = [
    {
      row,
      library: 'query + mapping',
      role: 'floor',
      label: `one hand-written Kysely query (select * from the users table where id in (1,000 ids)) mapping each row to an object (JSON columns parsed, Date, boolean)`,
      run: queryAndMap,
    },
    {
      row,
      library: 'SqlStore alone',
      role: 'reference',
      label: 'SqlStore.batchGet of 1,000 primary keys (the layer alone, no chain)',
      run: async () => okAll(await store.batchGet(BenchUser, lookups), 'SqlStore batchGet'),
    },
  ]
  const closers: { close(): Promise<void> }[] = [store]
  const redis = env.redis
  if (redis !== undefined) {
    const lru = new LRUCache<string, Buffer>({ max: 10_000 })
    const floorKeys = ids.map((id) => `${env.prefix}:floor:s4:${sqlEnv.dialect}:${id}`)
    const memory = new ProcessMemoryStore()
    const redisStore = redis.newStore(`${env.prefix}:s4${sqlEnv.dialect}`)
    const chain = new ChainedStore([memory, redisStore, await sqlEnv.newStore()])
    closers.push(chain)
    // the keys the chain writes in Redis (records and aliases), to empty it before each call
    let chainKeys: string[] = []
    cases.unshift(
      {
        row,
        library: 'floor',
        role: 'floor',
        label:
          'the read-through by hand: one Kysely IN query mapping rows to objects, one pipelined Redis SET (msgpackr, EX) per row, an lru-cache set per row; both caches emptied before each call (untimed)',
        prepare: async () => {
          lru.clear()
          await redis.client.unlink(...floorKeys)
        },
        run: async () => {
          const objs = await queryAndMap()
          const pipeline = redis.client.pipeline()
          for (let k = 0; k < objs.length; k++) {
            const obj = objs[k] as BenchUser
            const key = floorKeys[obj.id - 1] as string
            const bytes = env.packr.pack(obj)
            pipeline.set(key, bytes, 'EX', BENCH_TTL_SECONDS)
            lru.set(key, bytes)
          }
          const replies = (await pipeline.exec()) ?? []
          for (const [err] of replies) if (err !== null) throw err
        },
      },
      {
        row,
        library: 'stockpyle',
        role: 'stockpyle',
        label: `ChainedStore([memory, redis, ${sqlEnv.dialect}]).batchGet of 1,000 with both caches emptied before each call (untimed): one SQL query + backfill of Redis and memory`,
        setup: async () => {
          okAll(await chain.batchGet(BenchUser, lookups), 'chain batchGet')
          chainKeys = await scanKeys(redis.client, `${env.prefix}:s4${sqlEnv.dialect}:*`)
          if (chainKeys.length < BATCH) throw new Error(`the chain backfilled ${chainKeys.length} Redis keys for ${BATCH} objects`)
        },
        prepare: async () => {
          await memory.clear()
          await redis.client.unlink(...chainKeys)
        },
        run: async () => okAll(await chain.batchGet(BenchUser, lookups), 'chain batchGet'),
      },
    )
    for (const peer of o.peers) {
      const cache = await peer.create({
        redisUrl: redis.url,
        namespace: `${env.prefix}:s4-${sqlEnv.dialect}-${peer.name}`,
        ttlSeconds: BENCH_TTL_SECONDS,
      })
      closers.push(cache)
      cases.push({
        row,
        library: peer.name,
        role: 'peer',
        label: `${peer.name}: Promise.all of 1,000 getOrSet on cold keys, each loading one row with a Kysely select (no batch loader)`,
        maxCalls: PEER_CALLS,
        run: async (i) => {
          const got = await Promise.all(ids.map((id) => cache.getOrSet(`s4:${i}:${id}`, () => selectOne(id) as Promise<object>)))
          okAll(got, peer.name)
        },
      })
    }
  }
  const results = await o.measure(cases)
  await Promise.allSettled(closers.map((c) => c.close()))
  const rows: RowResult[] = []
  if (redis !== undefined) {
    rows.push(
      judgeRow(
        {
          scenario: 'S4',
          row,
          title: `cold read-through of 1,000 objects: [memory, Redis, ${dbName}], both caches empty`,
          unit: 'batches/s',
          minVsFloor: 0.6,
          notes: [
            'stockpyle returns BenchUser instances with Dates and parsed arrays, as the floor maps them; it also writes an alias per object for the alternate key `email` (the floor does not).',
            'Peers have no database layer and no batch read-through: the closest equivalent is 1,000 concurrent getOrSet/wrap with a one-row loader, which also writes memory and Redis.',
          ],
        },
        results,
      ),
    )
  }
  rows.push(
    judgeRow(
      {
        scenario: 'S4',
        row: `${row} · SqlStore alone`,
        title: `batchGet of 1,000 objects from ${dbName}, the layer alone`,
        unit: 'batches/s',
        floor: 'query + mapping',
        headline: 'SqlStore alone',
        minVsFloor: 0.77,
        withPeers: false,
        layerAlone: true,
      },
      results,
    ),
  )
  return rows
}

async function scanKeys(client: NonNullable<BenchEnv['redis']>['client'], match: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, found] = await client.scan(cursor, 'MATCH', match, 'COUNT', 1000)
    cursor = next
    keys.push(...found)
  } while (cursor !== '0')
  ok(keys.length > 0 ? keys : undefined, 'scan of the chain keys')
  return keys
}
