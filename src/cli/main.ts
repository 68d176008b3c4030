/**
 * The `stockpyle` command line. One command so far: `stockpyle bench`, the benchmark suite against
 * your own servers (stockpyle and the raw-client floors; the peer libraries are compared only by the
 * repository's `npm run bench`).
 */
import { dirname, resolve } from 'node:path'
import { redactUrl } from '../core/redact-url.js'
import {
  BenchOutputError,
  type BenchResults,
  BenchSetupError,
  failedCases,
  type ProfileRequest,
  runSuite,
  STORE_NAMES,
  toConsole,
} from './bench/suite.js'
import { parseBenchArgs, UsageError } from './bench-args.js'
import { checkOutDir, saveResults } from './out-dir.js'

export { type BenchArgs, type ProfileTarget, parseBenchArgs, UsageError } from './bench-args.js'

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
  --sqlite PATH      SQLite file, not :memory: (default: a temporary file, removed afterwards)
  --scenarios LIST   only these scenarios, e.g. S1,S3 (default: all the stores can run); each
                     needs one of its stores: S1,S7 memory; S2,S3 redis or memcached;
                     S4-S6 sqlite or postgres
  --rounds N         measured rounds per contender (default 12)
  --round-ms MS      target duration of a round (default 160)
  --warmup-ms MS     shortest warm-up of each contender before the rounds (default 300)
  --warmup-calls N   calls each contender's warm-up makes at least, within 3 s (default 5000)
  --s7-count N       objects inserted by S7 (default 1000000); only with S7 in the run
  --out DIR          output directory (default bench/out), created if missing; one that is a
                     file or cannot be written into is refused before anything connects
  --quiet            print only the final table
  --check            exit with code 3 when a scenario misses its target (the "target"
                     column of results.md, e.g. at least 0.8x the raw-client floor)
  --profile ROW/CASE instead of measuring, run one case (e.g. 'S3 redis/stockpyle') in a loop
                     under the V8 CPU profiler and write <out>/profiles/<row>-<case>.cpuprofile;
                     a row and case of the table the selected stores run (S7 cannot be profiled);
                     not with --check, --rounds, --round-ms, --warmup-ms, --warmup-calls or
                     --s7-count, which it would ignore
  --profile-seconds N  length of the profiled loop (default 5)
  -h, --help         this text

What it writes to your servers, under names of its own (<id>: 8 random hex digits, printed at
the start), so that runs sharing a server leave each other alone: keys under the prefix
"stockpyle-bench-<id>:" with a 600 s lifetime (deleted from Redis at the end; memcached lets
them expire), and the table stockpyle_bench_users_<id> (created at the start, dropped at the
end). A clean-up step that fails (a Redis user that may not SCAN) prints one warning line.
SIGINT (Ctrl-C) or SIGTERM stops the run, also while it connects, and does the same clean-up
before it exits with code 130 or 143; a second signal exits at once. A server that does not
answer within 5 s ends the run (exit code 1).

Exit codes: 0 done, 1 a server could not be reached or the run failed (a row's floor or
stockpyle case failed: with or without --check; or its results could not be written to --out:
they are then in a temporary directory the message names), 2 a usage error, 3 a target missed
(--check), 130/143 interrupted.`

/** Exit code of a run ended by a signal: 128 + the signal's number, as a shell reports it. */
const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const

/**
 * Runs `stockpyle bench`; resolves with the exit code. While the suite runs, SIGINT and SIGTERM
 * stop it: the connections are closed, the run's Redis keys deleted, its table dropped and its temp
 * directory removed, then the code is 130 (SIGINT) or 143 (SIGTERM). A second signal exits the
 * process at once, cleaned up or not. `--out` is checked before anything connects; when it still
 * cannot be written at the end, the table is printed, the files go to a temporary directory, one line
 * names it and the code is 1. A row whose floor or stockpyle case failed (see `failedCases`) is one
 * line naming them and code 1, after the table and the files; otherwise an unmet target is code 3
 * with `--check`. A clean-up step that failed is one warning line, even with `--quiet`.
 * @throws UsageError for a command mistake, an `--out` that cannot be written into included (exit code 2)
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
    const { row, library } = args.profile
    const slug = `${row}-${library}`.replace(/[^A-Za-z0-9]+/g, '-').toLowerCase()
    profile = { row, library, seconds: args.profileSeconds ?? 5, file: resolve(args.out, 'profiles', `${slug}.cpuprofile`) }
  }
  // before anything connects: a directory that cannot take the files would lose the whole run
  checkOutDir(profile === undefined ? args.out : dirname(profile.file), `--out ${args.out}`)
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
      // even with --quiet: it says what the run left on the servers
      warn: (line) => process.stderr.write(`stockpyle bench: warning: ${line}\n`),
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
    // (parseBenchArgs checked the case against profileCases: this is a bug, not a usage error)
    if (!results.rows.some((r) => r.cases.some((c) => c.extra.profile !== undefined))) {
      throw new Error(`--profile: the run built no case ${profile.row}/${profile.library}: profileCases is out of step with the scenarios`)
    }
    process.stdout.write(`Wrote ${profile.file}\n`)
    return 0
  }
  // the table first: it is on the screen whatever becomes of the files
  process.stdout.write(`\n${toConsole(results)}\n\n`)
  const files = saveResults(results, resolve(args.out))
  if (files.failed !== undefined) process.stderr.write(`stockpyle bench: ${files.failed}; wrote them to ${dirname(files.json)} instead\n`)
  else process.stdout.write(`Wrote ${files.json}, ${files.markdown}, ${files.svg}\n`)
  // a row without its floor's or stockpyle's figure has no verdict: the run failed, --check or not
  const failed = failedCases(results)
  if (failed.length > 0) process.stderr.write(`stockpyle bench: the run failed: ${failed.join('; ')}\n`)
  if (files.failed !== undefined || failed.length > 0) return 1
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
    const oneLine = err instanceof BenchSetupError || err instanceof BenchOutputError
    const text = oneLine ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)
    process.stderr.write(`stockpyle ${command ?? ''}: ${text}\n`)
    return 1
  }
}
