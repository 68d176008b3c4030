/**
 * The `stockpyle` command line. One command so far: `stockpyle bench`, the benchmark suite against
 * your own servers (stockpyle and the raw-client floors; the peer libraries are compared only by the
 * repository's `npm run bench`).
 */
import { resolve } from 'node:path'
import { redactUrl } from '../core/redact-url.js'
import {
  type BenchResults,
  BenchSetupError,
  type ProfileRequest,
  runSuite,
  SCENARIO_STORES,
  STORE_NAMES,
  type StoreName,
  toConsole,
  writeResults,
} from './bench/suite.js'

/** Usage text of `stockpyle bench`. */
export const BENCH_USAGE = `Usage: stockpyle bench [options]

Runs the stockpyle benchmark suite (S1–S7) against your servers and writes results.json,
results.md (ratio table) and results.svg (chart) to --out. Compares stockpyle with the raw
clients (lru-cache, ioredis, memcache-client, Kysely) in the same process run.

Options:
  --stores LIST      stores to use, comma-separated: ${STORE_NAMES.join(',')}
                     (default: memory,sqlite plus every store whose connection option is given;
                     a connection option for a store not listed is refused)
  --redis URL        Redis to use (default with --stores redis: redis://127.0.0.1:6379)
  --memcached LIST   memcached servers host:port,… (default with --stores memcached: 127.0.0.1:11211)
  --postgres URL     PostgreSQL to use (default with --stores postgres: postgres://postgres@127.0.0.1:5432/postgres)
  --sqlite PATH      SQLite file (default: a temporary file, removed afterwards)
  --scenarios LIST   only these scenarios, e.g. S1,S3 (default: all the stores can run); each
                     needs one of its stores: S1,S7 memory; S2,S3 redis or memcached;
                     S4-S6 sqlite or postgres
  --rounds N         measured rounds per contender (default 12)
  --round-ms MS      target duration of a round (default 160)
  --warmup-ms MS     shortest warm-up of each contender before the rounds (default 300)
  --warmup-calls N   calls each contender's warm-up makes at least, within 3 s (default 5000)
  --s7-count N       objects inserted by S7 (default 1000000)
  --out DIR          output directory (default bench/out)
  --quiet            print only the final table
  --check            exit with code 3 when a scenario misses its target (the "target"
                     column of results.md, e.g. at least 0.8x the raw-client floor)
  --profile ROW/CASE instead of measuring, run one case (e.g. 'S3 redis/stockpyle') in a loop
                     under the V8 CPU profiler and write <out>/profiles/<row>-<case>.cpuprofile
  --profile-seconds N  length of the profiled loop (default 5)
  -h, --help         this text

What it writes to your servers: keys under the prefix "stockpyle-bench:" with a 600 s lifetime
(deleted from Redis at the end; memcached lets them expire), and the table
stockpyle_bench_users (dropped and re-created at the start, dropped at the end).
SIGINT (Ctrl-C) or SIGTERM stops the run and does the same clean-up before it exits with code
130 or 143; a second signal exits at once.

Exit codes: 0 done, 1 a server could not be reached or the run failed, 2 a usage error,
3 a target missed (--check), 130/143 interrupted.`

/** Parsed options of `stockpyle bench`. */
export interface BenchArgs {
  stores: Set<StoreName>
  redisUrl?: string
  memcached?: string[]
  postgresUrl?: string
  sqlitePath?: string
  only?: Set<string>
  rounds?: number
  roundMs?: number
  warmupMs?: number
  warmupCalls?: number
  s7Count?: number
  profile?: string
  profileSeconds?: number
  out: string
  quiet: boolean
  check: boolean
  help: boolean
}

/** A command-line mistake: reported with the usage text and exit code 2. */
export class UsageError extends Error {}

function positive(flag: string, value: string): number {
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${flag} needs a positive integer, got ${JSON.stringify(value)}`)
  return n
}

function list(flag: string, value: string, what: string): string[] {
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
  if (items.length === 0) throw new UsageError(`${flag} needs at least one ${what}, got ${JSON.stringify(value)}`)
  return items
}

/** The connection flags, each with the store it is for. */
const CONNECTION_FLAGS = [
  ['--redis', 'redis', 'redisUrl'],
  ['--memcached', 'memcached', 'memcached'],
  ['--postgres', 'postgres', 'postgresUrl'],
  ['--sqlite', 'sqlite', 'sqlitePath'],
] as const

/** Parses the arguments after `bench`. @throws UsageError for an unknown or malformed option. */
export function parseBenchArgs(argv: readonly string[]): BenchArgs {
  const args: BenchArgs = { stores: new Set(), out: 'bench/out', quiet: false, check: false, help: false }
  let stores: string[] | undefined
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    const eq = arg.indexOf('=')
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg
    const inline = arg.startsWith('--') && eq > 0 ? arg.slice(eq + 1) : undefined
    const value = (): string => {
      if (inline !== undefined) return inline
      const next = argv[++i]
      if (next === undefined || next.startsWith('--')) throw new UsageError(`${flag} needs a value`)
      return next
    }
    // a boolean flag is on by its presence: `--check=false` must not turn it on
    if (inline !== undefined && (flag === '--help' || flag === '--quiet' || flag === '--check'))
      throw new UsageError(`${flag} takes no value, got ${JSON.stringify(arg)}`)
    switch (flag) {
      case '-h':
      case '--help':
        args.help = true
        break
      case '--quiet':
        args.quiet = true
        break
      case '--check':
        args.check = true
        break
      case '--stores':
        stores = list(flag, value(), 'store').map((s) => s.toLowerCase())
        break
      case '--redis':
        args.redisUrl = value()
        break
      case '--memcached':
        args.memcached = list(flag, value(), 'server')
        break
      case '--postgres':
        args.postgresUrl = value()
        break
      case '--sqlite':
        args.sqlitePath = value()
        break
      case '--scenarios':
        args.only = new Set(list(flag, value(), 'scenario').map((s) => s.toUpperCase()))
        for (const s of args.only) if (!/^S[1-7]$/.test(s)) throw new UsageError(`--scenarios: unknown scenario ${s} (S1…S7)`)
        break
      case '--rounds':
        args.rounds = positive(flag, value())
        break
      case '--round-ms':
        args.roundMs = positive(flag, value())
        break
      case '--warmup-ms':
        args.warmupMs = positive(flag, value())
        break
      case '--warmup-calls':
        args.warmupCalls = positive(flag, value())
        break
      case '--s7-count':
        args.s7Count = positive(flag, value())
        break
      case '--out':
        args.out = value()
        break
      case '--profile': {
        const v = value()
        if (v.lastIndexOf('/') <= 0) throw new UsageError(`--profile wants ROW/CASE, e.g. 'S3 redis/stockpyle', got ${JSON.stringify(v)}`)
        args.profile = v
        break
      }
      case '--profile-seconds':
        args.profileSeconds = positive(flag, value())
        break
      default:
        throw new UsageError(`unknown option ${JSON.stringify(arg)}`)
    }
  }
  if (stores === undefined) {
    stores = ['memory', 'sqlite']
    if (args.redisUrl !== undefined) stores.push('redis')
    if (args.memcached !== undefined) stores.push('memcached')
    if (args.postgresUrl !== undefined) stores.push('postgres')
  }
  for (const s of stores) {
    if (!(STORE_NAMES as readonly string[]).includes(s)) throw new UsageError(`--stores: unknown store ${s} (${STORE_NAMES.join(', ')})`)
    args.stores.add(s as StoreName)
  }
  // a flag that would be ignored, or a scenario that would be skipped, is a mistake in the command
  for (const [flag, store, key] of CONNECTION_FLAGS) {
    if (args[key] !== undefined && !args.stores.has(store))
      throw new UsageError(
        `${flag} is given but --stores ${[...args.stores].join(',')} does not include ${store}: add ${store} to --stores or drop ${flag}`,
      )
  }
  for (const scenario of args.only ?? []) {
    const needs = SCENARIO_STORES[scenario] ?? []
    if (!needs.some((s) => args.stores.has(s)))
      throw new UsageError(
        `--scenarios: ${scenario} needs ${needs.join(' or ')} in --stores (--stores is ${[...args.stores].join(',')}): add one or drop ${scenario}`,
      )
  }
  return args
}

/** Exit code of a run ended by a signal: 128 + the signal's number, as a shell reports it. */
const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const

/**
 * Runs `stockpyle bench`; resolves with the exit code. While the suite runs, SIGINT and SIGTERM
 * stop it: the connections are closed, the run's Redis keys deleted, its table dropped and its temp
 * directory removed, then the code is 130 (SIGINT) or 143 (SIGTERM). A second signal exits the
 * process at once, cleaned up or not.
 */
export async function benchCommand(argv: readonly string[]): Promise<number> {
  const args = parseBenchArgs(argv)
  if (args.help) {
    process.stdout.write(`${BENCH_USAGE}\n`)
    return 0
  }
  const log = args.quiet ? () => {} : (line: string) => process.stderr.write(`${line}\n`)
  let profile: ProfileRequest | undefined
  if (args.profile !== undefined) {
    const slash = args.profile.lastIndexOf('/')
    const row = args.profile.slice(0, slash).trim()
    const library = args.profile.slice(slash + 1).trim()
    const slug = `${row}-${library}`.replace(/[^A-Za-z0-9]+/g, '-').toLowerCase()
    profile = { row, library, seconds: args.profileSeconds ?? 5, file: resolve(args.out, 'profiles', `${slug}.cpuprofile`) }
    args.only ??= new Set([row.split(' ')[0]?.toUpperCase() ?? ''])
  }
  const abort = new AbortController()
  let interrupted: number | undefined
  const onSignal = (signal: keyof typeof SIGNAL_EXIT_CODES): void => {
    if (interrupted !== undefined) process.exit(interrupted)
    interrupted = SIGNAL_EXIT_CODES[signal]
    process.stderr.write(`${signal}: stopping and cleaning up (a second signal exits at once)\n`)
    abort.abort(new Error(`interrupted by ${signal}`))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  let results: BenchResults | undefined
  try {
    results = await runSuite({
      stores: args.stores,
      redisUrl: args.redisUrl,
      memcached: args.memcached,
      postgresUrl: args.postgresUrl,
      sqlitePath: args.sqlitePath,
      only: args.only,
      timing: {
        ...(args.rounds === undefined ? {} : { rounds: args.rounds }),
        ...(args.roundMs === undefined ? {} : { roundMs: args.roundMs }),
        ...(args.warmupMs === undefined ? {} : { warmupMs: args.warmupMs }),
        ...(args.warmupCalls === undefined ? {} : { warmupCalls: args.warmupCalls }),
      },
      s7Count: args.s7Count,
      profile,
      // saved in results.json/.md/.svg: no password from a connection URL
      command: ['stockpyle', 'bench', ...argv.map(redactUrl)].join(' '),
      log,
      signal: abort.signal,
    })
  } catch (err) {
    // what fails once the connections are closed under the run is the interruption, not an error
    if (interrupted === undefined) throw err
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
  if (interrupted !== undefined || results === undefined) return interrupted ?? 1
  if (profile !== undefined) {
    if (!results.rows.some((r) => r.cases.some((c) => c.extra.profile !== undefined))) {
      throw new UsageError(`--profile: no case ${JSON.stringify(profile.library)} in row ${JSON.stringify(profile.row)}`)
    }
    process.stdout.write(`Wrote ${profile.file}\n`)
    return 0
  }
  const files = writeResults(results, resolve(args.out))
  process.stdout.write(`\n${toConsole(results)}\n\nWrote ${files.json}, ${files.markdown}, ${files.svg}\n`)
  return args.check && results.rows.some((r) => r.target.met === false) ? 3 : 0
}

const USAGE = `Usage: stockpyle <command>

Commands:
  bench    run the benchmark suite against your servers (stockpyle bench --help)`

/** The CLI entry: dispatches to a command; resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv
  try {
    switch (command) {
      case 'bench':
        return await benchCommand(rest)
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(`${USAGE}\n`)
        return command === undefined ? 2 : 0
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`)
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`stockpyle: ${err.message}\n\n${command === 'bench' ? BENCH_USAGE : USAGE}\n`)
      return 2
    }
    const text = err instanceof BenchSetupError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)
    process.stderr.write(`stockpyle ${command ?? ''}: ${text}\n`)
    return 1
  }
}
