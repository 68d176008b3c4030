/**
 * The arguments of the repository's `npm run bench` (bench/run.js, which starts a server of every
 * store itself): the options it shares with `stockpyle bench`, checked by {@link parseBenchArgs} with
 * every store selected, and its own. Parsed before any server starts, so that the same command
 * mistakes are refused in the same words as by the CLI.
 */
import { STORE_NAMES } from './bench/suite.js'
import { type BenchArgs, parseBenchArgs, UsageError } from './bench-args.js'

export { UsageError } from './bench-args.js'

/** Parsed options of `npm run bench`. */
export interface RepoBenchArgs {
  /** The options shared with `stockpyle bench`, every store selected; `out` is `defaultOut` without `--out`. */
  readonly bench: BenchArgs
  /** `--update-results`: also rewrite bench/RESULTS.md and bench/results.svg. */
  readonly update: boolean
  /** `false` with `--no-pin` (client and servers then share the CPUs). */
  readonly pin: boolean
  /** `false` with `--no-peers` (the peer libraries left out). */
  readonly peers: boolean
  /** `--profile-file`: where the profile goes; undefined: `<out>/profiles/<row>-<case>.cpuprofile`. */
  readonly profileFile?: string | undefined
}

/** The options `npm run bench` passes on to {@link parseBenchArgs}. */
const SHARED = new Set([
  '--scenarios',
  '--rounds',
  '--round-ms',
  '--warmup-ms',
  '--warmup-calls',
  '--s7-count',
  '--out',
  '--check',
  '--profile',
  '--profile-seconds',
])

/** What `stockpyle bench` connects to: `npm run bench` starts its own servers. */
const SERVER_FLAGS = new Set(['--stores', '--redis', '--memcached', '--postgres', '--sqlite'])

/**
 * Parses the arguments of `node bench/run.js`.
 * @param defaultOut the output directory without `--out`
 * @throws UsageError for an unknown or malformed option, or one the run would ignore (as
 *   {@link parseBenchArgs}; and `--profile-file` without `--profile`, or `--profile` with `--out` and
 *   `--profile-file`, `--update-results` or `--no-peers`)
 */
export function parseRepoBenchArgs(argv: readonly string[], defaultOut: string): RepoBenchArgs {
  const shared: string[] = []
  let update = false
  let pin = true
  let peers = true
  let profileFile: string | undefined
  let outGiven = false
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    const eq = arg.indexOf('=')
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg
    const inline = flag === arg ? undefined : arg.slice(eq + 1)
    const next = argv[i + 1]
    if (flag === '--update-results' || flag === '--no-pin' || flag === '--no-peers') {
      if (inline !== undefined) throw new UsageError(`${flag} takes no value, got ${JSON.stringify(arg)}`)
      if (flag === '--update-results') update = true
      else if (flag === '--no-pin') pin = false
      else peers = false
    } else if (flag === '--profile-file') {
      const value = inline ?? (next === undefined || next.startsWith('--') ? undefined : argv[++i])
      if (value === undefined || value.trim() === '') throw new UsageError('--profile-file needs a value')
      profileFile = value
    } else if (SHARED.has(flag)) {
      shared.push(arg)
      outGiven ||= flag === '--out'
      // its value, which parseBenchArgs reads (and refuses when missing)
      if (inline === undefined && flag !== '--check' && next !== undefined && !next.startsWith('--')) shared.push(argv[++i] as string)
    } else if (SERVER_FLAGS.has(flag)) {
      throw new UsageError(
        `unknown option ${JSON.stringify(flag)} (npm run bench runs every store on servers of its own; see the header of bench/run.js)`,
      )
    } else throw new UsageError(`unknown option ${JSON.stringify(arg)} (see the header of bench/run.js)`)
  }
  const bench = parseBenchArgs(['--stores', STORE_NAMES.join(','), ...shared])
  if (!outGiven) bench.out = defaultOut
  if (bench.profile === undefined) {
    if (profileFile !== undefined) throw new UsageError('--profile-file is given without --profile')
  } else {
    if (profileFile !== undefined && outGiven)
      throw new UsageError('--out is given but --profile-file says where the profile goes: drop --out')
    if (update) throw new UsageError('--update-results is given but --profile writes no results: drop --update-results')
    if (!peers) throw new UsageError('--no-peers is given but --profile runs no peer: drop --no-peers')
  }
  return { bench, update, pin, peers, profileFile }
}
