/**
 * One benchmark run: open the connections, run the scenarios, describe the machine. Shared by the
 * `stockpyle bench` CLI (stockpyle and the raw floors) and `npm run bench` (which adds the peers).
 */
import { type BenchEnv, openEnv, type Targets } from './env.js'
import type { MemoryChild, PeerLibrary } from './peer.js'
import { type BenchResults, machineInfo } from './report.js'
import { type ProfileRequest, type Timing, WARMUP_CALLS, WARMUP_MAX_MS } from './runner.js'
import { runScenarios } from './scenarios/index.js'

export { BenchOutputError } from './bench-output-error.js'
export { BenchSetupError, STORE_NAMES, type StoreName } from './env.js'
export { failedCases } from './failed-cases.js'
export type { MemoryChild, MemoryReport, PeerCache, PeerLibrary } from './peer.js'
export { type BenchResults, toConsole, toMarkdown, toSvg, writeResults } from './report.js'
export { formatOps, type ProfileRequest, type Timing } from './runner.js'
export { type RowResult, SCENARIO_STORES, type TargetResult } from './scenarios/index.js'
export { profileCases } from './scenarios/profile-cases.js'

/** Options of {@link runSuite}. */
export interface SuiteOptions extends Targets {
  readonly timing?: Partial<Timing> | undefined
  /** Scenarios to run (`S1`…`S7`); default all. */
  readonly only?: ReadonlySet<string> | undefined
  readonly peers?: readonly PeerLibrary[] | undefined
  readonly memoryChildren?: readonly MemoryChild[] | undefined
  /** Objects inserted in S7 (default 1,000,000). */
  readonly s7Count?: number | undefined
  /** Profile this one case instead of measuring (see `profileCase`). */
  readonly profile?: ProfileRequest | undefined
  /** The command line, for the report. */
  readonly command: string
  /** Extra machine notes (CPU pinning, server flags). */
  readonly machineNotes?: readonly string[] | undefined
  readonly log?: ((line: string) => void) | undefined
  /**
   * A clean-up step that failed (the run's Redis keys not deleted, its table not dropped), one line;
   * default `log`. Printed even when `log` is quiet: it tells what the run left behind.
   */
  readonly warn?: ((line: string) => void) | undefined
  /**
   * Ends the run early (SIGINT): the connections are closed and the run's keys, table and temp
   * files removed at once, and {@link runSuite} rejects once they are.
   */
  readonly signal?: AbortSignal | undefined
}

/**
 * Default timing: 12 interleaved rounds of ~160 ms per contender, after a warm-up of at least 300 ms
 * and 5,000 calls (at most 3 s when calls are slow).
 */
export const DEFAULT_TIMING: Timing = { rounds: 12, roundMs: 160, warmupMs: 300, warmupCalls: WARMUP_CALLS, warmupMaxMs: WARMUP_MAX_MS }

/**
 * Runs the benchmark suite and returns its results (writing nothing).
 * @throws BenchSetupError when a server cannot be reached; `options.signal`'s reason when it aborts
 */
export async function runSuite(options: SuiteOptions): Promise<BenchResults> {
  const started = performance.now()
  const log = options.log ?? (() => {})
  const timing: Timing = { ...DEFAULT_TIMING, ...options.timing }
  log('connecting and loading data')
  const env: BenchEnv = await openEnv(options, log, options.signal, options.warn ?? log)
  try {
    const { rows, memory } = await runScenarios(env, {
      timing,
      only: options.only,
      peers: options.peers ?? [],
      memoryChildren: options.memoryChildren,
      s7Count: options.s7Count,
      profile: options.profile,
      log,
      signal: options.signal,
    })
    options.signal?.throwIfAborted()
    const servers = [env.redis?.version, env.memcached?.version, env.postgres?.version, env.sqlite?.version].filter(
      (v): v is string => v !== undefined,
    )
    if (env.memcached !== undefined) servers[servers.indexOf(env.memcached.version)] += ` ×${env.memcached.servers.length}`
    return {
      date: new Date().toISOString(),
      command: options.command,
      machine: machineInfo(servers, [...(options.machineNotes ?? [])]),
      peers: (env.redis === undefined ? [] : (options.peers ?? [])).map((p) => ({ name: p.name, version: p.version, config: p.config })),
      timing,
      rows,
      memory,
      seconds: (performance.now() - started) / 1000,
    }
  } finally {
    await env.close()
  }
}
