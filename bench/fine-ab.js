/**
 * Two paths of issue 13 measured with fine interleaving, for where the full bench's rounds (hundreds
 * of calls each, 12 per contender) are too coarse for this machine's drift: every contender runs
 * `PER` calls in turn, `ROUNDS` times over, and the report is the total time per call, its ratio to
 * the floor, the user and system CPU per call (process.cpuUsage: every thread, GC helpers
 * included) and the garbage collectors' pauses per call (each pause counted to the contender that was
 * running when it began). Starts its own servers (the test harness's), client pinned to CPU 0, servers to CPU 1.
 *
 *   npm run build && node bench/fine-ab.js get [contenders] [rounds]
 *     contenders of `get` (a Redis hit, the memory layer never holding the key):
 *     floor (ioredis getBuffer + msgpackr decode), alone (RedisStore.get),
 *     chain (ChainedStore([ProcessMemoryStore, RedisStore]).get), nobreaker (the same chain, breaker: false),
 *     small (the same chain, a memory layer of 10 objects: no growth to scavenge),
 *     hollow (the same chain, a first layer that holds nothing: the chain's machinery without the
 *     memory layer's lookups and backfills, so chain − hollow is the memory layer's share)
 *   npm run build && node bench/fine-ab.js put [contenders] [rounds]
 *     contenders of `put` (S5, a new object each call):
 *     floor (Kysely upsert + ioredis SET), chain (ChainedStore([memory, Redis, PostgreSQL]).put),
 *     nomemory (the chain without its memory layer), nobreaker (nomemory with breaker: false), smallmemory (the chain, a memory layer of 10
 *     objects: what is put dies young), stores (SqlStore.put, then RedisStore.put),
 *     sql (SqlStore.put), upsert (the floor's Kysely upsert alone), redis (RedisStore.put),
 *     chainsql / chainredis (a chain of that one store: the chain's own cost on one layer),
 *     plaindb (the chain over a SqlStore on the application's own Kysely and pg Pool without
 *     timeouts: what the store's bounds on checkouts and statements cost)
 */
import { execFileSync } from 'node:child_process'
import { PerformanceObserver } from 'node:perf_hooks'
import { loadHarness } from './harness.js'
import { hollowStoreClass } from './hollow-store.js'

const [mode = 'get', list, roundsArg] = process.argv.slice(2)
if (mode !== 'get' && mode !== 'put') throw new Error('usage: node bench/fine-ab.js get|put [contenders] [rounds]')
const { BENCH_TTL_SECONDS, openEnv } = await import('../dist/cli/bench/env.js')
const { BenchUser, makeUser, upsertUser, userFields } = await import('../dist/cli/bench/fixtures.js')
const { BaseStore, ChainedStore, ProcessMemoryStore, capabilities, registerModel } = await import('../dist/index.js')
registerModel(BenchUser)

const HollowStore = hollowStoreClass({ BaseStore, capabilities })

const harness = await loadHarness()
const servers = await Promise.all(mode === 'get' ? [harness.startRedis()] : [harness.startRedis(), harness.startPostgres()])
const [redis, postgres] = servers
const pin = (pid, cpu) => {
  try {
    execFileSync('taskset', ['-apc', String(cpu), String(pid)], { stdio: 'ignore' })
  } catch {}
}
pin(process.pid, 0)
for (const s of servers) pin(s.pid, 1)
const stores = new Set(['memory', 'redis', ...(mode === 'put' ? ['postgres'] : [])])
const env = await openEnv({ stores, redisUrl: redis.url, postgresUrl: postgres?.url }, () => {})
const client = env.redis.client
const closers = []
const chainOf = (layers, options) => {
  const chain = new ChainedStore(layers, options)
  closers.push(chain)
  return chain
}

let run
let N = Number.POSITIVE_INFINITY
if (mode === 'get') {
  N = 20_000
  const store = env.redis.newStore()
  for (let i = 0; i < N; i += 1000) await store.batchPut(Array.from({ length: 1000 }, (_, k) => makeUser(i + k)))
  const pipeline = client.pipeline()
  for (let i = 0; i < N; i++) pipeline.set(`floor:${i}`, env.packr.pack(userFields(i)), 'EX', BENCH_TTL_SECONDS)
  await pipeline.exec()
  const chain = chainOf([new ProcessMemoryStore(), store])
  const nobreaker = chainOf([new ProcessMemoryStore(), store], { breaker: false })
  const small = chainOf([new ProcessMemoryStore({ max: 10 }), store])
  const hollow = chainOf([new HollowStore(), store])
  run = {
    floor: async (i) => env.packr.unpack(await client.getBuffer(`floor:${i}`)),
    alone: (i) => store.get(BenchUser, { id: i }),
    chain: (i) => chain.get(BenchUser, { id: i }),
    nobreaker: (i) => nobreaker.get(BenchUser, { id: i }),
    small: (i) => small.get(BenchUser, { id: i }),
    hollow: (i) => hollow.get(BenchUser, { id: i }),
  }
} else {
  const db = env.postgres.db
  const upsert = (id) => upsertUser(db, env.postgres.table, 'postgres', id)
  const rs = env.redis.newStore()
  const sql = await env.postgres.newStore()
  const chain = chainOf([new ProcessMemoryStore(), rs, sql])
  const nomemory = chainOf([rs, sql])
  const nobreaker = chainOf([rs, sql], { breaker: false })
  const smallmemory = chainOf([new ProcessMemoryStore({ max: 10 }), rs, sql])
  const chainsql = chainOf([sql])
  const { Kysely, PostgresDialect } = await import('kysely')
  const { default: pg } = await import('pg')
  const { SqlStore } = await import('../dist/stores/sql/index.js')
  const plainPool = new pg.Pool({ connectionString: postgres.url, max: 10 })
  const plainDb = new Kysely({ dialect: new PostgresDialect({ pool: plainPool }) })
  closers.push({ close: () => plainDb.destroy() })
  const plaindb = chainOf([
    new ProcessMemoryStore(),
    rs,
    new SqlStore({ db: plainDb }, { tables: { [BenchUser.stockpyleName]: env.postgres.table } }),
  ])
  const chainredis = chainOf([rs])
  run = {
    floor: async (id) => {
      await upsert(id)
      await client.set(`floor:${id}`, env.packr.pack(userFields(id)), 'EX', BENCH_TTL_SECONDS)
    },
    chain: (id) => chain.put(makeUser(id)),
    nomemory: (id) => nomemory.put(makeUser(id)),
    nobreaker: (id) => nobreaker.put(makeUser(id)),
    smallmemory: (id) => smallmemory.put(makeUser(id)),
    stores: async (id) => {
      const user = makeUser(id)
      await sql.put(user)
      await rs.put(user)
    },
    sql: (id) => sql.put(makeUser(id)),
    chainsql: (id) => chainsql.put(makeUser(id)),
    plaindb: (id) => plaindb.put(makeUser(id)),
    chainredis: (id) => chainredis.put(makeUser(id)),
    redis: (id) => rs.put(makeUser(id)),
    upsert,
  }
}

const kinds = (list ?? (mode === 'get' ? 'floor,alone,chain' : 'floor,chain,stores')).split(',')
for (const k of kinds) if (run[k] === undefined) throw new Error(`no contender ${k} for ${mode}: ${Object.keys(run).join(', ')}`)
const PER = mode === 'get' ? 50 : 25
const ROUNDS = Number(roundsArg ?? (mode === 'get' ? 240 : 120))
const WARMUP = 5
const time = {}
const cpu = {}
// Garbage collections (start, duration), attributed afterwards to the contender whose window held them.
const gcs = []
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcs.push([e.startTime, e.duration])
})
gcObserver.observe({ entryTypes: ['gc'] })
const windows = []
const next = {}
kinds.forEach((k, n) => {
  next[k] = mode === 'get' ? 0 : 10_000_000 + n * 1_000_000
})
for (let r = 0; r < ROUNDS; r++) {
  for (const k of kinds) {
    const c0 = process.cpuUsage()
    const t0 = performance.now()
    for (let c = 0; c < PER; c++) {
      const value = await run[k](next[k]++ % N)
      if (mode === 'get' && value === undefined) throw new Error(`${k}: unexpected miss`)
    }
    if (r < WARMUP) continue
    const t1 = performance.now()
    windows.push([t0, t1, k])
    time[k] = (time[k] ?? 0) + t1 - t0
    const used = process.cpuUsage(c0)
    cpu[k] ??= { user: 0, system: 0 }
    cpu[k].user += used.user
    cpu[k].system += used.system
  }
}
const calls = (ROUNDS - WARMUP) * PER
await new Promise((resolve) => setTimeout(resolve, 50))
gcObserver.disconnect()
const gcMs = {}
for (const [start, duration] of gcs) {
  const w = windows.find(([t0, t1]) => start >= t0 && start < t1)
  if (w !== undefined) gcMs[w[2]] = (gcMs[w[2]] ?? 0) + duration
}
console.log(`${mode}: ${PER} calls per contender per round, ${ROUNDS - WARMUP} rounds (after ${WARMUP} of warm-up)`)
for (const k of kinds) {
  const ratio = time.floor === undefined ? '' : `  ${(time.floor / time[k]).toFixed(3)}x floor`
  console.log(
    `${k.padEnd(10)} ${((time[k] / calls) * 1000).toFixed(1).padStart(8)} µs/call${ratio}  user ${(cpu[k].user / calls).toFixed(1)} µs  sys ${(cpu[k].system / calls).toFixed(1)} µs  gc ${(((gcMs[k] ?? 0) / calls) * 1000).toFixed(1)} µs`,
  )
}
await Promise.allSettled(closers.map((c) => c.close()))
await env.close()
await Promise.allSettled(servers.map((s) => s.stop()))
