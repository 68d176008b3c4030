/**
 * Where the time of one remote get (S2) and one write (S5) goes: the raw client calls, each stockpyle
 * layer alone, and the chain, measured one after another in one process (wall µs and client CPU µs
 * per operation, the last of 3 rounds). Pin it for steadier figures:
 *
 *   taskset -c 0 node bench/breakdown.js [s2|s5|all]
 *
 * Needs `npm run build` and bench/.harness (compiled by `npm run bench`); starts its own servers.
 */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const dist = (p) => import(pathToFileURL(join(here, '..', 'dist', p)).href)
const harnessFile = join(here, '.harness', 'servers.js')
if (!existsSync(harnessFile)) throw new Error('run `npm run bench` once first (it compiles the harness to bench/.harness)')
const h = await import(pathToFileURL(harnessFile).href)
const { Redis } = await import('ioredis')
const { Packr } = await import('msgpackr')
const { ChainedStore, ProcessMemoryStore } = await dist('index.js')
const { RedisStore } = await dist('stores/redis/index.js')
const { SqlStore, createTable } = await dist('stores/sql/index.js')
const { BenchUser, makeUser, userFields, userRow, USER_COLUMNS, USER_TABLE } = await dist('cli/bench/fixtures.js')

const which = process.argv[2] ?? 'all'
const packr = new Packr({ moreTypes: true, useRecords: true })

async function measure(cases, n) {
  let next = 1
  for (let round = 0; round < 3; round++) {
    for (const [name, fn] of Object.entries(cases)) {
      const cpu = process.cpuUsage()
      const t = performance.now()
      for (let k = 0; k < n; k++) await fn(next++)
      const wall = ((performance.now() - t) * 1000) / n
      const c = process.cpuUsage(cpu)
      if (round === 2)
        console.log(
          `  ${name.padEnd(34)} ${wall.toFixed(0).padStart(5)} µs wall ${((c.user + c.system) / n).toFixed(0).padStart(5)} µs CPU`,
        )
    }
  }
}

const redis = await h.startRedis()
const pg = which === 's2' ? undefined : await h.startPostgres()
try {
  const raw = new Redis(redis.url)
  raw.on('error', () => {})
  if (which !== 's5') {
    const n = 2000
    const store = new RedisStore({ url: redis.url, lifetime: 600 })
    const total = 3 * 5 * n + 10
    for (let i = 0; i < total; i += 1000) await store.batchPut(Array.from({ length: 1000 }, (_, k) => makeUser(i + k + 1)))
    const chain = new ChainedStore([new ProcessMemoryStore(), store])
    const key = (i) => `stockpyle:${BenchUser.stockpyleName}|id=n${i}`
    console.log('S2: a get of an object Redis holds (every id read once)')
    await measure(
      {
        'ioredis getBuffer + decode': async (i) => packr.unpack(await raw.getBuffer(key(i)), { start: 10 }),
        'ioredis mgetBuffer([key]) + decode': async (i) => packr.unpack((await raw.mgetBuffer([key(i)]))[0], { start: 10 }),
        'RedisStore.get': (i) => store.get(BenchUser, { id: i }),
        'chain [memory, redis].get': (i) => chain.get(BenchUser, { id: i }),
      },
      n,
    )
    await chain.close()
  }
  if (pg !== undefined) {
    const n = 1000
    const sql = new SqlStore({ url: pg.url }, { tables: { [BenchUser.stockpyleName]: USER_TABLE } })
    await createTable(sql, BenchUser, { columns: USER_COLUMNS, table: USER_TABLE })
    const db = await sql.kysely()
    const redisStore = new RedisStore({ url: redis.url, lifetime: 600 })
    const chain = new ChainedStore([
      new ProcessMemoryStore(),
      new RedisStore({ url: redis.url, lifetime: 600 }),
      new SqlStore({ url: pg.url }, { tables: { [BenchUser.stockpyleName]: USER_TABLE } }),
    ])
    const upsert = (id) => {
      const values = userRow(id, 'postgres')
      const { id: _id, ...rest } = values
      return db
        .insertInto(USER_TABLE)
        .values(values)
        .onConflict((oc) => oc.column('id').doUpdateSet(rest))
        .execute()
    }
    const memory = new ProcessMemoryStore()
    console.log('S5: a put of a new object')
    await measure(
      {
        'Kysely upsert': (i) => upsert(i),
        'ioredis SET': (i) => raw.set(`k${i}`, packr.pack(userFields(i)), 'EX', 600),
        'Kysely upsert + ioredis SET': async (i) => {
          await upsert(i)
          await raw.set(`k${i}`, packr.pack(userFields(i)), 'EX', 600)
        },
        'SqlStore.put': (i) => sql.put(makeUser(i)),
        'RedisStore.put': (i) => redisStore.put(makeUser(i)),
        'ProcessMemoryStore.put': (i) => memory.put(makeUser(i)),
        'chain [memory, redis, pg].put': (i) => chain.put(makeUser(i)),
      },
      n,
    )
    await Promise.allSettled([chain.close(), sql.close(), redisStore.close()])
  }
  raw.disconnect()
} finally {
  await Promise.allSettled([redis.stop(), pg?.stop()])
}
process.exit(0)
