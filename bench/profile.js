/**
 * Profiling helper: runs one stockpyle hot path in a loop so that `node --cpu-prof` sees only it.
 *
 *   node bench/profile.js <target> [seconds] [profile.cpuprofile]
 *   node bench/cpuprofile-summary.js <profile.cpuprofile>
 *
 * With a third argument, only the timed loop is profiled (through node:inspector, after the setup)
 * and the profile is written there.
 *
 * Targets: s1-chain, s1-memory, s2-redis, s2-memcached, s3-redis, s4-sqlite, s4-postgres, s5, s6.
 * Servers are started with the test harness (compiled by bench/run.js into bench/.harness) when needed.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const dist = (p) => import(pathToFileURL(join(here, '..', 'dist', p)).href)
const target = process.argv[2]
const seconds = Number(process.argv[3] ?? 5)
const profileFile = process.argv[4]

const { ChainedStore, ProcessMemoryStore } = await dist('index.js')
const { BenchUser, makeUser, USER_COLUMNS, USER_TABLE } = await dist('cli/bench/fixtures.js')
const { CountingStore } = await dist('cli/bench/counting-store.js')

const harnessFile = join(here, '.harness', 'servers.js')
const harness = () => {
  if (!existsSync(harnessFile)) throw new Error('run `npm run bench` once first (it compiles the harness to bench/.harness)')
  return import(pathToFileURL(harnessFile).href)
}
const stops = []

async function redisStore() {
  const server = await (await harness()).startRedis()
  stops.push(() => server.stop())
  const { RedisStore } = await dist('stores/redis/index.js')
  return new RedisStore({ url: server.url, lifetime: 600, timeout: 5000 })
}

async function memcacheStore() {
  const servers = await (await harness()).startMemcached(3)
  stops.push(() => servers.stop())
  const { MemcacheStore } = await dist('stores/memcache/index.js')
  return new MemcacheStore({ servers: servers.servers, lifetime: 600, timeout: 5000 })
}

async function sqlStore(dialect) {
  const { SqlStore, createTable } = await dist('stores/sql/index.js')
  let url
  if (dialect === 'postgres') {
    const server = await (await harness()).startPostgres()
    stops.push(() => server.stop())
    url = server.url
  } else url = `sqlite:${join(here, 'out', `profile-${process.pid}.db`)}`
  const store = new SqlStore({ url }, { tables: { [BenchUser.stockpyleName]: USER_TABLE } })
  const db = await store.kysely()
  await db.schema.dropTable(USER_TABLE).ifExists().execute()
  await createTable(store, BenchUser, { columns: USER_COLUMNS, table: USER_TABLE })
  for (let from = 1; from <= 20_000; from += 1000) await store.batchPut(Array.from({ length: 1000 }, (_, k) => makeUser(from + k)))
  return store
}

async function loop(name, fn) {
  for (let k = 0; k < 200; k++) await fn(k)
  let session
  if (profileFile !== undefined) {
    session = new Session()
    session.connect()
    await session.post('Profiler.enable')
    await session.post('Profiler.setSamplingInterval', { interval: 100 })
    await session.post('Profiler.start')
  }
  const deadline = performance.now() + seconds * 1000
  let i = 200
  const start = performance.now()
  const cpu = process.cpuUsage()
  while (performance.now() < deadline) for (let k = 0; k < 16; k++) await fn(i++)
  i -= 200
  const s = (performance.now() - start) / 1000
  const used = process.cpuUsage(cpu)
  const cpuS = (used.user + used.system) / 1e6
  // ops per CPU-second of this process: less sensitive than wall time to other load on the machine
  if (session !== undefined) {
    const { profile } = await session.post('Profiler.stop')
    mkdirSync(dirname(profileFile), { recursive: true })
    writeFileSync(profileFile, JSON.stringify(profile))
    session.disconnect()
  }
  process.stderr.write(`${name}: ${i} ops in ${s.toFixed(2)} s = ${Math.round(i / s)} ops/s (${Math.round(i / cpuS)} ops per CPU-second)\n`)
}

const ids = Array.from({ length: 1000 }, (_, k) => k + 1)
try {
  switch (target) {
    case 's1-memory': {
      const m = new ProcessMemoryStore()
      await m.batchPut(ids.map(makeUser))
      await loop(target, (i) => m.get(BenchUser, { id: (i % 1000) + 1 }))
      break
    }
    case 's1-chain': {
      const chain = new ChainedStore([new ProcessMemoryStore(), new ProcessMemoryStore({ name: 'memory-2' })])
      await chain.batchPut(ids.map(makeUser))
      await loop(target, (i) => chain.get(BenchUser, { id: (i % 1000) + 1 }))
      break
    }
    case 's2-redis':
    case 's2-memcached': {
      const store = target === 's2-redis' ? await redisStore() : await memcacheStore()
      const n = 200_000
      for (let from = 0; from < n; from += 1000) await store.batchPut(Array.from({ length: 1000 }, (_, k) => makeUser(from + k + 1)))
      const chain = new ChainedStore([new ProcessMemoryStore(), store])
      await loop(target, (i) => chain.get(BenchUser, { id: (i % n) + 1 }))
      break
    }
    case 's3-redis': {
      const store = await redisStore()
      await store.batchPut(ids.map(makeUser))
      const lookups = ids.slice(0, 100).map((id) => ({ id }))
      await loop(target, () => store.batchGet(BenchUser, lookups))
      break
    }
    case 's4-sqlite':
    case 's4-postgres': {
      const store = await sqlStore(target === 's4-sqlite' ? 'sqlite' : 'postgres')
      const lookups = ids.map((id) => ({ id }))
      await loop(target, () => store.batchGet(BenchUser, lookups))
      break
    }
    case 's5': {
      const chain = new ChainedStore([new ProcessMemoryStore(), await redisStore(), await sqlStore('postgres')])
      await loop(target, (i) => chain.put(makeUser(1_000_000 + i)))
      break
    }
    case 's6': {
      const chain = new ChainedStore([new ProcessMemoryStore(), await redisStore(), new CountingStore(await sqlStore('postgres'))])
      await loop(target, (i) => Promise.all(Array.from({ length: 1000 }, () => chain.get(BenchUser, { id: 1 + (i % 19_000) }))))
      break
    }
    default:
      throw new Error(`unknown target ${target}`)
  }
} finally {
  for (const stop of stops) await stop()
}
process.exit(0)
