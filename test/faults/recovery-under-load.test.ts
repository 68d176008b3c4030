import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ChainedStore, ProcessMemoryStore, type Store } from '../../src/index.js'
import { RedisBus } from '../../src/invalidation/index.js'
import { RedisStore } from '../../src/stores/redis/index.js'
import { type RedisServer, selectedStores, startRedis } from '../harness/servers.js'
import { Account, accountsDatabase, type CountingSql, sleep } from './phase-workload.js'

/**
 * A server that restarts under load comes back: 20 operations in flight over 20,000 keys (60% get,
 * 25% put, 15% delete), the server killed for a few seconds, then restarted. Once it is back the
 * layer serves again within 5 s, its repair backlog drains to 0 and stays bounded, and throughput
 * returns. Every value read is checked (each of the 20 workers is the only writer of its keys).
 */

const KEYS = 20_000
const WORKERS = 20
const stores = selectedStores()

interface Window {
  readonly at: number
  readonly ops: number
  readonly layerHits: number
  /** Copies that landed in the layer (backfills): it is written and read again. */
  readonly layerBackfills: number
  /** Calls to the layer that failed or were skipped. */
  readonly layerFailures: number
  readonly dbLookups: number
  readonly pending: number
}

class Load {
  readonly expected = new Map<number, number | undefined>()
  ops = 0
  errors = 0
  readonly wrong: string[] = []
  #running = true
  #done: Promise<void> | undefined

  constructor(
    readonly chain: Store,
    readonly db: CountingSql,
  ) {}

  async seed(): Promise<void> {
    for (let i = 0; i < KEYS; i += 1000) {
      const batch = Array.from({ length: 1000 }, (_, k) => new Account(i + k, `a${i + k}@x.test`, 1))
      await this.chain.batchPut(batch)
      for (const a of batch) this.expected.set(a.id, 1)
    }
  }

  start(): void {
    this.#done = Promise.all(Array.from({ length: WORKERS }, (_, w) => this.#worker(w))).then(() => {})
  }

  async stop(): Promise<void> {
    this.#running = false
    await this.#done
  }

  async #worker(w: number): Promise<void> {
    let seed = w + 1
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed / 2147483648
    }
    while (this.#running) {
      const id = w + WORKERS * Math.floor(random() * (KEYS / WORKERS))
      const dice = random()
      const have = this.expected.get(id)
      try {
        if (dice < 0.6) {
          const got = await this.chain.get(Account, { id })
          if (got?.version !== have) this.wrong.push(`account ${id}: read v${got?.version}, the database holds v${have}`)
        } else if (dice < 0.85) {
          const version = (have ?? 0) + 1
          await this.chain.put(new Account(id, `a${id}@x.test`, version))
          this.expected.set(id, version)
        } else {
          await this.chain.delete(new Account(id, `a${id}@x.test`, have ?? 0))
          this.expected.set(id, undefined)
        }
      } catch {
        this.errors++
      }
      this.ops++
      // In-process layers and SQLite answer without I/O: yield, as a server's requests would, so
      // timers (and the other workers) get their turn.
      await new Promise((r) => setImmediate(r))
    }
  }
}

/** Samples every `ms`: operations done, hits of layer `layer`, database lookups, pending repairs. */
async function sample(load: Load, chain: ChainedStore, layer: number, ms: number, windows: Window[], until: () => boolean): Promise<void> {
  const read = () => {
    const s = chain.stats()[layer]
    return {
      ops: load.ops,
      hits: s?.hits ?? 0,
      backfills: s?.backfills ?? 0,
      failures: (s?.errors ?? 0) + (s?.skipped ?? 0),
      db: load.db.lookups,
    }
  }
  let last = read()
  const t0 = performance.now()
  while (!until()) {
    await sleep(ms)
    const stats = chain.stats()[layer]
    const now = read()
    windows.push({
      at: performance.now() - t0,
      ops: now.ops - last.ops,
      layerHits: now.hits - last.hits,
      layerBackfills: now.backfills - last.backfills,
      layerFailures: now.failures - last.failures,
      dbLookups: now.db - last.db,
      pending: stats?.pendingRepairs ?? 0,
    })
    last = now
  }
}

function summary(title: string, phases: [string, Window[]][], extra: string[]): void {
  const rows = phases.map(([name, ws]) => {
    const secs = ws.length * 0.25
    const ops = ws.reduce((n, w) => n + w.ops, 0)
    const hits = ws.reduce((n, w) => n + w.layerHits, 0)
    const db = ws.reduce((n, w) => n + w.dbLookups, 0)
    const pending = Math.max(0, ...ws.map((w) => w.pending))
    const backfills = ws.reduce((n, w) => n + w.layerBackfills, 0)
    const failures = ws.reduce((n, w) => n + w.layerFailures, 0)
    const gets = ops * 0.6
    return `| ${name} | ${(ops / secs).toFixed(0)} ops/s | ${hits} | ${backfills} | ${failures} | ${db} (${((db / Math.max(1, gets)) * 100).toFixed(0)}% of gets) | ${pending} |`
  })
  console.log(
    `\n${title}\n| phase | throughput | layer hits | layer backfills | layer failures/skips | database lookups | most pending repairs |\n|---|---|---|---|---|---|---|\n${rows.join('\n')}\n${extra.join('\n')}`,
  )
}

describe.runIf(stores.has('redis') && stores.has('sqlite'))('a restarted server under load (20 in flight, 20,000 keys)', () => {
  let server: RedisServer
  beforeAll(async () => {
    server = await startRedis()
  })
  afterAll(async () => {
    await server?.stop()
  })

  async function run(chain: ChainedStore, db: CountingSql, layer: number, title: string) {
    const load = new Load(chain, db)
    await load.seed()
    load.start()
    const windows: Window[] = []
    let phase = 'healthy'
    const byPhase = new Map<string, Window[]>()
    let stop = false
    const sampler = sample(load, chain, layer, 250, windows, () => stop)
    const mark = (name: string) => {
      byPhase.set(phase, windows.splice(0))
      phase = name
    }
    await sleep(2000)
    mark('down')
    server.kill('SIGKILL')
    await sleep(4000)
    await server.restart()
    mark('restarted')
    const restartedAt = performance.now()
    // serving again: a quarter second in which the layer answers (hits) or takes copies (backfills) without a failure
    let servingAfter = Number.POSITIVE_INFINITY
    let drainedAfter = Number.POSITIVE_INFINITY
    while (performance.now() - restartedAt < 8000) {
      await sleep(50)
      const last = windows[windows.length - 1]
      const serving = last !== undefined && last.layerHits + last.layerBackfills > 0 && last.layerFailures === 0
      if (serving && servingAfter === Number.POSITIVE_INFINITY) servingAfter = performance.now() - restartedAt
      if ((chain.stats()[layer]?.pendingRepairs ?? 0) === 0 && drainedAfter === Number.POSITIVE_INFINITY)
        drainedAfter = performance.now() - restartedAt
      if (servingAfter < Number.POSITIVE_INFINITY && drainedAfter < Number.POSITIVE_INFINITY && performance.now() - restartedAt > 5000)
        break
    }
    mark('recovered')
    await sleep(2000)
    mark('end')
    stop = true
    await sampler
    await load.stop()
    const phases: [string, Window[]][] = ['healthy', 'down', 'restarted', 'recovered'].map((n) => [n, byPhase.get(n) ?? []])
    const maxPending = Math.max(0, ...phases.flatMap(([, ws]) => ws.map((w) => w.pending)))
    summary(title, phases, [
      `layer serving again ${servingAfter.toFixed(0)} ms after the restart; repairs drained after ${drainedAfter.toFixed(0)} ms; ${load.ops} operations, ${load.errors} errors, ${load.wrong.length} wrong values`,
    ])
    return { load, phases, servingAfter, drainedAfter, maxPending }
  }

  it('[memory, Redis, SQLite]: Redis killed for 4 s then restarted empty — serving within 5 s, backlog drained, throughput back', async () => {
    const db = await accountsDatabase()
    const redis = new RedisStore({ url: server.url, prefix: `load${process.pid}`, timeout: 300 })
    const chain = new ChainedStore([new ProcessMemoryStore({ max: 5000 }), redis, db], { breaker: { failures: 1, halfOpenAfter: 500 } })
    const { load, phases, servingAfter, drainedAfter, maxPending } = await run(
      chain,
      db,
      1,
      '[memory (max 5,000), Redis, SQLite], Redis SIGKILLed for 4 s',
    )
    expect(load.errors).toBe(0)
    expect(load.wrong).toEqual([])
    expect(servingAfter).toBeLessThan(5000)
    expect(drainedAfter).toBeLessThan(5000)
    expect(maxPending).toBeLessThanOrEqual(100_000)
    const rate = (ws: Window[]) => ws.reduce((n, w) => n + w.ops, 0) / Math.max(1, ws.length)
    const [healthy, , , recovered] = phases.map(([, ws]) => rate(ws))
    expect(recovered).toBeGreaterThan((healthy as number) * 0.5)
    expect(chain.stats()[1]?.pendingRepairs).toBe(0)
    await chain.close()
  }, 90_000)

  it('[memory with a Redis bus, SQLite]: the bus killed for 4 s then back — the memory layer serves again within 5 s', async () => {
    const db = await accountsDatabase()
    const bus = new RedisBus({ url: server.url, timeout: 300, heartbeatInterval: 500, maxBackoff: 200 })
    // a second process's bus on the same channel, so that invalidations really travel
    const peer = new RedisBus({ url: server.url, timeout: 300, heartbeatInterval: 500, maxBackoff: 200 })
    const peerMemory = new ProcessMemoryStore({ bus: peer })
    const chain = new ChainedStore([new ProcessMemoryStore({ bus }), db])
    await sleep(300)
    const { load, phases, servingAfter, drainedAfter } = await run(
      chain,
      db,
      0,
      '[memory with a Redis bus, SQLite], Redis (the bus) SIGKILLed for 4 s',
    )
    expect(load.errors).toBe(0)
    expect(load.wrong).toEqual([])
    expect(servingAfter).toBeLessThan(5000)
    expect(drainedAfter).toBeLessThan(5000)
    const rate = (ws: Window[]) => ws.reduce((n, w) => n + w.ops, 0) / Math.max(1, ws.length)
    const [healthy, , , recovered] = phases.map(([, ws]) => rate(ws))
    expect(recovered).toBeGreaterThan((healthy as number) * 0.5)
    await chain.close()
    await peerMemory.close()
    await Promise.all([bus.close(), peer.close()])
  }, 90_000)
})
