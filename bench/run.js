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
 * Installs bench/node_modules (`npm ci --prefix bench`) when missing. Prints the ratio table and writes
 * results.json / results.md / results.svg to --out (default bench/out); --update-results also writes
 * bench/RESULTS.md and bench/results.svg. The client runs on CPU 0 and the servers on CPU 1 when the
 * machine has two or more (taskset), as in shared/reference/peer-figures.md.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { loadHarness } from './harness.js'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')
const log = (line) => process.stderr.write(`${line}\n`)

function parseArgs(argv) {
  const args = { out: join(here, 'out'), update: false, pin: true }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const next = () => {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${a} needs a value`)
      return v
    }
    if (a === '--scenarios')
      args.only = new Set(
        next()
          .split(',')
          .map((s) => s.trim().toUpperCase()),
      )
    else if (a === '--rounds') args.rounds = Number(next())
    else if (a === '--round-ms') args.roundMs = Number(next())
    else if (a === '--warmup-ms') args.warmupMs = Number(next())
    else if (a === '--warmup-calls') args.warmupCalls = Number(next())
    else if (a === '--s7-count') args.s7Count = Number(next())
    else if (a === '--out') args.out = next()
    else if (a === '--update-results') args.update = true
    else if (a === '--no-pin') args.pin = false
    else if (a === '--check') args.check = true
    else if (a === '--no-peers') args.peers = false
    else if (a === '--profile') args.profile = next()
    else if (a === '--profile-seconds') args.profileSeconds = Number(next())
    else if (a === '--profile-file') args.profileFile = next()
    else throw new Error(`unknown option ${a} (see the header of bench/run.js)`)
  }
  return args
}

/** `'S3 redis/stockpyle'` → the profile request of the suite. */
function profileRequest(args) {
  if (args.profile === undefined) return undefined
  const slash = args.profile.lastIndexOf('/')
  if (slash <= 0) throw new Error(`--profile wants row/library, e.g. 'S3 redis/stockpyle', got ${args.profile}`)
  const row = args.profile.slice(0, slash).trim()
  const library = args.profile.slice(slash + 1).trim()
  const slug = `${row}-${library}`.replace(/[^A-Za-z0-9]+/g, '-').toLowerCase()
  const file = args.profileFile ?? join(args.out, 'profiles', `${slug}.cpuprofile`)
  return { row, library, seconds: args.profileSeconds ?? 5, file }
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

async function main() {
  const args = parseArgs(process.argv.slice(2))
  const profile = profileRequest(args)
  if (profile !== undefined) args.only ??= new Set([profile.row.split(' ')[0].toUpperCase()])
  const started = Date.now()
  // before the CPU pinning below, which nproc would report
  const machineBefore = {
    nproc: sh('nproc', []),
    free: sh('free', ['-g']),
    cpu: sh('sh', ['-c', "lscpu | grep 'Model name'"]),
    uptime: sh('uptime', []),
  }
  ensureInstalled()
  const suitePath = join(root, 'dist', 'cli', 'bench', 'suite.js')
  if (!existsSync(suitePath)) throw new Error('dist/ is missing: run `npm run build` (npm run bench does it)')
  const suite = await import(pathToFileURL(suitePath).href)
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
      only: args.only,
      timing: {
        ...(args.rounds ? { rounds: args.rounds } : {}),
        ...(args.roundMs ? { roundMs: args.roundMs } : {}),
        ...(args.warmupMs ? { warmupMs: args.warmupMs } : {}),
        ...(args.warmupCalls !== undefined ? { warmupCalls: args.warmupCalls } : {}),
      },
      s7Count: args.s7Count,
      profile,
      peers: args.peers === false ? [] : peers,
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
    const files = suite.writeResults(results, args.out)
    log(
      `\nbench: wrote ${relative(process.cwd(), files.json)}, ${relative(process.cwd(), files.markdown)}, ${relative(process.cwd(), files.svg)}`,
    )
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
    if (args.check && results.rows.some((r) => r.target.met === false)) process.exitCode = 3
  } finally {
    await Promise.allSettled([memcached.stop(), redis.stop(), postgres.stop()])
  }
  log(`bench: done in ${Math.round((Date.now() - started) / 1000)} s`)
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err) => {
    log(`bench: ${err?.stack ?? err}`)
    process.exit(1)
  },
)
