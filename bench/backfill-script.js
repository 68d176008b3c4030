/**
 * The Redis store's backfill script (src/stores/redis/redis-backfill.ts) measured on the server: 250
 * backfills of a 180-byte record with one alias per call, the keys deleted before each call, the
 * server's own time per call (`INFO commandstats`) as the median of 12 rounds of 100 calls. Compares
 * the script as built with the same script passing lifetimes to SET as Lua numbers (round 19's form),
 * alternating. Starts its own Redis (the test harness's), client on CPU 0, server on CPU 1.
 *
 *   npm run build && node bench/backfill-script.js
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import Redis from 'ioredis'
import { loadHarness } from './harness.js'

const source = readFileSync(new URL('../src/stores/redis/redis-backfill.ts', import.meta.url), 'utf8')
const built = /const SCRIPT = `([\s\S]*?)`/.exec(source)?.[1]
if (built === undefined) throw new Error('no SCRIPT in src/stores/redis/redis-backfill.ts')
const numbers = built.replaceAll('ms(px)', 'px').replaceAll('ms(apx)', 'apx')
if (numbers === built) throw new Error('the script has no ms() to take out: update this bench')

const harness = await loadHarness()
const redis = await harness.startRedis()
const pin = (pid, cpu) => {
  try {
    execFileSync('taskset', ['-apc', String(cpu), String(pid)], { stdio: 'ignore' })
  } catch {}
}
pin(process.pid, 0)
pin(redis.pid, 1)
const client = new Redis(redis.url)
const N = 250
const record = Buffer.alloc(180, 7)
record[0] = 1
record[1] = 1
const alias = Buffer.alloc(30, 65)
alias[0] = 1
alias[1] = 2
const parts = []
for (let i = 0; i < N; i++) {
  const head = Buffer.alloc(14)
  head.writeUInt16BE(1, 0)
  head.writeDoubleBE(3_600_000, 2)
  head.writeUInt32BE(record.length, 10)
  const aliasHead = Buffer.alloc(12)
  aliasHead.writeDoubleBE(3_600_000, 0)
  aliasHead.writeUInt32BE(alias.length, 8)
  parts.push(head, record, aliasHead, alias)
}
const blob = Buffer.concat(parts)
const keys = []
for (let i = 0; i < N; i++) keys.push(`bfs:r:${i}`, `bfs:a:${i}`)
const now = Date.now()
const times = { built: [], 'lifetimes as numbers': [] }
for (let round = 0; round < 12; round++) {
  for (const [name, script] of [
    ['built', built],
    ['lifetimes as numbers', numbers],
  ]) {
    await client.config('RESETSTAT')
    for (let call = 0; call < 100; call++) {
      await client.del(...keys)
      const stored = await client.eval(script, keys.length, ...keys, blob, -1, now)
      if (stored.some((s) => s !== 1)) throw new Error(`${name}: a backfill was not stored`)
    }
    const line = (await client.info('commandstats')).split('\n').find((l) => l.startsWith('cmdstat_eval:'))
    times[name].push(Number(/usec_per_call=([\d.]+)/.exec(line)?.[1]))
  }
}
for (const [name, values] of Object.entries(times)) {
  values.sort((a, b) => a - b)
  console.log(
    `${name.padEnd(22)} ${values[values.length >> 1].toFixed(0).padStart(6)} µs per call of ${N} backfills (server time, median of 12; min ${values[0].toFixed(0)})`,
  )
}
client.disconnect()
await redis.stop()
