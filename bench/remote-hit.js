/**
 * S2's question in isolation: a chain [memory, Redis] against RedisStore alone, each get of a key the
 * chain's memory layer never held (a miss, a Redis hit, a memory backfill). Starts its own
 * redis-server on 127.0.0.1:27412 pinned to CPU 1; run the client on CPU 0. Interleaved rounds, medians:
 *
 *   npm run build && taskset -c 0 node bench/remote-hit.js
 */
import { spawn } from 'node:child_process'
import { BenchUser, makeUser } from '../dist/cli/bench/fixtures.js'
import { ChainedStore, ProcessMemoryStore, registerModel } from '../dist/index.js'
import { RedisStore } from '../dist/stores/redis/index.js'

registerModel(BenchUser)
const port = 27412
const srv = spawn(
  'taskset',
  ['-c', '1', 'redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
  { stdio: 'ignore' },
)
await new Promise((r) => setTimeout(r, 300))
const store = new RedisStore({ url: `redis://127.0.0.1:${port}` })
const N = 12000
for (let i = 0; i < N; i += 1000) await store.batchPut(Array.from({ length: 1000 }, (_, k) => makeUser(i + k)))
const CALLS = 2000
async function round(kind, r) {
  // a new chain per round: its memory layer starts empty and holds every object it reads
  const target = kind === 'alone' ? store : new ChainedStore([new ProcessMemoryStore(), store])
  const t = performance.now()
  for (let k = 0; k < CALLS; k++) await target.get(BenchUser, { id: (r * CALLS + k) % N })
  return ((performance.now() - t) / CALLS) * 1000
}
const res = { alone: [], chain: [] }
for (let r = 0; r < 12; r++) for (const kind of Object.keys(res)) res[kind].push(await round(kind, r))
const med = (a) => a.sort((x, y) => x - y)[a.length >> 1]
for (const [k, v] of Object.entries(res)) console.log(k.padEnd(14), med(v).toFixed(1), 'µs/get')
await store.close()
srv.kill()
