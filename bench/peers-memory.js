/**
 * S7 for the peers, run by the suite as `node --expose-gc bench/peers-memory.js <job>`: fills a
 * peer's byte-bounded memory tier with the same small objects as stockpyle's S7 and reports the
 * growth with the suite's own measurement (dist/cli/bench/memory-bound.js).
 */
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { measureMemory } from '../dist/cli/bench/memory-bound.js'

const job = JSON.parse(process.argv[2] ?? '{}')

function subject() {
  switch (job.kind) {
    case 'BentoCache': {
      const bento = new BentoCache({
        default: 'memory',
        stores: { memory: bentostore().useL1Layer(memoryDriver({ maxSize: job.maxSize, maxItems: job.count })) },
      })
      let count = 0
      return {
        library: 'BentoCache',
        label:
          "memoryDriver({ maxSize: '64mb', maxItems: 1e6 }) (BentoCache's L1 alone; maxItems raised to the object count so that the byte bound governs)",
        insert: async (from, to) => {
          for (let i = from; i < to; i++) await bento.set({ key: `item:${i}`, value: { id: i, name: `item-${i}`, n: i * 3 } })
          count = to
        },
        get: (id) => bento.get({ key: `item:${id}` }),
        accounted: () => undefined,
        // BentoCache exposes no entry count: count the resident ones by probing from the newest down.
        async entries() {
          let n = 0
          for (let i = count - 1; i >= 0; i--) {
            if ((await bento.has({ key: `item:${i}` })) === false) break
            n++
          }
          return n
        },
      }
    }
    default:
      throw new Error(`unknown peer memory kind ${job.kind}`)
  }
}

const report = await measureMemory(job, subject)
process.stdout.write(`${JSON.stringify(report)}\n`)
process.exit(0)
