/**
 * A CPU profile of the timed loop only (inspector Profiler.start/stop around it, not the set-up), for a
 * Redis hit through the chain [memory (empty), Redis] or through RedisStore alone, with a real server
 * (the test harness's, pinned to CPU 1; run the client on CPU 0). Diff two profiles with
 * bench/profile-diff.js to see where the chain's time goes with a real round trip:
 *
 *   npm run build
 *   taskset -c 0 node bench/profile-timed.js get alone && taskset -c 0 node bench/profile-timed.js get chain
 *   node bench/profile-diff.js /tmp/stockpyle-get-alone.cpuprofile /tmp/stockpyle-get-chain.cpuprofile 40
 *
 * `batch` does batchGet of 100, the chain's memory layer cleared before each call: untimed in the µs
 * figure, but in the profile (lru-cache's `clear`, minified `#q`): leave it out when reading the diff.
 */
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { loadHarness } from './harness.js'

const [mode = 'get', which = 'chain'] = process.argv.slice(2)
if (!['get', 'batch'].includes(mode) || !['alone', 'chain'].includes(which)) {
  throw new Error('usage: node bench/profile-timed.js get|batch alone|chain')
}
const { openEnv } = await import('../dist/cli/bench/env.js')
const { BenchUser, makeUser } = await import('../dist/cli/bench/fixtures.js')
const { ChainedStore, ProcessMemoryStore, registerModel } = await import('../dist/index.js')
registerModel(BenchUser)
const harness = await loadHarness()
const redis = await harness.startRedis()
try {
  execFileSync('taskset', ['-apc', '1', String(redis.pid)], { stdio: 'ignore' })
} catch {}
const env = await openEnv({ stores: new Set(['memory', 'redis']), redisUrl: redis.url }, () => {})
const store = env.redis.newStore()
const N = 20_000
for (let i = 0; i < N; i += 1000) await store.batchPut(Array.from({ length: 1000 }, (_, k) => makeUser(i + k)))
const memory = new ProcessMemoryStore()
const chain = new ChainedStore([memory, store])
const target = which === 'chain' ? chain : store
const ids = (i) => Array.from({ length: 100 }, (_, x) => ({ id: (i * 100 + x) % N }))
const call = mode === 'get' ? (i) => target.get(BenchUser, { id: i % N }) : (i) => target.batchGet(BenchUser, ids(i))
// gets: each key once, so every chain get is a memory miss (15,000 timed + 3,000 warm-up < 20,000)
const [warm, timed] = mode === 'get' ? [3000, 15_000] : [300, 1500]
for (let i = 0; i < warm; i++) await call(i)
const session = new Session()
session.connect()
await session.post('Profiler.enable')
await session.post('Profiler.setSamplingInterval', { interval: 100 })
let ms = 0
await session.post('Profiler.start')
const c0 = process.cpuUsage()
for (let i = warm; i < warm + timed; i++) {
  if (mode === 'batch') await memory.clear()
  const t0 = performance.now()
  await call(i)
  ms += performance.now() - t0
}
const cpu = process.cpuUsage(c0)
const { profile } = await session.post('Profiler.stop')
const file = `/tmp/stockpyle-${mode}-${which}.cpuprofile`
writeFileSync(file, JSON.stringify(profile))
console.log(`${mode} ${which}: ${((ms / timed) * 1000).toFixed(1)} µs per call, user CPU ${(cpu.user / timed).toFixed(1)} µs; ${file}`)
await chain.close()
await env.close()
await redis.stop()
