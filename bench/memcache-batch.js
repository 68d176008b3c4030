// batchGet of 100 keys through a 3-server memcached pool, against the raw memcache-client floor.
//
//   npm run build && node bench/memcache-batch.js [iterations=2000] [rounds=3]
//
// Starts 3 memcached processes on free loopback ports (stopped by PID at the end), fills 100 objects
// (~200 B encoded each) and times, in the same process and interleaved round by round:
//   store     MemcacheStore.batchGet(Model, 100 lookups by primary key): keys, codec, copies, hashing
//   backend   MemcacheBackend.getMany(100 keys): hashing + transport, no codec
//   raw       one memcache-client per server, client.get([keys of that server]) in parallel, keys
//             grouped beforehand: the transport floor
// Reports batches/s (best round), each as a ratio to raw, and requests per server per batch.
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { MemcacheClient } from 'memcache-client'
import { MemcacheStore } from '../dist/stores/memcache/index.js'

const iterations = Number(process.argv[2] ?? 2000)
const rounds = Number(process.argv[3] ?? 3)

class BenchUser {
  static stockpyleName = 'BenchUser'
  static stockpyleKeys = ['id']
  constructor(id) {
    this.id = id
    this.email = `user${id}@example.com`
    this.name = `User number ${id} with a reasonably long display name`
    this.createdAt = new Date(Date.UTC(2024, 0, 1) + id)
    this.tags = ['alpha', 'beta', `t${id}`]
    this.score = id * 1.5
    this.bio = 'x'.repeat(60)
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

async function startMemcached() {
  const port = await freePort()
  const args = ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-m', '64']
  if (process.getuid?.() === 0) args.push('-u', 'nobody')
  const child = spawn('memcached', args, { stdio: 'ignore' })
  const probe = new MemcacheClient({ server: `127.0.0.1:${port}`, cmdTimeout: 500 })
  for (let i = 0; ; i++) {
    try {
      await probe.version()
      break
    } catch (err) {
      if (i > 100) throw err
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  probe.shutdown()
  return { address: `127.0.0.1:${port}`, pid: child.pid, child }
}

async function time(fn) {
  for (let i = 0; i < 50; i++) await fn() // warm-up
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < iterations; i++) await fn()
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  return (iterations * 1000) / ms
}

const servers = await Promise.all([startMemcached(), startMemcached(), startMemcached()])
const addresses = servers.map((s) => s.address)
try {
  const store = new MemcacheStore({ servers: addresses, prefix: 'bench' })
  const users = Array.from({ length: 100 }, (_, i) => new BenchUser(i))
  const lookups = users.map((u) => ({ id: u.id }))
  await store.batchPut(users)

  const check = await store.batchGet(BenchUser, lookups)
  if (check.some((u, i) => u?.id !== i)) throw new Error('bench: store did not return every object')

  const keys = lookups.map((l) => `bench:BenchUser|id=n${l.id}`)
  const backend = store.backend
  const byServer = new Map(addresses.map((a) => [a, []]))
  for (const key of keys) byServer.get(backend.serverFor(key)).push(key)
  const raw = addresses.map((a) => ({
    client: new MemcacheClient({ server: { server: a, maxConnections: 1 }, cmdTimeout: 1000, noDelay: true }),
    keys: byServer.get(a),
  }))
  const rawHits = (await Promise.all(raw.map((r) => r.client.get(r.keys)))).reduce((n, r) => n + Object.keys(r).length, 0)
  if (rawHits !== 100) throw new Error(`bench: raw multi-get found ${rawHits} of 100 keys`)

  const runs = {
    store: () => store.batchGet(BenchUser, lookups),
    backend: () => backend.getMany(keys),
    raw: () => Promise.all(raw.map((r) => r.client.get(r.keys))),
  }
  const best = { store: 0, backend: 0, raw: 0 }
  const before = store.stats()
  let storeBatches = 0
  for (let round = 0; round < rounds; round++) {
    for (const [name, fn] of Object.entries(runs)) {
      const opsPerSec = await time(fn)
      if (name === 'store') storeBatches += iterations + 50
      best[name] = Math.max(best[name], opsPerSec)
    }
  }
  const after = store.stats()
  // the backend run also goes through the store's backend: separate its requests out
  const backendBatches = rounds * (iterations + 50)
  const perServer = after.map((s, i) => ({
    server: s.server,
    keys: byServer.get(s.server).length,
    getRequestsPerBatch: (s.getRequests - before[i].getRequests) / (storeBatches + backendBatches),
  }))

  console.log(`memcached pool of 3 (${addresses.join(', ')}), batchGet of 100 keys, ${iterations} batches x ${rounds} rounds, best round`)
  console.table(perServer)
  console.table(
    Object.entries(best).map(([name, ops]) => ({
      run: name,
      'batches/s': Math.round(ops),
      'keys/s': Math.round(ops * 100),
      'µs/batch': Math.round(1e6 / ops),
      'ratio to raw': (ops / best.raw).toFixed(2),
    })),
  )
  for (const r of raw) r.client.shutdown()
  await store.close()
} finally {
  for (const s of servers) {
    try {
      process.kill(s.pid, 'SIGTERM')
    } catch {}
  }
}
