/**
 * `npm run bench`: the full benchmark — stockpyle, the raw-client floors and the peer libraries
 * (BentoCache, cache-manager, cacheable) in one process run — against real memcached (3 servers),
 * Redis and PostgreSQL started on loopback by the test harness (test/harness/servers.ts), plus SQLite.
 *
 *   npm run bench [-- --scenarios S1,S3] [--rounds N] [--round-ms MS] [--warmup-ms MS] [--warmup-calls N] [--s7-count N]
 *                 [--out DIR] [--update-results] [--no-pin] [--check] [--no-peers]
 *   npm run bench -- --profile 'S3 redis/stockpyle' [--profile-seconds 5] [--profile-file F]
 *
 * --no-peers leaves the peer libraries out (a diagnostic: the like-for-like rows then compare
 * stockpyle with its floors only, without the peers' rounds in between; never for published figures).
 *
 * --profile runs only the named case (row/library, as printed in the table) in a loop under the V8 CPU
 * profiler, with the same setup as the measurement, and writes a .cpuprofile (default
 * <out>/profiles/<row>-<library>.cpuprofile); summarise it with `node bench/cpuprofile-summary.js F`.
 *
 * The options it shares with `stockpyle bench` are checked as that checks them (src/cli/repo-bench-args.ts),
 * before any server starts: a malformed number, a flag the run would ignore (--check, --rounds, … with
 * --profile; --s7-count without S7; --profile-file without --profile; --update-results or --no-peers
 * with --profile) or an --out that cannot be written into is one line and exit code 2. When --out
 * cannot be written at the end, the results go to a temporary directory the message names (exit 1).
 * A row whose floor or stockpyle case failed is one line naming the cases and exit code 1.
 *
 * Installs bench/node_modules (`npm ci --prefix bench`) when missing. Prints the ratio table and writes
 * results.json / results.md / results.svg to --out (default bench/out); --update-results also writes
 * bench/RESULTS.md and bench/results.svg. The client runs on CPU 0 and the servers on CPU 1 when the
 * machine has two or more (taskset), as in shared/reference/peer-figures.md.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { loadHarness } from './harness.js'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')
const log = (line) => process.stderr.write(`${line}\n`)

/** `--profile` (checked and spelt as the table spells it by parseRepoBenchArgs) → the profile request of the suite. */
function profileRequest(args) {
  const { profile, profileSeconds, out } = args.bench
  if (profile === undefined) return undefined
  const slug = `${profile.row}-${profile.library}`.replace(/[^A-Za-z0-9]+/g, '-').toLowerCase()
  const file = resolve(args.profileFile ?? join(out, 'profiles', `${slug}.cpuprofile`))
  return { row: profile.row, library: profile.library, seconds: profileSeconds ?? 5, file }
}

function ensureInstalled() {
  if (existsSync(join(here, 'node_modules', 'bentocache', 'package.json'))) return
  log('bench: installing the peer libraries (npm ci --prefix bench)')
  const r = spawnSync('npm', ['ci', '--prefix', here, '--no-audit', '--no-fund'], { stdio: ['ignore', 2, 2] })
  if (r.status !== 0) throw new Error('npm ci --prefix bench failed')
}

function pin(pid, cpu, all = false) {
  try {
    execFileSync('taskset', [all ? '-apc' : '-pc', String(cpu), String(pid)], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

function sh(command, args) {
  try {
    return execFileSync(command, args, { encoding: 'utf8' }).trim()
  } catch {
    return '(unavailable)'
  }
}

/**
 * The arguments, checked before any server starts, like `stockpyle bench` checks its own (see
 * src/cli/repo-bench-args.ts); the output directory too. Undefined after a usage error: printed in one
 * line, exit code 2.
 */
async function checkedArgs(cli) {
  const { parseRepoBenchArgs, UsageError } = await import(pathToFileURL(join(cli, 'repo-bench-args.js')).href)
  const { checkOutDir } = await import(pathToFileURL(join(cli, 'out-dir.js')).href)
  try {
    const args = parseRepoBenchArgs(process.argv.slice(2), join(here, 'out'))
    const profile = profileRequest(args)
    if (profile === undefined) checkOutDir(args.bench.out)
    else
      checkOutDir(dirname(profile.file), args.profileFile === undefined ? `--out ${args.bench.out}` : `--profile-file ${args.profileFile}`)
    return { args, profile }
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    log(`bench: ${err.message}`)
    process.exitCode = 2
    return undefined
  }
}

async function main() {
  const cli = join(root, 'dist', 'cli')
  if (!existsSync(join(cli, 'bench', 'suite.js'))) throw new Error('dist/ is missing: run `npm run build` (npm run bench does it)')
  const checked = await checkedArgs(cli)
  if (checked === undefined) return
  const { args, profile } = checked
  const started = Date.now()
  // before the CPU pinning below, which nproc would report
  const machineBefore = {
    nproc: sh('nproc', []),
    free: sh('free', ['-g']),
    cpu: sh('sh', ['-c', "lscpu | grep 'Model name'"]),
    uptime: sh('uptime', []),
  }
  ensureInstalled()
  const suite = await import(pathToFileURL(join(cli, 'bench', 'suite.js')).href)
  const { saveResults } = await import(pathToFileURL(join(cli, 'out-dir.js')).href)
  const { peers, memoryChildren } = await import('./peers.js')
  const harness = await loadHarness()
  log('bench: starting memcached ×3, redis, postgres on loopback')
  const [memcached, redis, postgres] = await Promise.all([harness.startMemcached(3), harness.startRedis(), harness.startPostgres()])
  const notes = []
  try {
    if (args.pin && availableParallelism() >= 2) {
      const serverPids = [...memcached.nodes.map((n) => n.pid), redis.pid, postgres.pid]
      const pinned = pin(process.pid, 0, true) && serverPids.every((pid) => pin(pid, 1, true))
      notes.push(
        pinned
          ? 'Client (this process and its S7 children) pinned to CPU 0, every server (3 memcached, Redis, PostgreSQL and its backends) to CPU 1, with taskset.'
          : 'CPU pinning with taskset failed: client and servers share the CPUs.',
      )
    } else notes.push('No CPU pinning: client and servers share the CPUs.')
    notes.push(
      'PostgreSQL runs with fsync=off, synchronous_commit=off, full_page_writes=off (test harness settings); SQLite is a file in /tmp.',
    )
    const results = await suite.runSuite({
      stores: new Set(['memory', 'redis', 'memcached', 'sqlite', 'postgres']),
      redisUrl: redis.url,
      memcached: memcached.servers,
      postgresUrl: postgres.url,
      only: args.bench.only,
      timing: {
        ...(args.bench.rounds === undefined ? {} : { rounds: args.bench.rounds }),
        ...(args.bench.roundMs === undefined ? {} : { roundMs: args.bench.roundMs }),
        ...(args.bench.warmupMs === undefined ? {} : { warmupMs: args.bench.warmupMs }),
        ...(args.bench.warmupCalls === undefined ? {} : { warmupCalls: args.bench.warmupCalls }),
      },
      s7Count: args.bench.s7Count,
      profile,
      peers: args.peers ? peers : [],
      memoryChildren,
      command: ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '),
      machineNotes: notes,
      log,
    })
    if (profile !== undefined) {
      const found = results.rows.some((r) => r.cases.some((c) => c.extra.profile !== undefined))
      if (!found) throw new Error(`--profile: no case ${profile.library} in row ${profile.row} (see the table of bench/RESULTS.md)`)
      log(`bench: profile written to ${relative(process.cwd(), profile.file)}`)
      return
    }
    process.stdout.write(`\n${suite.toConsole(results)}\n`)
    const files = saveResults(results, resolve(args.bench.out))
    if (files.failed === undefined)
      log(
        `\nbench: wrote ${relative(process.cwd(), files.json)}, ${relative(process.cwd(), files.markdown)}, ${relative(process.cwd(), files.svg)}`,
      )
    else {
      log(`\nbench: ${files.failed}; wrote them to ${dirname(files.json)} instead`)
      process.exitCode = 1
    }
    if (args.update) {
      const machine = [
        '```',
        `$ nproc\n${machineBefore.nproc}`,
        `$ free -g\n${machineBefore.free}`,
        `$ node --version\n${process.version}`,
        `$ lscpu | grep 'Model name'\n${machineBefore.cpu}`,
        `servers: ${results.machine.servers.join(', ')}`,
        `$ uptime   # before the run (other processes share the CPUs)\n${machineBefore.uptime}`,
        `$ uptime   # after the run\n${sh('uptime', [])}`,
        '```',
      ].join('\n')
      const body = suite.toMarkdown(results, 'results.svg').replace(/^# stockpyle benchmark results\n/, '')
      // the hand-written analysis (profiles, where the time goes) after the marker survives regeneration
      const resultsFile = join(here, 'RESULTS.md')
      const marker = '<!-- analysis: kept by --update-results -->'
      const previous = existsSync(resultsFile) ? readFileSync(resultsFile, 'utf8') : ''
      const analysis = previous.includes(marker) ? previous.slice(previous.indexOf(marker)) : `${marker}\n`
      writeFileSync(
        resultsFile,
        `# stockpyle benchmark results (this repository's machine)\n\nThe latest \`npm run bench\` on the development machine. Regenerate with \`npm run bench -- --update-results\`; see docs/benchmarks.md for what each scenario measures and how to read the ratios.\n\n## Machine\n\n${machine}\n${body}\n${analysis}`,
      )
      writeFileSync(join(here, 'results.svg'), suite.toSvg(results))
      log('bench: updated bench/RESULTS.md and bench/results.svg')
    }
    // a row without its floor's or stockpyle's figure has no verdict: the run failed, --check or not
    const failed = suite.failedCases(results)
    if (failed.length > 0) {
      log(`bench: the run failed: ${failed.join('; ')}`)
      process.exitCode = 1
    }
    if (args.bench.check && process.exitCode === undefined && results.rows.some((r) => r.target.met === false)) process.exitCode = 3
  } finally {
    await Promise.allSettled([memcached.stop(), redis.stop(), postgres.stop()])
  }
  log(`bench: done in ${Math.round((Date.now() - started) / 1000)} s`)
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err) => {
    // a server or the output that failed: one line (as stockpyle bench prints them); a bug: its stack
    log(`bench: ${err?.name === 'BenchSetupError' || err?.name === 'BenchOutputError' ? err.message : (err?.stack ?? err)}`)
    process.exit(1)
  },
)
