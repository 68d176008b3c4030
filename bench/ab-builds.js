/**
 * Two builds of stockpyle compared on S2's read (a Redis hit and a memcached hit: the store alone, and
 * ChainedStore([ProcessMemoryStore (emptied each round), store])), each build in its own child process,
 * the builds alternating, against one Redis and one memcached started here (servers pinned to CPU 1,
 * children to CPU 0). Prints µs per get (wall / CPU of the child) per run and the medians. A build is a
 * `dist/` directory under this repository (so that its packages resolve), e.g. one built from an older
 * commit: `git worktree add --detach .tmp/base <rev> && (cd .tmp/base && ln -s ../../node_modules . && npx tsc -p tsconfig.build.json)`.
 *
 *   node bench/ab-builds.js <runs> <distA> <distB> [...]
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const pin = (pid, cpu) => {
  try {
    execFileSync('taskset', ['-apc', String(cpu), String(pid)], { stdio: 'ignore' })
  } catch {}
}
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1]

if (process.argv[2] === '--child') {
  const [dist, redisUrl, memcached] = process.argv.slice(3)
  pin(process.pid, 0)
  const { BenchUser, makeUser } = await import(`${dist}/cli/bench/fixtures.js`)
  const { ChainedStore, ProcessMemoryStore, registerModel } = await import(`${dist}/index.js`)
  const { RedisStore } = await import(`${dist}/stores/redis/index.js`)
  const { MemcacheStore } = await import(`${dist}/stores/memcache/index.js`)
  registerModel(BenchUser)
  const N = 2000
  const redis = new RedisStore({ url: redisUrl, prefix: 'ab' })
  const mc = new MemcacheStore({ servers: [memcached], prefix: 'ab' })
  for (const s of [redis, mc]) for (let i = 0; i < N; i += 500) await s.batchPut(Array.from({ length: 500 }, (_, k) => makeUser(i + k)))
  const m1 = new ProcessMemoryStore()
  const m2 = new ProcessMemoryStore()
  const c1 = new ChainedStore([m1, redis])
  const c2 = new ChainedStore([m2, mc])
  const cases = {
    redisAlone: (i) => redis.get(BenchUser, { id: i }),
    redisChain: (i) => c1.get(BenchUser, { id: i }),
    mcAlone: (i) => mc.get(BenchUser, { id: i }),
    mcChain: (i) => c2.get(BenchUser, { id: i }),
  }
  const res = {}
  for (let r = 0; r < 12; r++) {
    for (const [k, f] of Object.entries(cases)) {
      await m1.clear()
      await m2.clear()
      const c0 = process.cpuUsage()
      const t0 = performance.now()
      for (let i = 0; i < N; i++) if ((await f(i)) === undefined) throw new Error(`${k}: unexpected miss`)
      if (r < 2) continue
      const cpu = process.cpuUsage(c0)
      res[k] ??= { wall: [], cpu: [] }
      res[k].wall.push(((performance.now() - t0) / N) * 1000)
      res[k].cpu.push((cpu.user + cpu.system) / N)
    }
  }
  console.log(JSON.stringify(Object.fromEntries(Object.entries(res).map(([k, x]) => [k, [median(x.wall), median(x.cpu)]]))))
  await c1.close()
  await c2.close()
  process.exit(0)
}

const [runs = '4', ...dists] = process.argv.slice(2)
if (dists.length === 0) throw new Error('usage: node bench/ab-builds.js <runs> <distA> <distB> [...]')
const { loadHarness } = await import('./harness.js')
const harness = await loadHarness()
const redis = await harness.startRedis()
const mc = await harness.startMemcached(1)
for (const pid of [redis.pid, ...mc.nodes.map((n) => n.pid)]) pin(pid, 1)
const all = {}
try {
  for (let r = 0; r < Number(runs); r++) {
    for (const d of dists) {
      const dist = resolve(d)
      const out = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', dist, redis.url, mc.servers[0]], {
        encoding: 'utf8',
      })
      if (out.status !== 0) throw new Error(`${d}: ${out.stderr}`)
      const res = JSON.parse(out.stdout.trim().split('\n').pop())
      for (const [k, v] of Object.entries(res)) ((all[d] ??= {})[k] ??= []).push(v)
      console.log(
        d,
        Object.entries(res)
          .map(([k, [w, c]]) => `${k} ${w.toFixed(1)}/${c.toFixed(1)}`)
          .join('  '),
      )
    }
  }
  for (const d of dists) {
    const line = Object.entries(all[d]).map(
      ([k, xs]) => `${k} ${median(xs.map((x) => x[0])).toFixed(1)}/${median(xs.map((x) => x[1])).toFixed(1)}`,
    )
    console.log(`median (µs per get, wall/cpu) ${d}: ${line.join('  ')}`)
  }
} finally {
  await redis.stop()
  await mc.stop()
}
