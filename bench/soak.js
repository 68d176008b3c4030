// Soak benchmark (a script, not a test): mixed operations through [memory, Redis, PostgreSQL] while a
// server is killed (SIGKILL) and restarted every `--kill-every` operations, alternating Redis and
// PostgreSQL. Reports heap, RSS and open handles at start and end, and the errors callers saw, split by
// whether the database was up. Servers are started with the test harness on loopback.
//
//   npm run build && node bench/soak.js [--ops 1000000] [--kill-every 100000] [--concurrency 32]
//
// See docs/benchmarks.md ("Soak").
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { loadHarness } from './harness.js'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')
const dist = join(root, 'dist')
if (!existsSync(join(dist, 'index.js'))) throw new Error('run `npm run build` first (the soak imports ../dist)')

const { values: args } = parseArgs({
  options: {
    ops: { type: 'string', default: '1000000' },
    'kill-every': { type: 'string', default: '100000' },
    concurrency: { type: 'string', default: '32' },
    keys: { type: 'string', default: '50000' },
    outage: { type: 'string', default: '1000' },
  },
})
const OPS = Number(args.ops)
const KILL_EVERY = Number(args['kill-every'])
const CONCURRENCY = Number(args.concurrency)
const KEYS = Number(args.keys)
const OUTAGE_MS = Number(args.outage)
const MEMORY_MAX = 10_000

const { ChainedStore, ProcessMemoryStore, registerModel } = await import(pathToFileURL(join(dist, 'index.js')).href)
const { RedisStore } = await import(pathToFileURL(join(dist, 'stores/redis/index.js')).href)
const { SqlStore, createTable } = await import(pathToFileURL(join(dist, 'stores/sql/index.js')).href)

class SoakItem {
  static stockpyleName = 'SoakItem'
  static stockpyleKeys = ['id']
  constructor(id, version) {
    this.id = id
    this.version = version
    this.name = `item ${id}`
    this.data = { tags: ['a', 'b'], at: new Date(1_700_000_000_000 + id), n: id * 1.5 }
  }
}
registerModel(SoakItem)

function snapshot() {
  globalThis.gc?.()
  const m = process.memoryUsage()
  const resources = process.getActiveResourcesInfo()
  const byType = {}
  for (const r of resources) byType[r] = (byType[r] ?? 0) + 1
  return { heapMiB: +(m.heapUsed / 2 ** 20).toFixed(1), rssMiB: +(m.rss / 2 ** 20).toFixed(1), handles: resources.length, byType }
}

const harness = await loadHarness()
const [redis, postgres] = await Promise.all([harness.startRedis(), harness.startPostgres()])
const prefix = `soak${process.pid}`
const memory = new ProcessMemoryStore({ max: MEMORY_MAX, lifetime: 60 })
const cache = new RedisStore({ url: redis.url, prefix, lifetime: 300, timeout: 250 })
const db = new SqlStore({ url: postgres.url }, { maxConnections: 8 })
await createTable(db, SoakItem, { table: 'soak_items', columns: { id: 'integer', version: 'integer', name: 'text', data: 'json' } })
const chain = new ChainedStore([memory, cache, db], { breaker: { failures: 1, halfOpenAfter: 500 } })
let cacheErrors = 0
chain.events.on('cacheError', () => cacheErrors++)

let dbUp = true
const errors = { dbUp: 0, dbDown: 0, samples: [] }
const outages = []
let done = 0

async function outage(server, name) {
  const at = done
  const started = Date.now()
  if (name === 'postgres') dbUp = false
  server.kill('SIGKILL')
  await new Promise((r) => setTimeout(r, OUTAGE_MS))
  await server.restart()
  if (name === 'postgres') dbUp = true
  outages.push({ server: name, atOp: at, downMs: Date.now() - started })
}

function randomId() {
  return 1 + Math.floor(Math.random() * KEYS)
}

let pendingOutage = Promise.resolve()
let nextKill = KILL_EVERY
let kills = 0
async function worker() {
  while (done < OPS) {
    const n = ++done
    if (n >= nextKill) {
      nextKill += KILL_EVERY
      const target = kills++ % 2 === 0 ? [redis, 'redis'] : [postgres, 'postgres']
      pendingOutage = pendingOutage.then(() => outage(...target))
    }
    const upAtStart = dbUp
    const r = Math.random()
    try {
      if (r < 0.7) await chain.get(SoakItem, { id: randomId() })
      else if (r < 0.8)
        await chain.batchGet(
          SoakItem,
          Array.from({ length: 10 }, () => ({ id: randomId() })),
        )
      else if (r < 0.95) await chain.put(new SoakItem(randomId(), n))
      else await chain.delete(new SoakItem(randomId(), 0))
    } catch (err) {
      if (upAtStart && dbUp) {
        errors.dbUp++
        if (errors.samples.length < 10) errors.samples.push(`${err?.code ?? ''} ${err?.message ?? err}`.slice(0, 200))
      } else errors.dbDown++
    }
  }
}

// warm-up: fill the key space once, then measure from a settled process
for (let i = 1; i <= KEYS; i += 500) {
  await chain.batchPut(Array.from({ length: Math.min(500, KEYS - i + 1) }, (_, k) => new SoakItem(i + k, 0)))
}
const start = snapshot()
const t0 = Date.now()
await Promise.all(Array.from({ length: CONCURRENCY }, worker))
await pendingOutage
const seconds = (Date.now() - t0) / 1000
await new Promise((r) => setTimeout(r, 1000))
const end = snapshot()
const stats = chain.stats()

const report = {
  ops: OPS,
  killEvery: KILL_EVERY,
  concurrency: CONCURRENCY,
  keys: KEYS,
  memoryMax: MEMORY_MAX,
  seconds: +seconds.toFixed(1),
  opsPerSecond: Math.round(OPS / seconds),
  start,
  end,
  outages,
  errorsSeenByCallers: { whileDatabaseUp: errors.dbUp, whileDatabaseDown: errors.dbDown, samples: errors.samples },
  cacheErrorsReported: cacheErrors,
  layers: stats.map((s) => ({
    name: s.name,
    hits: s.hits,
    misses: s.misses,
    errors: s.errors,
    skipped: s.skipped,
    backfills: s.backfills,
  })),
  memoryStoreSize: memory.size,
}
console.log(JSON.stringify(report, null, 2))
await chain.close()
await Promise.all([redis.stop(), postgres.stop()])
