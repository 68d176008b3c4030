/**
 * Figures for docs/coherence.md and the closing note, on real servers:
 * - database reads per hot-miss storm (1,000 concurrent gets of one uncached object) in 1 and in 4 OS
 *   processes, with and without `leases`;
 * - invalidation delay between processes over RedisBus (median / p99);
 * - what a frozen (SIGSTOP'd) Redis costs callers of a chain with `timeout: 100`.
 *
 * Run alone: `npm run build && STOCKPYLE_STORES=redis,postgres npx vitest run test/coherence/figures.test.ts`.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { ChainedStore, ProcessMemoryStore } from '../../src/index.js'
import { RedisStore } from '../../src/stores/redis/index.js'
import { createTable, SqlStore } from '../../src/stores/sql/index.js'
import { type RedisServer, selectedStores, startRedis } from '../harness/servers.js'
import { CoherenceItem, ITEM_COLUMNS, itemOf } from './shared.js'

const stores = selectedStores()
const WORKER = fileURLToPath(new URL('./figure-worker.js', import.meta.url))
const clockMs = (): number => Number(process.hrtime.bigint() / 1000n) / 1000
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** A forked figure-worker.js with request/answer over IPC. */
class FigureWorker {
  readonly child: ChildProcess
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  #next = 0

  constructor() {
    this.child = fork(WORKER, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.child.on('message', (msg: { id: number; result?: unknown; error?: string }) => {
      const waiter = this.#pending.get(msg.id)
      this.#pending.delete(msg.id)
      if (msg.error !== undefined) waiter?.reject(new Error(msg.error))
      else waiter?.resolve(msg.result)
    })
    this.child.on('exit', (code) => {
      for (const w of this.#pending.values()) w.reject(new Error(`figure worker exited (${code})`))
      this.#pending.clear()
    })
  }

  ask<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    return new Promise((resolve, reject) => {
      const id = ++this.#next
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.child.send({ ...args, id, op })
    })
  }

  async exit(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    const timer = setTimeout(() => {
      if (this.child.pid !== undefined && this.child.exitCode === null) process.kill(this.child.pid, 'SIGKILL')
    }, 5000)
    await this.ask('exit').catch(() => {})
    await gone
    clearTimeout(timer)
  }
}

/** Median, p99 and max of samples (ms), rounded to 0.01 ms. */
function stats(samples: readonly number[]): { n: number; median: number; p99: number; max: number } {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN
  const round = (ms: number): number => Math.round(ms * 100) / 100
  return { n: sorted.length, median: round(at(0.5)), p99: round(at(0.99)), max: round(sorted.at(-1) ?? Number.NaN) }
}

async function timed<T>(work: () => Promise<T>): Promise<number> {
  const t = performance.now()
  await work()
  return performance.now() - t
}

describe.runIf(stores.has('redis') && stores.has('postgres'))('coherence figures', () => {
  let redis: RedisServer
  let db: SqlStore
  const tag = randomBytes(3).toString('hex')
  const table = `coherence_figures_${tag}`

  beforeAll(async () => {
    redis = await startRedis()
    db = new SqlStore({ url: inject('postgresUrl') }, { tables: { CoherenceItem: table }, maxConnections: 2 })
    await createTable(db, CoherenceItem, { columns: ITEM_COLUMNS, table })
    await db.batchPut(Array.from({ length: 200 }, (_, i) => itemOf(i + 1, 1, 0)))
  })
  afterAll(async () => {
    try {
      await (await db.kysely()).schema.dropTable(table).ifExists().execute()
    } catch {}
    await db?.close()
    await redis?.stop()
  })

  it('hot-miss storm: database reads per 1,000 concurrent gets of one uncached object, in 1 and in 4 processes', async () => {
    const workers = Array.from({ length: 4 }, () => new FigureWorker())
    const lines: string[] = []
    const results: Record<string, number> = {}
    try {
      let id = 0
      for (const processes of [1, 4]) {
        for (const leases of [false, true]) {
          id++
          const startAtMs = clockMs() + 1500
          const answers = await Promise.all(
            workers.slice(0, processes).map((w) =>
              w.ask<{ dbReads: number; slowestMs: number }>('storm', {
                redisUrl: redis.url,
                pgUrl: inject('postgresUrl'),
                table,
                prefix: `storm-${tag}-${id}`,
                leases,
                gets: 1000 / processes,
                startAtMs,
                dbDelayMs: 20,
                objectId: id,
              }),
            ),
          )
          const reads = answers.reduce((n, a) => n + a.dbReads, 0)
          const slowest = Math.max(...answers.map((a) => a.slowestMs))
          results[`${processes}/${leases}`] = reads
          lines.push(
            `${processes} process${processes > 1 ? 'es' : ''} × ${1000 / processes} gets, leases ${leases ? 'on ' : 'off'}: ${reads} database read${reads === 1 ? '' : 's'} (slowest get ${slowest.toFixed(1)} ms)`,
          )
        }
      }
    } finally {
      await Promise.all(workers.map((w) => w.exit()))
    }
    console.log(`coherence figures — hot-miss storm (database read held 20 ms):\n  ${lines.join('\n  ')}`)
    expect(results['1/false']).toBe(1)
    expect(results['1/true']).toBe(1)
    expect(results['4/false']).toBeLessThanOrEqual(4)
    // 1 in a quiet run; a process that found the lease released reads the cache once more before the
    // database (see docs/coherence.md, known limits), and 2 leaves room for a lease lost under load
    expect(results['4/true']).toBeLessThanOrEqual(2)
  }, 60_000)

  it('invalidation delay between processes over RedisBus: publish in one process → eviction in another', async () => {
    const [a, b] = [new FigureWorker(), new FigureWorker()]
    const channel = `coherence-figures:${tag}`
    try {
      await Promise.all([a.ask('bus', { redisUrl: redis.url, channel }), b.ask('bus', { redisUrl: redis.url, channel })])
      const keys = Array.from({ length: 500 }, (_, i) => `CoherenceItem|id=n${i}`)
      for (const key of keys) {
        await a.ask('publish', { keys: [key] })
      }
      let received: Record<string, number> = {}
      for (let i = 0; i < 100 && Object.keys(received).length < keys.length; i++) {
        received = await b.ask<Record<string, number>>('received')
        if (Object.keys(received).length < keys.length) await sleep(20)
      }
      const sent = await a.ask<Record<string, number>>('sent')
      const delays = keys.map((k) => (received[k] ?? Number.NaN) - (sent[k] ?? Number.NaN))
      const s = stats(delays.filter((d) => Number.isFinite(d)))
      console.log(
        `coherence figures — invalidation delay, RedisBus, process A publish → process B eviction: median ${s.median} ms, p99 ${s.p99} ms, max ${s.max} ms (${s.n} of ${keys.length} delivered)`,
      )
      expect(s.n).toBe(keys.length)
    } finally {
      await Promise.all([a.exit(), b.exit()])
    }
  }, 60_000)

  it('timeout cost of a frozen Redis (SIGSTOP) under a chain with timeout: 100', async () => {
    const prefix = `frozen-${tag}`
    const sql = new SqlStore({ url: inject('postgresUrl') }, { tables: { CoherenceItem: table }, maxConnections: 2 })
    const make = (breaker: boolean): ChainedStore =>
      new ChainedStore([new ProcessMemoryStore(), new RedisStore({ url: redis.url, prefix }), sql], {
        timeout: 100,
        ...(breaker ? {} : { breaker: false }),
      })
    const chain = make(true)
    const noBreaker = make(false)
    const lines: string[] = []
    try {
      // connected and warm
      expect((await chain.get(CoherenceItem, { id: 1 }))?.id).toBe(1)
      expect((await noBreaker.get(CoherenceItem, { id: 2 }))?.id).toBe(2)
      const healthy = await timed(() => chain.get(CoherenceItem, { id: 3 }))
      redis.kill('SIGSTOP')
      const frozenAt = performance.now()
      const first = await timed(() => chain.get(CoherenceItem, { id: 10 }))
      const later: number[] = []
      for (let id = 11; id < 61; id++) later.push(await timed(() => chain.get(CoherenceItem, { id })))
      const put = await timed(() => chain.put(itemOf(61, 2, 0)))
      await sleep(Math.max(0, frozenAt + 1100 - performance.now()))
      const probe = await timed(() => chain.get(CoherenceItem, { id: 62 }))
      const afterProbe = await timed(() => chain.get(CoherenceItem, { id: 63 }))
      const unguarded: number[] = []
      for (let id = 100; id < 110; id++) unguarded.push(await timed(() => noBreaker.get(CoherenceItem, { id })))
      redis.kill('SIGCONT')
      const l = stats(later)
      const u = stats(unguarded)
      lines.push(
        `healthy get (miss → Redis → database): ${healthy.toFixed(1)} ms`,
        `first get after SIGSTOP: ${first.toFixed(1)} ms (the 100 ms timeout once, then the database)`,
        `next 50 gets while frozen (circuit open, Redis skipped): median ${l.median} ms, p99 ${l.p99} ms, max ${l.max} ms`,
        `a put while frozen: ${put.toFixed(1)} ms`,
        `first get after halfOpenAfter (1 s): ${probe.toFixed(1)} ms (one probe pays the timeout again), the next: ${afterProbe.toFixed(1)} ms`,
        `the same chain with breaker: false: median ${u.median} ms per get (every get pays the timeout twice: the read, then the backfill)`,
      )
      console.log(`coherence figures — frozen Redis, chain timeout 100 ms:\n  ${lines.join('\n  ')}`)
      expect(first).toBeGreaterThanOrEqual(95)
      expect(first).toBeLessThan(1000)
      expect(l.median).toBeLessThan(50)
    } finally {
      redis.kill('SIGCONT')
      await chain.close()
      await noBreaker.close()
    }
  }, 60_000)
})
