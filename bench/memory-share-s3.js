/**
 * The memory layer's share of S3 without a network: a `batchGet` of 100 through a chain [memory layer
 * cleared before each batch (untimed), KeyValueStore(MapBackend)], against the same KeyValueStore
 * alone, a chain whose first layer holds nothing (`hollow`: the chain's machinery without the memory
 * layer) and a memory layer that takes no backfill (`nobf`: its lookups without its copies).
 * chain − nobf is the backfills' cost, nobf − hollow the misses'. Contenders alternate in rounds of
 * 100 batches; run it pinned (`taskset -c 0`) for steadier figures.
 *
 *   npm run build && taskset -c 0 node bench/memory-share-s3.js [contenders] [rounds]
 *     contenders: alone, hollow, nobf, chain (default all); rounds default 60 (the first 10 warm up)
 *   DIST=/abs/path/to/other/dist node bench/memory-share-s3.js …   the same against another build (A/B)
 */
import { hollowStoreClass } from './hollow-store.js'

const DIST = process.env.DIST ?? new URL('../dist', import.meta.url).pathname
const [list = 'alone,hollow,nobf,chain', roundsArg = '60'] = process.argv.slice(2)
const { BenchUser, makeUser } = await import(`${DIST}/cli/bench/fixtures.js`)
const { BaseStore, capabilities, ChainedStore, ProcessMemoryStore, KeyValueStore, registerModel } = await import(`${DIST}/index.js`)
const { MapBackend } = await import(`${DIST}/testing/index.js`)
registerModel(BenchUser)

const POOL = 20_000
const BATCH = 100
const BATCHES_PER_ROUND = 100
const WARMUP_ROUNDS = 10
const backend = new KeyValueStore(new MapBackend())
for (let i = 0; i < POOL; i += 1000) await backend.batchPut(Array.from({ length: 1000 }, (_, k) => makeUser(i + k)))

const HollowStore = hollowStoreClass({ BaseStore, capabilities })
class NoBackfill extends ProcessMemoryStore {
  backfillNow() {}
}
const memory = new ProcessMemoryStore()
const nobfMemory = new NoBackfill()
const chain = new ChainedStore([memory, backend])
const nobfChain = new ChainedStore([nobfMemory, backend])
const hollowChain = new ChainedStore([new HollowStore(), backend])
const cases = {
  alone: { run: (lookups) => backend.batchGet(BenchUser, lookups) },
  hollow: { run: (lookups) => hollowChain.batchGet(BenchUser, lookups) },
  nobf: { prepare: () => nobfMemory.clear(), run: (lookups) => nobfChain.batchGet(BenchUser, lookups) },
  chain: { prepare: () => memory.clear(), run: (lookups) => chain.batchGet(BenchUser, lookups) },
}
const kinds = list.split(',')
for (const k of kinds) if (cases[k] === undefined) throw new Error(`no contender ${k}: ${Object.keys(cases).join(', ')}`)
const rounds = Number(roundsArg)
let next = 0
const lookups = () => Array.from({ length: BATCH }, () => ({ id: next++ % POOL }))
const spent = {}
for (let r = 0; r < rounds; r++) {
  for (const k of kinds) {
    const c = cases[k]
    let ms = 0
    for (let b = 0; b < BATCHES_PER_ROUND; b++) {
      const batch = lookups()
      await c.prepare?.()
      const start = performance.now()
      const got = await c.run(batch)
      ms += performance.now() - start
      if (got.length !== BATCH || got.includes(undefined)) throw new Error(`${k}: a lookup missed`)
    }
    if (r >= WARMUP_ROUNDS) spent[k] = (spent[k] ?? 0) + ms
  }
}
const batches = (rounds - WARMUP_ROUNDS) * BATCHES_PER_ROUND
for (const k of kinds) console.log(`${k.padEnd(7)} ${((spent[k] / batches) * 1000).toFixed(1).padStart(7)} µs per batch of ${BATCH}`)
process.exit(0)
