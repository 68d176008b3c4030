/**
 * The scenarios S1–S7, one file each. Each builds the cases of its rows — the raw floor doing the same
 * necessary work, the stockpyle chain, the layer alone as a reference, and each peer where one exists
 * — and measures them interleaved in one group, so that every ratio compares figures taken in the same
 * rounds of the same process. Shared by `npm run bench` and `npx stockpyle bench`.
 */
import { collectGarbage } from '../collect-garbage.js'
import type { BenchEnv, StoreName } from '../env.js'
import type { MemoryChild, MemoryReport, PeerLibrary } from '../peer.js'
import { type BenchCase, type CaseResult, checkpoint, measureGroup, type ProfileRequest, profileCase, type Timing } from '../runner.js'
import type { RowResult, ScenarioContext } from './common.js'
import { s1MemoryHit } from './s1-memory-hit.js'
import { s2Memcached, s2Redis } from './s2-remote-hit.js'
import { s3Memcached, s3Redis } from './s3-batch-get.js'
import { s4ReadThrough } from './s4-read-through.js'
import { s5WriteThrough } from './s5-write-through.js'
import { s6MissStorm } from './s6-miss-storm.js'
import { s7MemoryBound } from './s7-memory-bound.js'

export type { RowResult, TargetResult } from './common.js'

/**
 * The stores each scenario needs, one of them at least (what {@link runScenarios} checks before
 * running it): the CLI refuses a `--scenarios` entry the selected stores cannot run.
 */
export const SCENARIO_STORES: Readonly<Record<string, readonly StoreName[]>> = {
  S1: ['memory'],
  S2: ['redis', 'memcached'],
  S3: ['redis', 'memcached'],
  S4: ['sqlite', 'postgres'],
  S5: ['sqlite', 'postgres'],
  S6: ['sqlite', 'postgres'],
  S7: ['memory'],
}

/** Options of {@link runScenarios}. */
export interface ScenarioOptions {
  readonly timing: Timing
  /** Scenarios to run (`S1`…`S7`); default all. */
  readonly only?: ReadonlySet<string> | undefined
  readonly peers: readonly PeerLibrary[]
  /** Extra S7 subjects measured by scripts outside the CLI (the peers). */
  readonly memoryChildren?: readonly MemoryChild[] | undefined
  /** Objects inserted in S7; default 1,000,000. */
  readonly s7Count?: number | undefined
  /** The bound of S7, bytes; default 64 MiB. */
  readonly s7MaxSize?: number | undefined
  /**
   * Instead of measuring, profile the one case it names (CPU profile of its timed loop, written to a
   * file); every other case of the run is skipped.
   */
  readonly profile?: ProfileRequest | undefined
  readonly log: (line: string) => void
  /** Stops the run between steps and rounds (SIGINT); the S7 children are killed. */
  readonly signal?: AbortSignal | undefined
}

/** Runs the selected scenarios against `env`. */
export async function runScenarios(env: BenchEnv, options: ScenarioOptions): Promise<{ rows: RowResult[]; memory: MemoryReport[] }> {
  const rows: RowResult[] = []
  let memory: MemoryReport[] = []
  const wanted = (s: string): boolean => options.only === undefined || options.only.has(s)
  const { log, profile, signal } = options
  const measure = (cases: readonly BenchCase[]): Promise<CaseResult[]> =>
    profile === undefined ? measureGroup(cases, options.timing, log, signal) : profileCase(cases, profile, log, signal)
  const ctx: ScenarioContext = {
    timing: options.timing,
    measure,
    peers: env.redis === undefined || profile !== undefined ? [] : options.peers,
    memoryChildren: options.memoryChildren,
    s7Count: options.s7Count,
    s7MaxSize: options.s7MaxSize,
    log,
    signal,
  }
  const step = async (name: string, fn: () => Promise<RowResult[]>): Promise<void> => {
    await checkpoint(signal)
    log(name)
    collectGarbage()
    for (const row of await fn()) {
      rows.push(row)
      log(`  => ${row.row}: ${row.target.met === undefined ? 'n/a' : row.target.met ? 'MET' : 'NOT MET'} (${row.target.detail})`)
    }
  }
  const memoryOn = env.targets.stores.has('memory')
  if (wanted('S1') && memoryOn) await step('S1 memory-layer hit', () => s1MemoryHit(env, ctx))
  if (wanted('S2')) {
    if (env.redis !== undefined) await step('S2 remote hit, Redis', () => s2Redis(env, ctx))
    if (env.memcached !== undefined) await step('S2 remote hit, memcached', () => s2Memcached(env, ctx))
  }
  if (wanted('S3')) {
    if (env.redis !== undefined) await step('S3 batchGet of 100, Redis', () => s3Redis(env, ctx))
    if (env.memcached !== undefined) await step('S3 batchGet of 100, memcached pool', () => s3Memcached(env, ctx))
  }
  if (wanted('S4')) {
    for (const sqlEnv of [env.sqlite, env.postgres]) {
      if (sqlEnv !== undefined) await step(`S4 cold read-through of 1,000, ${sqlEnv.dialect}`, () => s4ReadThrough(env, sqlEnv, ctx))
    }
  }
  const db = env.postgres ?? env.sqlite
  if (wanted('S5') && db !== undefined)
    await step(`S5 put through [memory, ${env.redis === undefined ? '' : 'redis, '}${db.dialect}]`, () => s5WriteThrough(env, db, ctx))
  if (wanted('S6') && db !== undefined) await step(`S6 hot-miss storm, ${db.dialect}`, () => s6MissStorm(env, db, ctx))
  if (wanted('S7') && memoryOn && profile === undefined) {
    await checkpoint(signal)
    log('S7 memory bound (child processes with --expose-gc)')
    const result = await s7MemoryBound(ctx)
    memory = result.reports
    rows.push(result.row)
    log(`  => ${result.row.row}: ${result.row.target.met ? 'MET' : 'NOT MET'} (${result.row.target.detail})`)
  }
  return { rows, memory }
}
