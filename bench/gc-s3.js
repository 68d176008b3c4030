/**
 * What S3's loop leaves to the garbage collector: a batchGet of 100 from Redis with an empty memory
 * tier (the memory layer cleared before each call, as in `npm run bench`), run BATCHES times, and for
 * each contender the young-generation GCs (scavenges) of the timed loop — how many, their total pause,
 * and the bytes each promoted to the old generation on average — with the time per batch. A chain
 * that promotes far more than `RedisStore` alone keeps objects alive past their use (see
 * bench/RESULTS.md, round 9). Each contender runs in its own child process under
 * `node --trace-gc-nvp`, its Redis started by the test harness; client pinned to CPU 0, server to CPU 1.
 *
 *   npm run build && node bench/gc-s3.js [contenders] [batches]
 *     contenders: alone (RedisStore.batchGet), hollow (ChainedStore over a first layer that holds
 *     nothing), chain (ChainedStore([ProcessMemoryStore, RedisStore])); default all three, 3000 batches
 *   DIST=/abs/path/to/other/dist node bench/gc-s3.js …   the same against another build (A/B)
 */
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { startPinnedRedis } from './harness.js'
import { hollowStoreClass } from './hollow-store.js'

const [list = 'alone,hollow,chain', batchesArg = '3000', child] = process.argv.slice(2)
const BATCHES = Number(batchesArg)

if (child === undefined) {
  for (const which of list.split(',')) {
    const run = spawnSync(process.execPath, ['--trace-gc-nvp', fileURLToPath(import.meta.url), which, String(BATCHES), 'child'], {
      encoding: 'utf8',
      maxBuffer: 1 << 28,
    })
    if (run.status !== 0) throw new Error(`${which}: exit ${run.status}\n${run.stderr}`)
    const lines = run.stdout.split('\n')
    const start = lines.indexOf('timed loop: start')
    const end = lines.indexOf('timed loop: end')
    let scavenges = 0
    let pause = 0
    let promoted = 0
    for (const line of lines.slice(start, end)) {
      if (!line.includes(' gc=s ')) continue
      scavenges++
      pause += Number(/ pause=([\d.]+)/.exec(line)?.[1] ?? 0)
      promoted += Number(/ promoted=(\d+)/.exec(line)?.[1] ?? 0)
    }
    const result = lines.find((l) => l.startsWith('result '))?.slice(7)
    console.log(
      `${which.padEnd(7)} ${result}  scavenges ${scavenges}, pause ${pause.toFixed(0)} ms, promoted ${(promoted / Math.max(1, scavenges) / 1024).toFixed(0)} KiB per scavenge`,
    )
  }
} else {
  const { openEnv } = await import((process.env.DIST ?? '../dist') + '/cli/bench/env.js')
  const { BenchUser, makeUser } = await import((process.env.DIST ?? '../dist') + '/cli/bench/fixtures.js')
  const { BaseStore, ChainedStore, ProcessMemoryStore, capabilities, registerModel } = await import(
    (process.env.DIST ?? '../dist') + '/index.js'
  )
  registerModel(BenchUser)
  const HollowStore = hollowStoreClass({ BaseStore, capabilities })
  const redis = await startPinnedRedis()
  const env = await openEnv({ stores: new Set(['memory', 'redis']), redisUrl: redis.url }, () => {})
  const store = env.redis.newStore()
  await store.batchPut(Array.from({ length: 1000 }, (_, k) => makeUser(k)))
  const memory = list === 'hollow' ? new HollowStore() : new ProcessMemoryStore()
  const chain = new ChainedStore([memory, store])
  const target = list === 'alone' ? store : chain
  const lookups = Array.from({ length: 10 }, (_, b) => Array.from({ length: 100 }, (_, x) => ({ id: b * 100 + x })))
  for (let i = 0; i < 300; i++) {
    await memory.clear()
    await target.batchGet(BenchUser, lookups[i % 10])
  }
  console.log('timed loop: start')
  let ms = 0
  for (let i = 0; i < BATCHES; i++) {
    await memory.clear()
    const t = performance.now()
    await target.batchGet(BenchUser, lookups[i % 10])
    ms += performance.now() - t
  }
  console.log('timed loop: end')
  console.log(`result ${((ms / BATCHES) * 1000).toFixed(0).padStart(5)} µs per batch`)
  await chain.close()
  await env.close()
  await redis.stop()
}
