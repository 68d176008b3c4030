/**
 * The chain's own cost, without the network: `ChainedStore([ProcessMemoryStore, KeyValueStore])` against
 * the KeyValueStore alone, the KeyValueStore on an in-process Map backend (bytes copied in and out, as a
 * client would). Every chain read is a memory miss, a hit below and a memory backfill (the memory layer
 * is cleared before each timed call, untimed). Interleaved rounds, medians. Used to profile the chain's
 * read path where the real servers' noise would hide it (see bench/RESULTS.md):
 *
 *   npm run build && node bench/chain-overhead.js [batch|single] [calls per round]
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof bench/chain-overhead.js batch
 *   node --trace-gc bench/chain-overhead.js batch | grep -c Scavenge
 */

import { BenchUser, makeUser } from '../dist/cli/bench/fixtures.js'
import { ChainedStore, KeyValueStore, ProcessMemoryStore, registerModel } from '../dist/index.js'
import { copyingBackend } from './copying-backend.js'

registerModel(BenchUser)
const mode = process.argv[2] ?? 'batch'
const calls = Number(process.argv[3] ?? (mode === 'batch' ? 2000 : 20000))
if (mode !== 'batch' && mode !== 'single') throw new Error('usage: node bench/chain-overhead.js [batch|single] [calls per round]')

const backend = copyingBackend()
const store = new KeyValueStore(backend)
const N = 20_000
for (let i = 0; i < N; i += 1000) await store.batchPut(Array.from({ length: 1000 }, (_, k) => makeUser(i + k)))
const memory = new ProcessMemoryStore()
const chain = new ChainedStore([memory, store])
const batch = (k) => Array.from({ length: 100 }, (_, x) => ({ id: (x + k * 100) % N }))

async function round(target) {
  let ms = 0
  for (let k = 0; k < calls; k++) {
    await memory.clear()
    if (mode === 'batch') {
      const lookups = batch(k)
      const start = performance.now()
      await target.batchGet(BenchUser, lookups)
      ms += performance.now() - start
    } else {
      const start = performance.now()
      await target.get(BenchUser, { id: k % N })
      ms += performance.now() - start
    }
  }
  return (ms / calls) * 1000
}

const results = { 'KeyValueStore alone': [], chain: [] }
for (let r = 0; r < 7; r++) {
  results['KeyValueStore alone'].push(await round(store))
  results.chain.push(await round(chain))
}
const median = (a) => a.sort((x, y) => x - y)[a.length >> 1]
const unit = mode === 'batch' ? 'µs per batchGet of 100' : 'µs per get'
for (const [name, values] of Object.entries(results)) console.log(`${name.padEnd(20)} ${median(values).toFixed(1).padStart(8)} ${unit}`)
console.log(`chain ÷ alone: ${(median(results.chain) / median(results['KeyValueStore alone'])).toFixed(2)}x the time`)
