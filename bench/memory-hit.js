/**
 * S1's question in isolation: a chain [memory, memory] hit against its memory layer alone, 200,000
 * gets of 1,000 keys per round, nine interleaved rounds, medians (no server needed):
 *
 *   npm run build && taskset -c 0 node bench/memory-hit.js
 */

import { BenchUser, makeUser } from '../dist/cli/bench/fixtures.js'
import { ChainedStore, ProcessMemoryStore, registerModel } from '../dist/index.js'

registerModel(BenchUser)
const KEYS = 1000
const users = Array.from({ length: KEYS }, (_, i) => makeUser(i + 1))
const memory = new ProcessMemoryStore()
const chain = new ChainedStore([new ProcessMemoryStore(), new ProcessMemoryStore({ name: 'm2' })])
await memory.batchPut(users)
await chain.batchPut(users)
const N = 200_000
async function round(target) {
  const t = performance.now()
  for (let i = 0; i < N; i++) await target.get(BenchUser, { id: (i % KEYS) + 1 })
  return ((performance.now() - t) / N) * 1e6
}
const res = { alone: [], chain: [] }
for (let r = 0; r < 9; r++) {
  res.alone.push(await round(memory))
  res.chain.push(await round(chain))
}
const med = (a) => a.sort((x, y) => x - y)[a.length >> 1]
console.log(`alone ${med(res.alone).toFixed(0)} ns, chain ${med(res.chain).toFixed(0)} ns per get`)
