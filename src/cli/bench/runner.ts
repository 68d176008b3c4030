/**
 * The timing loop shared by `npm run bench` and `stockpyle bench`: no dependency, so the CLI runs
 * wherever stockpyle is installed. Cases of one group are measured **interleaved** (round 1 of every
 * case, then round 2, …) so that drift of the machine (turbo, other load, GC of the servers) hits
 * every contender alike, and the reported figure is the median of the rounds' ops/s.
 */

import { BenchOutputError } from './bench-output-error.js'
import { collectGarbage } from './collect-garbage.js'

/** Who a case measures. */
export type Role = 'floor' | 'stockpyle' | 'peer' | 'reference'

/** One contender of one scenario. */
export interface BenchCase {
  /** Row of the table, e.g. `'S2 redis'`. */
  readonly row: string
  /** Column: `'floor'`, `'stockpyle'`, or the peer's name. */
  readonly library: string
  readonly role: Role
  /** What exactly is timed, for the notes. */
  readonly label: string
  /** One operation; `i` counts calls of this case from 0 (warm-up included), for key pools. */
  readonly run: (i: number) => Promise<unknown>
  /** Untimed work before call `i` (clearing a memory layer); switches the case to per-call timing. */
  readonly prepare?: ((i: number) => Promise<void> | void) | undefined
  /** Most calls the case may make in all (its key pool). */
  readonly maxCalls?: number | undefined
  /** Runs once before the warm-up (untimed). */
  readonly setup?: (() => Promise<void>) | undefined
  /** Extra figures after the last round, given the number of calls made. */
  readonly after?: ((calls: number) => Promise<Record<string, number | string | boolean>>) | undefined
}

/** The measurement of one case. */
export interface CaseResult {
  readonly row: string
  readonly library: string
  readonly role: Role
  readonly label: string
  /** Median of the rounds, operations per second; `undefined` when the case failed. */
  readonly opsPerSec: number | undefined
  /** ops/s of each round. */
  readonly rounds: number[]
  /** Calls made, warm-up included. */
  readonly calls: number
  readonly extra: Record<string, number | string | boolean>
  readonly error?: string
}

/** How long to measure. */
export interface Timing {
  readonly rounds: number
  /** Target duration of one round of one case. */
  readonly roundMs: number
  /** Shortest warm-up of each case (it also calibrates the calls per round). */
  readonly warmupMs: number
  /** Calls the warm-up makes at least, unless `warmupMaxMs` runs out first; none when absent. */
  readonly warmupCalls?: number
  /** Longest warm-up when the calls are slow, ms (with `warmupCalls`); `warmupMs` when absent. */
  readonly warmupMaxMs?: number
}

const now = (): number => performance.now()

/**
 * With a `signal`, lets the event loop run once and then throws the signal's reason when it aborted;
 * without one, does nothing. Work on SQLite (better-sqlite3 is synchronous) and on the memory layer
 * resolves in microtasks only, so without this a run would never notice a SIGINT.
 */
export async function checkpoint(signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return
  await new Promise((resolve) => setImmediate(resolve))
  signal.throwIfAborted()
}

/**
 * Calls a contender's warm-up makes at least (within {@link WARMUP_MAX_MS}): a path of many small
 * functions (a chain's put) runs at two thirds of its speed for its first few thousand calls, until the
 * JIT has optimized it (bench/RESULTS.md, round 10).
 */
export const WARMUP_CALLS = 5000
/** Longest warm-up of a contender whose calls are slow, ms. */
export const WARMUP_MAX_MS = 3000

/** The median of `values` (which must not be empty). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

interface State {
  readonly c: BenchCase
  calls: number
  perRound: number
  rounds: number[]
  error: string | undefined
}

async function runCalls(state: State, count: number): Promise<number> {
  const { run, prepare } = state.c
  if (prepare === undefined) {
    const start = now()
    for (let k = 0; k < count; k++) await run(state.calls++)
    return now() - start
  }
  let spent = 0
  for (let k = 0; k < count; k++) {
    const i = state.calls++
    await prepare(i)
    const start = now()
    await run(i)
    spent += now() - start
  }
  return spent
}

async function warmUp(state: State, timing: Timing, rounds: number): Promise<void> {
  const cap = state.c.maxCalls
  const warmCap = cap === undefined ? Number.POSITIVE_INFINITY : Math.max(1, Math.floor(cap * 0.15))
  let spent = 0
  let calls = 0
  const started = now()
  const least = started + timing.warmupMs
  const most = started + Math.max(timing.warmupMs, timing.warmupMaxMs ?? 0)
  const wanted = timing.warmupCalls ?? 0
  while (calls < warmCap && (calls === 0 || now() < least || (calls < wanted && now() < most))) {
    const batch = Math.min(calls < 8 ? 1 : Math.max(1, calls), warmCap - calls)
    spent += await runCalls(state, batch)
    calls += batch
  }
  const perMs = calls / Math.max(spent, 0.001)
  let perRound = Math.max(1, Math.round(perMs * timing.roundMs))
  if (cap !== undefined) perRound = Math.max(1, Math.min(perRound, Math.floor((cap - state.calls) / rounds)))
  state.perRound = perRound
}

/**
 * Measures a group of cases, interleaved by round. A case that throws is reported with its error and
 * left out of the later rounds; the others go on. When `signal` aborts, the group stops before the
 * next warm-up or round and rejects with the signal's reason.
 */
export async function measureGroup(
  cases: readonly BenchCase[],
  timing: Timing,
  log: (line: string) => void = () => {},
  signal?: AbortSignal,
): Promise<CaseResult[]> {
  const states: State[] = cases.map((c) => ({ c, calls: 0, perRound: 1, rounds: [], error: undefined }))
  const fail = (s: State, err: unknown): void => {
    s.error = err instanceof Error ? `${err.name}: ${err.message}` : String(err)
    log(`    ${s.c.row} / ${s.c.library}: FAILED ${s.error}`)
  }
  for (const s of states) {
    await checkpoint(signal)
    try {
      await s.c.setup?.()
      await warmUp(s, timing, timing.rounds + 1) // + the settling round
    } catch (err) {
      fail(s, err)
    }
  }
  // What the warm-ups left (up to 3 s of each contender's garbage and copies) is collected now, not in
  // whichever contender's round the collector would next run.
  collectGarbage()
  // Right after the forced collection a contender runs slower for a while (the S2 chain and
  // RedisStore alone at half speed for ~2,000 gets; bench/RESULTS.md, round 21): one round of every
  // contender, not timed, before the rounds that count.
  for (const s of states) {
    await checkpoint(signal)
    if (s.error !== undefined) continue
    try {
      await runCalls(s, s.perRound)
    } catch (err) {
      fail(s, err)
    }
  }
  for (let r = 0; r < timing.rounds; r++) {
    for (const s of states) {
      await checkpoint(signal)
      if (s.error !== undefined) continue
      if (s.c.maxCalls !== undefined && s.calls + s.perRound > s.c.maxCalls) continue
      try {
        const ms = await runCalls(s, s.perRound)
        s.rounds.push((s.perRound * 1000) / Math.max(ms, 0.001))
      } catch (err) {
        fail(s, err)
      }
    }
  }
  const out: CaseResult[] = []
  for (const s of states) {
    let extra: Record<string, number | string | boolean> = {}
    if (s.error === undefined && s.c.after !== undefined) {
      try {
        extra = await s.c.after(s.calls)
      } catch (err) {
        fail(s, err)
      }
    }
    const opsPerSec = s.error === undefined && s.rounds.length > 0 ? median(s.rounds) : undefined
    out.push({
      row: s.c.row,
      library: s.c.library,
      role: s.c.role,
      label: s.c.label,
      opsPerSec,
      rounds: s.rounds.map((v) => Math.round(v * 100) / 100),
      calls: s.calls,
      extra,
      ...(s.error === undefined ? {} : { error: s.error }),
    })
    if (opsPerSec !== undefined) log(`    ${s.c.row} / ${s.c.library}: ${formatOps(opsPerSec)} ops/s`)
  }
  return out
}

/** A request to profile one case instead of measuring: see {@link profileCase}. */
export interface ProfileRequest {
  /** The case's row, e.g. `'S3 redis'`. */
  readonly row: string
  /** The case's library, e.g. `'stockpyle'` or `'floor'`. */
  readonly library: string
  /** Seconds of the profiled loop. */
  readonly seconds: number
  /** Where the `.cpuprofile` goes. */
  readonly file: string
  /** Sampling interval in µs (default 100). */
  readonly intervalUs?: number | undefined
}

/**
 * Runs the one case of `cases` that `request` names in a loop for `request.seconds` under the V8 CPU
 * profiler (node:inspector, started after the setup and warm-up, so only the case's own calls and
 * its untimed `prepare` are sampled) and writes the profile. Resolves with that case's result (ops/s
 * of the profiled loop, and ops per CPU-second of this process in `extra`), or `[]` when the group
 * has no such case. When `signal` aborts, the loop stops and the promise rejects with its reason; when
 * the profile cannot be written, it rejects with {@link BenchOutputError}.
 */
export async function profileCase(
  cases: readonly BenchCase[],
  request: ProfileRequest,
  log: (line: string) => void = () => {},
  signal?: AbortSignal,
): Promise<CaseResult[]> {
  const c = cases.find((k) => k.row === request.row && k.library === request.library)
  if (c === undefined) return []
  const { Session } = await import('node:inspector/promises')
  const { mkdirSync, writeFileSync } = await import('node:fs')
  const { dirname } = await import('node:path')
  const state: State = { c, calls: 0, perRound: 1, rounds: [], error: undefined }
  await c.setup?.()
  await warmUp(state, { rounds: 1, roundMs: 50, warmupMs: 300, warmupCalls: WARMUP_CALLS, warmupMaxMs: WARMUP_MAX_MS }, 1)
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: request.intervalUs ?? 100 })
  await session.post('Profiler.start')
  const deadline = now() + request.seconds * 1000
  const cpu = process.cpuUsage()
  let spent = 0
  let calls = 0
  while (now() < deadline && (c.maxCalls === undefined || state.calls + state.perRound <= c.maxCalls)) {
    try {
      await checkpoint(signal)
    } catch (err) {
      await session.post('Profiler.stop')
      session.disconnect()
      throw err
    }
    spent += await runCalls(state, state.perRound)
    calls += state.perRound
  }
  const used = process.cpuUsage(cpu)
  const { profile } = await session.post('Profiler.stop')
  session.disconnect()
  try {
    mkdirSync(dirname(request.file), { recursive: true })
    writeFileSync(request.file, JSON.stringify(profile))
  } catch (err) {
    throw new BenchOutputError(`cannot write the profile to ${request.file}: ${(err as Error).message}`)
  }
  const opsPerSec = (calls * 1000) / Math.max(spent, 0.001)
  const perCpuSecond = calls / Math.max((used.user + used.system) / 1e6, 1e-6)
  log(
    `    ${c.row} / ${c.library}: profiled ${calls} calls, ${formatOps(opsPerSec)} ops/s, ${formatOps(perCpuSecond)} per CPU-second -> ${request.file}`,
  )
  return [
    {
      row: c.row,
      library: c.library,
      role: c.role,
      label: c.label,
      opsPerSec,
      rounds: [],
      calls: state.calls,
      extra: { profiledCalls: calls, opsPerCpuSecond: Math.round(perCpuSecond), profile: request.file },
    },
  ]
}

/**
 * How many times faster `a` is than `b`: the median over rounds of `a`'s ops/s in a round divided by
 * `b`'s in the same round (paired, so load that changes between rounds cancels out); the ratio of the
 * medians when the rounds do not pair up. `undefined` when a figure is missing.
 */
export function pairedRatio(a: CaseResult | undefined, b: CaseResult | undefined): number | undefined {
  if (a?.opsPerSec === undefined || b?.opsPerSec === undefined || b.opsPerSec === 0) return undefined
  if (a.rounds.length === 0 || a.rounds.length !== b.rounds.length) return a.opsPerSec / b.opsPerSec
  return median(a.rounds.map((v, r) => v / (b.rounds[r] as number)))
}

/** `1234567` → `'1.23M'`, `12345` → `'12.3k'`, `12.3` → `'12.3'`. */
export function formatOps(ops: number): string {
  if (ops >= 1e6) return `${(ops / 1e6).toFixed(2)}M`
  if (ops >= 1e4) return `${(ops / 1e3).toFixed(1)}k`
  if (ops >= 1e3) return `${(ops / 1e3).toFixed(2)}k`
  if (ops >= 100) return ops.toFixed(0)
  return ops.toFixed(1)
}
