/**
 * The chain's own cost on a put, without the network: ChainedStore([ProcessMemoryStore, KeyValueStore, db])
 * against the same stores' puts one after the other. The database is an in-process Map (a BaseStore); the
 * cache a KeyValueStore over a Map backend (bytes copied in and out), guarded as a remote layer (timeout and
 * breaker) since it is not in-process. Rounds of 2,000 puts of new objects, contenders alternating,
 * medians of 12 rounds after 3 of warm-up (see bench/RESULTS.md, rounds 18 and 20):
 *
 *   npm run build && node bench/put-overhead.js [stores,nomemory,nobreaker,chain]
 */

import { BenchUser, makeUser } from '../dist/cli/bench/fixtures.js'
import { copyingBackend } from './copying-backend.js'

const { BaseStore, capabilities, ChainedStore, KeyValueStore, ProcessMemoryStore, registerModel } = await import('../dist/index.js')
registerModel(BenchUser)
class Db extends BaseStore {
  name = 'db'
  capabilities = capabilities({ authoritative: true })
  rows = new Map()
  async readMany(_info, requests) {
    return requests.map(() => undefined)
  }
  async writeMany(items) {
    for (const i of items) this.rows.set(i.obj.id, JSON.stringify(i.obj))
  }
  async removeMany(items) {
    for (const i of items) this.rows.delete(i.obj.id)
  }
}
const backend = copyingBackend()
const db = new Db()
const kv = new KeyValueStore(backend)
const variants = {
  stores: async (u) => {
    await db.put(u)
    await kv.put(u)
  },
  nomemory: (
    (c) => (u) =>
      c.put(u)
  )(new ChainedStore([kv, db])),
  nobreaker: (
    (c) => (u) =>
      c.put(u)
  )(new ChainedStore([kv, db], { breaker: false })),
  chain: (
    (c) => (u) =>
      c.put(u)
  )(new ChainedStore([new ProcessMemoryStore({ max: 1000 }), kv, db])),
}
const kinds = (process.argv[2] ?? Object.keys(variants).join(',')).split(',')
let id = 1
const per = 2000
const res = {}
for (let r = 0; r < 15; r++) {
  for (const k of kinds) {
    if (r % 3 === 0) backend.clearAll()
    const t0 = performance.now()
    for (let i = 0; i < per; i++) await variants[k](makeUser(id++))
    const t = ((performance.now() - t0) / per) * 1000
    if (r >= 3) (res[k] ??= []).push(t)
  }
}
const med = (a) => a.sort((x, y) => x - y)[a.length >> 1]
for (const k of kinds) console.log(k.padEnd(10), med(res[k]).toFixed(2), 'µs/put')
