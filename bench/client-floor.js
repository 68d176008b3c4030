/**
 * How fast can any Redis client do S2's floor (one GET of a msgpack value + decode, one at a time)?
 * S2's peer target asks stockpyle's chain for 1.3x the best peer, and the peers run at 0.8–0.9x of
 * ioredis' GET: that is 1.04–1.17x ioredis itself. This measures ioredis `getBuffer`, node-redis
 * (`@redis/client`, returning buffers) and a bare TCP socket writing RESP and reading the bulk reply by
 * hand (no client library at all: the least any client can do), interleaved in one process, client
 * pinned to CPU 0 and Redis to CPU 1 as `npm run bench` runs them. Prints µs per GET and the client's
 * CPU µs per GET, medians of the rounds after two warm-up rounds.
 *
 *   node bench/client-floor.js [rounds] [gets per round]     (defaults 10, 3000)
 */
import { createRequire } from 'node:module'
import net from 'node:net'
import { startPinnedRedis } from './harness.js'

const require = createRequire(import.meta.url)
const { Redis } = require('ioredis')
const { createClient, RESP_TYPES } = require('@redis/client')
const { pack, unpack } = require('msgpackr')

const [roundsArg = '10', getsArg = '3000'] = process.argv.slice(2)
const ROUNDS = Number(roundsArg)
const GETS = Number(getsArg)
const KEYS = 1000

const redis = await startPinnedRedis()
const { port } = new URL(redis.url)
const io = new Redis({ host: '127.0.0.1', port: Number(port) })
const nr = await createClient({ socket: { host: '127.0.0.1', port: Number(port) } })
  .withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer })
  .connect()
const value = pack({ id: 1, name: 'x'.repeat(40), tags: ['a', 'b'], score: 3.5, active: true, created: new Date(0) })
const pipeline = io.pipeline()
for (let k = 0; k < KEYS; k++) pipeline.set(`k${k}`, value)
await pipeline.exec()

// A bare socket: one request in flight, the reply parsed only as far as a bulk string needs.
const socket = net.connect(Number(port), '127.0.0.1')
socket.setNoDelay(true)
await new Promise((resolve) => socket.once('connect', resolve))
let waiting
let pending = Buffer.alloc(0)
socket.on('data', (chunk) => {
  pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
  const cr = pending.indexOf(13)
  if (cr < 0) return
  const length = Number(pending.toString('latin1', 1, cr))
  if (pending.length < cr + 2 + length + 2) return
  const body = pending.subarray(cr + 2, cr + 2 + length)
  pending = Buffer.alloc(0)
  const resolve = waiting
  waiting = undefined
  resolve(body)
})
const rawGet = (key) =>
  new Promise((resolve) => {
    waiting = resolve
    socket.write(`*2\r\n$3\r\nGET\r\n$${key.length}\r\n${key}\r\n`)
  })

const contenders = {
  'ioredis getBuffer': async (key) => unpack(await io.getBuffer(key)),
  'node-redis get': async (key) => unpack(await nr.get(key)),
  'bare socket': async (key) => unpack(await rawGet(key)),
}
const results = Object.fromEntries(Object.keys(contenders).map((name) => [name, []]))
for (let round = 0; round < ROUNDS + 2; round++) {
  for (const [name, get] of Object.entries(contenders)) {
    const cpu = process.cpuUsage()
    const start = performance.now()
    for (let i = 0; i < GETS; i++) await get(`k${i % KEYS}`)
    const wall = ((performance.now() - start) * 1000) / GETS
    const used = process.cpuUsage(cpu)
    if (round >= 2) results[name].push([wall, (used.user + used.system) / GETS])
  }
}
const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1]
const base = median(results['ioredis getBuffer'].map((r) => r[0]))
for (const [name, rows] of Object.entries(results)) {
  const wall = median(rows.map((r) => r[0]))
  const cpu = median(rows.map((r) => r[1]))
  console.log(
    `${name.padEnd(18)} ${wall.toFixed(1).padStart(6)} µs per GET  ${cpu.toFixed(1).padStart(5)} CPU µs  ${(base / wall).toFixed(2)}x ioredis`,
  )
}
io.disconnect()
await nr.quit()
socket.destroy()
await redis.stop()
