/**
 * The coherence harness (parent side): forks worker processes (worker.js, over the built package),
 * runs their randomized workload while killing and freezing real servers, then checks what every
 * layer of every process holds against the database. See docs/coherence.md.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import type { Store } from '../../src/index.js'
import { RedisStore } from '../../src/stores/redis/index.js'
import { createTable, SqlStore } from '../../src/stores/sql/index.js'
import type { MemcachedServers, RedisServer, ServerProcess } from '../harness/servers.js'
import { CoherenceItem, childSeed, ITEM_COLUMNS, intact, itemOf, lookupsOf, rng } from './shared.js'

/** Random delays (max ms per call, uniform from 0) injected into each layer of every worker's chain. */
export interface LayerDelays {
  readonly memory: number
  readonly cache: number
  readonly db: number
}

/** What {@link runHarness} runs. */
export interface HarnessOptions {
  /** `true`: the protections as shipped (coherence, tombstones, RedisBus). `false`: `coherence: false`, `tombstoneLifetime: 0`, no bus. */
  readonly protections: boolean
  /** Seed of every random choice (workload, delays, faults); print it to reproduce a run. */
  readonly seed: number
  /** The shared cache layer. `'memcached'` uses `servers.memcached` (three nodes). */
  readonly cache: 'redis' | 'memcached'
  /** A private Redis (the RedisStore layer and/or the bus); faults kill and freeze it. */
  readonly redis: RedisServer
  /** Private memcached nodes (with `cache: 'memcached'`); faults kill and freeze one of them at a time. */
  readonly memcached?: MemcachedServers | undefined
  /** PostgreSQL (never faulted). */
  readonly postgresUrl: string
  /** OS processes. Default 3. */
  readonly processes?: number
  /** Concurrent actors per process. Default 20. */
  readonly actors?: number
  /** Operations per actor (over all epochs). Default 240. */
  readonly opsPerActor?: number
  /** Keys (objects); each owned by one actor of one process. Default 24. */
  readonly keys?: number
  /** Default `{ memory: 1, cache: 6, db: 20 }`. */
  readonly delays?: LayerDelays
  /** Inject server faults during the run. Default true. */
  readonly faults?: boolean
  /**
   * Objects each process's memory layer holds (`max`): fewer than `keys`, so LRU evictions make
   * owners miss their own keys too. Default 16.
   */
  readonly memoryMax?: number
  /** Chain `leases`. Default true. */
  readonly leases?: boolean
  /**
   * Cache copies expire (`lifetime`, seconds) and are kept `grace` seconds longer for the chain's
   * `serveStale`, so reads refill expired copies (`refillMany`) while other processes write. Default: none.
   */
  readonly expiry?: { readonly lifetime: number; readonly grace: number } | undefined
  /**
   * Epochs: each runs `opsPerActor / epochs` operations per actor under faults, then a final round
   * (every process reads every key; every key is written once more while a server is down or frozen —
   * a SIGKILL in one epoch, a SIGSTOP in another; every process reads every key again), then checks (a)
   * after `settleMs` of quiet. Default 3.
   */
  readonly epochs?: number
  /** Ms to wait after the writers finished and the faults healed, before checking. Default 2500. */
  readonly settleMs?: number
  /** Progress lines. Default: none. */
  readonly log?: (line: string) => void
}

/** Violations by kind. */
export interface Violations {
  /** (a) After quiescence a cache layer (some process's memory, or the shared layer) answers a lookup with something other than the database's object. */
  staleCache: number
  /** (b) A read of an owned key that began after a write resolved (same process) returned an older state. */
  readAfterWrite: number
  /** (c) A chain call rejected (the database was up throughout). */
  errors: number
  /** (c) The database does not hold a key's last acknowledged state. */
  lostWrite: number
  /** A read returned an object no write produced, or one that does not answer the lookup it was read by. */
  corrupt: number
  /** A read returned a version that was never written as a put. */
  phantom: number
}

/** Not a documented guarantee (docs/coherence.md), reported for information: cross-process staleness. */
export interface StaleReads {
  /** Reads of keys owned by another process. */
  checked: number
  /** Of those, reads that returned a state older than a write that had resolved {@link STALE_BOUND_MS} ms (plus the time faults overlapped) before the read began. */
  stale: number
  /** Up to a few examples. */
  samples: unknown[]
}

/** The staleness bound of {@link StaleReads}, in ms (bus heartbeat + breaker half-open + repairs, with room to spare). */
export const STALE_BOUND_MS = 3000

/** The outcome of one harness run. */
export interface HarnessResult {
  readonly options: { protections: boolean; seed: number; cache: string; processes: number; actors: number; keys: number }
  /** Chain calls made (gets, batchGets, puts, deletes, batch writes). */
  readonly operations: number
  /** Lookups read (a batchGet counts its length). */
  readonly lookups: number
  readonly writes: number
  readonly faults: Faults
  readonly violations: Violations
  /** Cross-process staleness (information, not asserted). */
  readonly staleReads: StaleReads
  /** Up to a few examples per kind. */
  readonly samples: Record<keyof Violations, unknown[]>
  /** Per layer, summed over processes: errors, skipped calls, backfills, pending repairs at the end. */
  readonly layerStats: { name: string; hits: number; errors: number; skipped: number; backfills: number; pendingRepairs: number }[]
  readonly elapsedMs: number
  /** One line: operations, actors, processes, faults injected, violations by kind. */
  readonly summary: string
}

/** Faults injected in a run. */
export interface Faults {
  kills: number
  freezes: number
  /** One line per fault. */
  log: string[]
  /** [start, healed] of each fault, in ms on the shared monotonic clock. */
  intervals: [number, number][]
}

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url))
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
/** ms on CLOCK_MONOTONIC, shared by every process of this machine (as in worker.js). */
const clockMs = (): number => Number(process.hrtime.bigint() / 1000n) / 1000
const MAX_SAMPLES = 8

interface WorkerReport {
  index: number
  counts: Record<string, number>
  violations: { readAfterWrite: number; corrupt: number; errors: number }
  samples: { readAfterWrite: unknown[]; corrupt: unknown[]; errors: unknown[] }
  finals: Record<string, { acked: number; ackedDeleted: boolean; started: number; states: number[]; resolvedMs: (number | null)[] }>
  seen: Record<string, number[]>
  remoteReads: [id: number, lookup: number, version: number, startMs: number][]
  stats: { name: string; hits: number; errors: number; skipped: number; backfills: number; pendingRepairs: number }[]
}

interface MemoryLayerDump {
  index: number
  coherent: boolean
  /** Per key: per lookup of lookupsOf(id), the version held, null for a miss, -1 for a corrupt copy. */
  entries: Record<string, (number | null)[]>
  stats: WorkerReport['stats']
}

/** A forked worker with a request/answer helper over IPC. */
class Worker {
  readonly child: ChildProcess
  readonly #waiters = new Map<string, { resolve: (m: Record<string, unknown>) => void; reject: (e: Error) => void }>()
  #exited = false

  constructor(readonly index: number) {
    this.child = fork(WORKER, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env } })
    this.child.on('message', (msg: Record<string, unknown>) => {
      const type = msg.type as string
      if (type === 'failed') {
        for (const w of this.#waiters.values()) w.reject(new Error(`coherence worker ${index} failed: ${msg.error as string}`))
        this.#waiters.clear()
        return
      }
      const waiter = this.#waiters.get(type)
      this.#waiters.delete(type)
      waiter?.resolve(msg)
    })
    this.child.on('exit', (code, signal) => {
      this.#exited = true
      for (const w of this.#waiters.values()) w.reject(new Error(`coherence worker ${index} exited (${code ?? signal})`))
      this.#waiters.clear()
    })
  }

  /** Sends `msg` and resolves with the next message of type `answer`. */
  ask(msg: Record<string, unknown>, answer: string, timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(answer)
        reject(new Error(`coherence worker ${this.index}: no ${answer} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#waiters.set(answer, {
        resolve: (m) => {
          clearTimeout(timer)
          resolve(m)
        },
        reject: (e) => {
          clearTimeout(timer)
          reject(e)
        },
      })
      this.child.send(msg)
    })
  }

  /** Asks the worker to close its stores and exit; SIGKILLs it (by PID) after 5 s. */
  async exit(): Promise<void> {
    if (this.#exited) return
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    try {
      this.child.send({ type: 'exit' })
    } catch {}
    const timer = setTimeout(() => {
      if (!this.#exited && this.child.pid !== undefined) process.kill(this.child.pid, 'SIGKILL')
    }, 5000)
    await gone
    clearTimeout(timer)
  }
}

/** A random 32-bit seed, or `COHERENCE_SEED` from the environment (decimal or 0x hex) to reproduce a run. */
export function harnessSeed(): number {
  const raw = process.env.COHERENCE_SEED?.trim()
  if (raw !== undefined && raw !== '') {
    const n = Number(raw)
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`COHERENCE_SEED must be a 32-bit unsigned integer, got ${raw}`)
    return n
  }
  return randomBytes(4).readUInt32LE(0)
}

/** A fault target: a server process and what to call it. */
interface Target {
  readonly label: string
  readonly server: ServerProcess
}

/**
 * Kills `target` (SIGKILL, restart on the same port after a short outage) or freezes it (SIGSTOP …
 * SIGCONT); healed on return. `during(ms)` runs while the server is down or frozen (`ms`: for how long).
 */
async function fault(
  target: Target,
  kill: boolean,
  random: () => number,
  out: Faults,
  log: (line: string) => void,
  during: (ms: number) => Promise<unknown> = async () => {},
): Promise<void> {
  const t = performance.now()
  const from = clockMs()
  let work: Promise<unknown>
  if (kill) {
    const downMs = Math.round(50 + random() * 450)
    target.server.kill('SIGKILL')
    out.kills++
    work = during(downMs)
    await sleep(downMs)
    await target.server.restart()
    out.log.push(`SIGKILL ${target.label}, restarted after ${Math.round(performance.now() - t)} ms`)
  } else {
    const frozenMs = Math.round(150 + random() * 1850)
    target.server.kill('SIGSTOP')
    out.freezes++
    work = during(frozenMs)
    await sleep(frozenMs)
    target.server.kill('SIGCONT')
    out.log.push(`SIGSTOP ${target.label} for ${frozenMs} ms`)
  }
  out.intervals.push([from, clockMs()])
  log(`  fault: ${out.log.at(-1)}`)
  await work
}

/**
 * Kills and freezes the targets in a seeded order until `done()`: the first two faults are one of
 * each. Every fault is healed before it returns.
 */
async function injectFaults(
  targets: readonly Target[],
  random: () => number,
  done: () => boolean,
  out: Faults,
  log: (line: string) => void,
): Promise<void> {
  const between = async (min: number, spread: number): Promise<void> => {
    const until = performance.now() + min + random() * spread
    while (!done() && performance.now() < until) await sleep(20)
  }
  await between(400, 400)
  const firstKill = random() < 0.5
  for (let n = 0; !done(); n++) {
    const target = targets[Math.floor(random() * targets.length)] as Target
    await fault(target, n === 0 ? firstKill : n === 1 ? !firstKill : random() < 0.5, random, out, log)
    await between(600, 1400)
  }
}

/** ms of [from, to] that faults (plus 1 s of recovery each) overlapped. */
function faultOverlap(intervals: readonly [number, number][], from: number, to: number): number {
  let ms = 0
  for (const [a, b] of intervals) ms += Math.max(0, Math.min(to, b + 1000) - Math.max(from, a))
  return ms
}

/**
 * Runs the harness once: creates a fresh table (version 1 of every key), forks the workers, runs the
 * workload while injecting faults, heals them, waits `settleMs`, then checks (a) every process's memory
 * layer and the shared layer against the database, (b)/(c) what the workers recorded, and that every
 * acknowledged write is in the database.
 */
export async function runHarness(options: HarnessOptions): Promise<HarnessResult> {
  const processes = options.processes ?? 3
  const actors = options.actors ?? 20
  const opsPerActor = options.opsPerActor ?? 240
  const keys = options.keys ?? 24
  const delays = options.delays ?? { memory: 1, cache: 6, db: 20 }
  const log = options.log ?? (() => {})
  const epochs = options.epochs ?? 3
  const settleMs = options.settleMs ?? 2500
  const { seed, protections, cache } = options
  const tag = `${protections ? 'on' : 'off'}_${seed.toString(16)}_${randomBytes(3).toString('hex')}`
  const table = `coherence_${tag}`
  const prefix = `coh-${tag}`
  const started = performance.now()

  const db = new SqlStore({ url: options.postgresUrl }, { tables: { CoherenceItem: table }, maxConnections: 2 })
  let closeShared = async (): Promise<void> => {}
  const workers: Worker[] = []
  try {
    await createTable(db, CoherenceItem, { columns: ITEM_COLUMNS, table })
    await db.batchPut(Array.from({ length: keys }, (_, i) => itemOf(i + 1, 1, i % processes)))

    for (let index = 0; index < processes; index++) workers.push(new Worker(index))
    const config = (index: number) => ({
      index,
      processes,
      seed,
      protections,
      leases: options.leases ?? true,
      expiry: options.expiry,
      cache,
      redisUrl: options.redis.url,
      memcachedServers: options.memcached?.servers ?? [],
      pgUrl: options.postgresUrl,
      table,
      prefix,
      channel: `coherence:${tag}`,
      keys,
      actors,
      opsPerActor,
      delays,
      chainTimeout: 150,
      recordRemoteReads: true,
      memoryMax: options.memoryMax ?? 16,
      thinkMs: 12,
      mix: { pWrite: 0.2, pOwnRead: 0.25, pRead: 0.4 },
    })
    await Promise.all(workers.map((w) => w.ask({ type: 'init', config: config(w.index) }, 'ready', 60_000)))
    log(
      `coherence harness: protections ${protections ? 'on' : 'off'}, seed ${seed}, ${processes} processes × ${actors} actors × ${opsPerActor} ops, ${keys} keys, ${cache}`,
    )

    const faults: Faults = { kills: 0, freezes: 0, log: [], intervals: [] }
    const targets: Target[] =
      cache === 'memcached'
        ? [
            ...(options.memcached?.nodes ?? []).map((server, i) => ({ label: `memcached-${i}`, server })),
            { label: 'redis (bus)', server: options.redis },
          ]
        : [{ label: 'redis (cache + bus)', server: options.redis }]
    const faultRandom = rng(childSeed(seed, 7))
    // the final rounds' faults: a kill and a freeze, then seeded
    const finalKills = Array.from({ length: epochs }, (_, e) => (e < 2 ? e === 0 : faultRandom() < 0.5))
    if (faultRandom() < 0.5) finalKills.reverse()
    const shared: Store =
      cache === 'memcached'
        ? new (await import('../../src/stores/memcache/index.js')).MemcacheStore({
            servers: options.memcached?.servers ?? [],
            prefix,
            onError: () => {},
          })
        : new RedisStore({ url: options.redis.url, prefix })
    closeShared = () => shared.close()
    const ids = Array.from({ length: keys }, (_, i) => i + 1)
    const violations: Violations = { staleCache: 0, readAfterWrite: 0, errors: 0, lostWrite: 0, corrupt: 0, phantom: 0 }
    const samples: HarnessResult['samples'] = { staleCache: [], readAfterWrite: [], errors: [], lostWrite: [], corrupt: [], phantom: [] }
    const add = (kind: keyof Violations, n: number, examples: readonly unknown[]): void => {
      violations[kind] += n
      for (const e of examples) if (samples[kind].length < MAX_SAMPLES) samples[kind].push(e)
    }
    let memories: MemoryLayerDump[] = []
    let truth: (CoherenceItem | undefined)[] = []

    for (let epoch = 0; epoch < epochs; epoch++) {
      let finished = 0
      const runs = workers.map((w) =>
        w.ask({ type: 'go', ops: Math.ceil(opsPerActor / epochs) }, 'done', 600_000).finally(() => {
          finished++
        }),
      )
      const faulting =
        options.faults === false ? Promise.resolve() : injectFaults(targets, faultRandom, () => finished === workers.length, faults, log)
      try {
        await Promise.all(runs)
      } finally {
        await faulting
      }
      log(`  epoch ${epoch + 1}/${epochs}: workload done at ${Math.round(performance.now() - started)} ms; final round`)
      // Final round: once healed, every process reads everything (all layers hold copies), then every key
      // is written once more while a server is down or frozen, then every process reads the others' keys.
      const all = (type: string, answer: string, extra: Record<string, unknown> = {}) =>
        Promise.all(workers.map((w) => w.ask({ type, ...extra }, answer, 120_000)))
      await sleep(1500) // the breakers close and the buses reconnect after the last fault of the workload
      await all('readAll', 'readAllDone')
      const writes = (spreadMs: number) => all('finalWrites', 'finalWritesDone', { spreadMs, epoch })
      if (options.faults === false) await writes(300)
      else {
        const target = targets[Math.floor(faultRandom() * targets.length)] as Target
        await fault(target, finalKills[epoch] as boolean, faultRandom, faults, log, (ms) => writes(Math.max(20, ms - 20)))
      }
      // other processes' keys only: an owner's own reads would replay its pending repairs at once, and
      // what must hold is that a layer is right even when the process that wrote it goes quiet
      await all('readAll', 'readAllDone', { foreignOnly: true })
      await sleep(settleMs)

      // (a) every cache layer of every process against the database, with the writers done and the faults healed
      memories = (await Promise.all(workers.map((w) => w.ask({ type: 'inspect' }, 'inspected', 60_000)))).map(
        (m) => m.memoryLayer as MemoryLayerDump,
      )
      truth = await db.batchGet(
        CoherenceItem,
        ids.map((id) => ({ id })),
      )
      const expected = (id: number, lookup: Record<string, unknown>): number | null => {
        const row = truth[id - 1]
        return row !== undefined && intact(row, lookup) ? row.version : null
      }
      const before = violations.staleCache
      const checkLayer = (layer: string, id: number, held: readonly (number | null)[]): void => {
        lookupsOf(id).forEach((lookup, i) => {
          const got = held[i] ?? null
          if (got === null) return
          const want = expected(id, lookup)
          if (got === -1)
            add('corrupt', 1, [{ epoch, layer, lookup, got: 'an object that does not answer the lookup or was never written' }])
          else if (got !== want) add('staleCache', 1, [{ epoch, layer, lookup, cached: got, database: truth[id - 1]?.version ?? 'absent' }])
        })
      }
      for (const m of memories) {
        if (protections && !m.coherent) throw new Error(`coherence worker ${m.index}: its memory layer's bus never came back up`)
        for (const id of ids) checkLayer(`memory of process ${m.index}`, id, m.entries[id] ?? [])
      }
      for (const id of ids) {
        const lookups = lookupsOf(id)
        const found = await shared.batchGet(CoherenceItem, lookups)
        checkLayer(
          `shared ${cache}`,
          id,
          found.map((obj, i) => (obj === undefined ? null : intact(obj, lookups[i] as Record<string, unknown>) ? obj.version : -1)),
        )
      }
      const pending = memories.reduce((n, m) => n + m.stats.reduce((k, l) => k + l.pendingRepairs, 0), 0)
      log(
        `  epoch ${epoch + 1}/${epochs}: checked after ${settleMs} ms of quiet: stale cache entries ${violations.staleCache - before}, repairs pending ${pending}`,
      )
    }

    // (b), (c) and integrity, as the workers recorded them
    const reports = (await Promise.all(workers.map((w) => w.ask({ type: 'report' }, 'report', 60_000)))).map(
      (m) => m.report as WorkerReport,
    )
    for (const r of reports) {
      add('readAfterWrite', r.violations.readAfterWrite, r.samples.readAfterWrite)
      add('errors', r.violations.errors, r.samples.errors)
      add('corrupt', r.violations.corrupt, r.samples.corrupt)
    }
    // (c) no acknowledged write lost; every version read was written as a put
    const finals = new Map<number, WorkerReport['finals'][string]>()
    for (const r of reports) for (const [id, f] of Object.entries(r.finals)) finals.set(Number(id), f)
    for (const id of ids) {
      const f = finals.get(id)
      if (f === undefined) throw new Error(`coherence harness: no owner reported key ${id}`)
      const row = truth[id - 1]
      let ok = false
      for (let v = f.acked; v <= f.started; v++) {
        const put = f.states[v] === 1
        if (row === undefined ? !put : put && row.version === v) ok = true
      }
      if (!ok)
        add('lostWrite', 1, [
          { id, database: row?.version ?? 'absent', lastAcked: f.acked, deleted: f.ackedDeleted, lastStarted: f.started },
        ])
    }
    for (const r of reports) {
      for (const [id, versions] of Object.entries(r.seen)) {
        const f = finals.get(Number(id))
        for (const v of versions) {
          if (f === undefined || v > f.started || f.states[v] !== 1) add('phantom', 1, [{ process: r.index, id: Number(id), version: v }])
        }
      }
    }

    // cross-process staleness (information)
    const staleReads: StaleReads = { checked: 0, stale: 0, samples: [] }
    for (const r of reports) {
      for (const [id, li, got, t] of r.remoteReads) {
        const f = finals.get(id)
        const lookup = lookupsOf(id)[li] as Record<string, unknown>
        if (f === undefined) continue
        staleReads.checked++
        let from = 0
        for (let v = f.started; v >= 1; v--) {
          const resolved = f.resolvedMs[v]
          if (resolved !== null && resolved !== undefined && resolved + STALE_BOUND_MS + faultOverlap(faults.intervals, resolved, t) < t) {
            from = v
            break
          }
        }
        let ok = from === 0
        for (let v = from; v <= f.started && !ok; v++) {
          const answers = f.states[v] === 1 && intact(itemOf(id, v, 0), lookup)
          ok = answers ? got === v : got === -1
        }
        if (!ok) {
          staleReads.stale++
          if (staleReads.samples.length < MAX_SAMPLES) {
            const resolved = f.resolvedMs[from] as number
            staleReads.samples.push({
              process: r.index,
              lookup,
              got: got === -1 ? null : got,
              newerResolvedMsBefore: Math.round(t - resolved),
              newer: from,
            })
          }
        }
      }
    }

    const counts = (name: string): number => reports.reduce((sum, r) => sum + (r.counts[name] ?? 0), 0)
    const layerStats = (memories[0]?.stats ?? []).map((s, i) => {
      const sum = (field: 'hits' | 'errors' | 'skipped' | 'backfills' | 'pendingRepairs'): number =>
        memories.reduce((acc, m) => acc + (m.stats[i]?.[field] ?? 0), 0)
      return {
        name: s.name,
        hits: sum('hits'),
        errors: sum('errors'),
        skipped: sum('skipped'),
        backfills: sum('backfills'),
        pendingRepairs: sum('pendingRepairs'),
      }
    })
    const operations = counts('ops')
    const elapsedMs = performance.now() - started
    const total = Object.values(violations).reduce((a, b) => a + b, 0)
    const summary =
      `coherence harness [protections ${protections ? 'ON' : 'OFF'}, ${cache}]: seed=${seed} ` +
      `operations=${operations} (lookups=${counts('lookups')}, writes=${counts('put') + counts('delete') + counts('batchPut') + counts('batchDelete')}) ` +
      `actors=${actors * processes} processes=${processes} ` +
      `faults=${faults.kills + faults.freezes} (SIGKILL+restart=${faults.kills}, SIGSTOP/SIGCONT=${faults.freezes}) ` +
      `violations=${total} (${Object.entries(violations)
        .map(([k, n]) => `${k}=${n}`)
        .join(' ')}) ` +
      `time=${(elapsedMs / 1000).toFixed(1)}s; cross-process reads older than a write resolved ${STALE_BOUND_MS / 1000}+ s earlier (information): ${staleReads.stale} of ${staleReads.checked}`
    return {
      options: { protections, seed, cache, processes, actors: actors * processes, keys },
      operations,
      lookups: counts('lookups'),
      writes: counts('put') + counts('delete') + counts('batchPut') + counts('batchDelete'),
      faults,
      violations,
      staleReads,
      samples,
      layerStats,
      elapsedMs,
      summary,
    }
  } finally {
    await Promise.allSettled(workers.map((w) => w.exit()))
    await closeShared().catch(() => {})
    try {
      const k = await db.kysely()
      await k.schema.dropTable(table).ifExists().execute()
    } catch {}
    await db.close().catch(() => {})
  }
}
