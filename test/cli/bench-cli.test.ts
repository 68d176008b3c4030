/**
 * `stockpyle bench`, the command line: argument checks (in process, `parseBenchArgs`) and what the
 * built executable (`dist/cli.js`, run in a child process against the harness's servers) does when a
 * server cannot be reached, with a password in a URL, and on SIGINT / SIGTERM.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { parseBenchArgs, UsageError } from '../../src/cli/main.js'
import { checkOutDir } from '../../src/cli/out-dir.js'
import { parseRepoBenchArgs } from '../../src/cli/repo-bench-args.js'
import { freePort, selectedStores } from '../harness/servers.js'

const stores = selectedStores()
const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))
/** The smallest measurement the CLI allows. */
const TINY = ['--rounds', '1', '--round-ms', '1', '--warmup-ms', '1', '--warmup-calls', '1']

const dirs: string[] = []
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'stockpyle-cli-test-'))
  dirs.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

interface Run {
  readonly child: ChildProcess
  /** Resolves with the exit code (or the signal that ended the child) once it exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>
  stdout(): string
  stderr(): string
  /** Resolves once stderr holds `text`; rejects when the child exits first. */
  waitFor(text: string): Promise<void>
}

/** Starts `node dist/cli.js bench …args`; killed with SIGKILL after `timeoutMs`. */
function bench(args: readonly string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Run {
  expect(existsSync(CLI), 'dist/: run npm run build').toBe(true)
  const started = performance.now()
  const child = spawn(process.execPath, [CLI, 'bench', ...args], {
    env: { ...process.env, NODE_OPTIONS: '', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  const waiters: { text: string; resolve: () => void; reject: (e: Error) => void }[] = []
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d))
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err += d
    for (const w of waiters.splice(0)) (err.includes(w.text) ? w.resolve : () => waiters.push(w))()
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>((resolve) =>
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      for (const w of waiters.splice(0)) w.reject(new Error(`the CLI exited (${code ?? signal}) before printing ${w.text}:\n${err}`))
      resolve({ code, signal, ms: performance.now() - started })
    }),
  )
  return {
    child,
    exited,
    stdout: () => out,
    stderr: () => err,
    waitFor: (text) =>
      err.includes(text)
        ? Promise.resolve()
        : new Promise((resolve, reject) => {
            if (child.exitCode !== null || child.signalCode !== null) reject(new Error(`the CLI exited before printing ${text}:\n${err}`))
            else waiters.push({ text, resolve, reject })
          }),
  }
}

const usage = (argv: string[]): string => {
  try {
    parseBenchArgs(argv)
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError)
    return (err as Error).message
  }
  throw new Error(`parseBenchArgs accepted ${JSON.stringify(argv)}`)
}

describe('stockpyle bench: arguments that would measure nothing, or not what was asked, are usage errors', () => {
  it('refuses an empty list for --stores, --scenarios and --memcached', () => {
    expect(usage(['--stores='])).toMatch(/--stores needs at least one/)
    expect(usage(['--stores', ','])).toMatch(/--stores needs at least one/)
    expect(usage(['--scenarios='])).toMatch(/--scenarios needs at least one/)
    expect(usage(['--stores', 'memory,memcached', '--memcached='])).toMatch(/--memcached needs at least one/)
  })

  it('refuses an empty item or a duplicate in --scenarios and --stores', () => {
    expect(usage(['--scenarios', 'S1,,S1'])).toBe('--scenarios has an empty item: "S1,,S1"')
    expect(usage(['--scenarios', 'S1,'])).toBe('--scenarios has an empty item: "S1,"')
    expect(usage(['--scenarios', 'S1,s1'])).toBe('--scenarios lists S1 twice')
    expect(usage(['--stores', 'memory,,redis'])).toBe('--stores has an empty item: "memory,,redis"')
    expect(usage(['--stores', 'memory,Memory'])).toBe('--stores lists memory twice')
    expect(parseBenchArgs(['--scenarios', ' s1, S4 ']).only).toEqual(new Set(['S1', 'S4']))
  })

  it('refuses, before connecting, a --redis URL the RedisStore of the run would refuse (and shows no password)', () => {
    for (const url of [
      'redis://127.0.0.1:6379/?password=topsecret',
      'redis://127.0.0.1:6379/2?connectTimeout=500',
      'redis://127.0.0.1:6379/db2',
      'redis://127.0.0.1:99999',
      'notaurl',
    ]) {
      const message = usage(['--stores', 'memory,redis', '--redis', url])
      expect(message, url).toMatch(/^--redis: option `url` must be a redis:\/\/ or rediss:\/\/ URL/)
      expect(message).not.toContain('topsecret')
    }
    expect(usage(['--redis', 'redis://127.0.0.1:6379/db2'])).toMatch(/whose path is empty or a database number/)
    expect(parseBenchArgs(['--redis', 'rediss://u:p@cache:6380/3']).redisUrl).toBe('rediss://u:p@cache:6380/3')
  })

  it('refuses a value on a boolean flag instead of ignoring it', () => {
    expect(usage(['--quiet=no'])).toMatch(/--quiet takes no value/)
    expect(usage(['--check=false'])).toMatch(/--check takes no value/)
    expect(usage(['--help=0'])).toMatch(/--help takes no value/)
    expect(parseBenchArgs(['--quiet', '--check'])).toMatchObject({ quiet: true, check: true })
  })

  it('refuses a scenario the selected stores cannot run', () => {
    expect(usage(['--stores', 'memory', '--scenarios', 'S2'])).toMatch(/S2 needs redis or memcached/)
    expect(usage(['--stores', 'redis', '--scenarios', 'S1,S2'])).toMatch(/S1 needs memory/)
    expect(usage(['--stores', 'memory', '--scenarios', 'S1,S5'])).toMatch(/S5 needs sqlite or postgres/)
    expect(parseBenchArgs(['--stores', 'memory,redis', '--scenarios', 'S1,S2']).only).toEqual(new Set(['S1', 'S2']))
    // without --scenarios, the scenarios the stores can run run (every store enables one)
    expect(parseBenchArgs(['--stores', 'postgres']).only).toBeUndefined()
  })

  it('refuses a connection flag for a store that --stores leaves out', () => {
    expect(usage(['--stores', 'memory', '--redis', 'redis://127.0.0.1:1'])).toMatch(
      /--redis is given but --stores memory does not include redis/,
    )
    expect(usage(['--stores', 'memory,redis', '--memcached', '127.0.0.1:1'])).toMatch(/--memcached .* memcached/)
    expect(usage(['--stores', 'sqlite', '--postgres', 'postgres://x@127.0.0.1/db'])).toMatch(/--postgres .* postgres/)
    expect(usage(['--stores', 'memory', '--sqlite', '/tmp/x.db'])).toMatch(/--sqlite .* sqlite/)
    // without --stores, a connection flag selects its store
    expect([...parseBenchArgs(['--redis', 'redis://127.0.0.1:1']).stores]).toEqual(['memory', 'sqlite', 'redis'])
  })

  it('refuses a --memcached server that is not host:port with a port 1-65535, or listed twice', () => {
    expect(usage(['--stores', 'memory,memcached', '--memcached', 'localhost'])).toBe(
      `--memcached: server "localhost" is not host:port (a host name or IPv4 address, a port 1-65535)`,
    )
    expect(usage(['--memcached', '127.0.0.1:99999'])).toMatch(/--memcached: server "127.0.0.1:99999" is not host:port/)
    expect(usage(['--memcached', '127.0.0.1:0'])).toMatch(/"127.0.0.1:0" is not host:port/)
    expect(usage(['--memcached', '127.0.0.1:11211,:11212'])).toMatch(/":11212" is not host:port/)
    expect(usage(['--memcached', '[::1]:11211'])).toMatch(/"\[::1\]:11211" is not host:port/)
    expect(usage(['--memcached', 'a:1,b:2,a:1'])).toBe('--memcached lists "a:1" twice')
    expect(parseBenchArgs(['--memcached', '10.0.0.6:11211, cache-2.internal:65535']).memcached).toEqual([
      '10.0.0.6:11211',
      'cache-2.internal:65535',
    ])
  })

  it('refuses an empty path or URL, and an in-memory SQLite the floor and stockpyle could not share', () => {
    expect(usage(['--sqlite='])).toBe('--sqlite needs a value')
    expect(usage(['--redis='])).toBe('--redis needs a value')
    expect(usage(['--postgres='])).toBe('--postgres needs a value')
    expect(usage(['--out='])).toBe('--out needs a value')
    expect(usage(['--sqlite', ':memory:'])).toMatch(/--sqlite needs a file: .*:memory:/)
  })

  it('parses numbers strictly: digits only, no hex, exponent, sign, fraction, space or leading zero', () => {
    for (const flag of ['--rounds', '--round-ms', '--warmup-ms', '--warmup-calls', '--s7-count']) {
      for (const bad of ['0x10', '1e3', ' 5', '5 ', '+5', '-5', '1.0', '05', '0', '', 'five', '9007199254740993']) {
        expect(usage([flag, bad]), `${flag} ${JSON.stringify(bad)}`).toBe(`${flag} needs a positive integer, got ${JSON.stringify(bad)}`)
      }
    }
    expect(usage(['--profile', 'S1 memory/floor', '--profile-seconds', '1e1'])).toMatch(/--profile-seconds needs a positive integer/)
    expect(parseBenchArgs(['--rounds', '3', '--round-ms=250', '--warmup-calls', '1', '--s7-count', '1000000'])).toMatchObject({
      rounds: 3,
      roundMs: 250,
      warmupCalls: 1,
      s7Count: 1_000_000,
    })
  })

  it('checks --profile against the cases the selected stores run, before connecting', () => {
    expect(usage(['--profile', 'S9 nothing/x'])).toBe(
      '--profile: no row "S9 nothing" with --stores memory,sqlite, which runs S1 memory, S4 sqlite, S5 sqlite, S6 sqlite',
    )
    expect(usage(['--profile', 'S1 memory/x'])).toBe(
      '--profile: row "S1 memory" has no case "x"; its cases are floor, stockpyle, ProcessMemoryStore alone, stockpyle by email',
    )
    expect(usage(['--stores', 'memory,sqlite', '--profile', 'S2 redis/stockpyle'])).toMatch(/no row "S2 redis" with --stores memory,sqlite/)
    // S4's floor and chain write Redis
    expect(usage(['--profile', 'S4 sqlite/floor'])).toMatch(
      /row "S4 sqlite" has no case "floor"; its cases are query \+ mapping, SqlStore alone \(floor and stockpyle need redis in --stores\)/,
    )
    // S5 and S6 run on PostgreSQL when it is selected
    expect(usage(['--stores', 'sqlite,postgres', '--profile', 'S5 sqlite/stockpyle'])).toMatch(/no row "S5 sqlite".*S5 postgres/)
    expect(usage(['--stores', 'memory', '--profile', 'S7 memory bound/stockpyle'])).toMatch(
      /no row "S7 memory bound".*S7, measured in child processes, cannot be profiled/,
    )
    expect(usage(['--scenarios', 'S1', '--profile', 'S4 sqlite/SqlStore alone'])).toBe(
      '--profile: row "S4 sqlite" is in scenario S4, which --scenarios S1 leaves out',
    )
    expect(usage(['--profile-seconds', '2'])).toBe('--profile-seconds is given without --profile')
    // the names as the table prints them, in any case
    expect(parseBenchArgs(['--profile', ' s1 MEMORY / Stockpyle BY email ']).profile).toEqual({
      row: 'S1 memory',
      library: 'stockpyle by email',
    })
    expect(parseBenchArgs(['--stores', 'redis,postgres', '--profile', 'S4 postgres/stockpyle']).profile).toEqual({
      row: 'S4 postgres',
      library: 'stockpyle',
    })
  })

  it('refuses the flags --profile would ignore: it runs one case with its own warm-up and writes no table', () => {
    const profile = ['--stores', 'memory', '--profile', 'S1 memory/stockpyle']
    for (const [flag, value] of [
      ['--check'],
      ['--rounds', '3'],
      ['--round-ms', '100'],
      ['--warmup-ms', '100'],
      ['--warmup-calls', '100'],
      ['--s7-count', '1000'],
    ] as const) {
      expect(usage([...profile, flag, ...(value === undefined ? [] : [value])]), flag).toBe(
        `--profile runs one case for --profile-seconds after a warm-up of its own and writes no table: ${flag} would be ignored; drop it`,
      )
    }
    expect(usage([...profile, '--check', '--rounds', '3', '--s7-count', '5'])).toBe(
      '--profile runs one case for --profile-seconds after a warm-up of its own and writes no table: --check, --rounds and --s7-count would be ignored; drop them',
    )
    expect(parseBenchArgs([...profile, '--profile-seconds', '2', '--quiet', '--out', 'x']).profile).toEqual({
      row: 'S1 memory',
      library: 'stockpyle',
    })
  })

  it('refuses --s7-count when the run has no S7, and the timing flags when it runs S7 alone', () => {
    expect(usage(['--stores', 'memory', '--scenarios', 'S1', '--s7-count', '3'])).toBe(
      '--s7-count is given but --scenarios S1 leaves S7 out: add S7 to --scenarios or drop --s7-count',
    )
    expect(usage(['--stores', 'sqlite,redis', '--s7-count', '3'])).toBe(
      '--s7-count is given but S7 needs memory in --stores (--stores is sqlite,redis): add memory or drop --s7-count',
    )
    expect(parseBenchArgs(['--stores', 'memory', '--s7-count', '3']).s7Count).toBe(3)
    expect(parseBenchArgs(['--scenarios', 's1,s7', '--s7-count', '3']).s7Count).toBe(3)
    // S7 measures memory in child processes, not in timed rounds
    expect(usage(['--stores', 'memory', '--scenarios', 'S7', '--rounds', '3', '--warmup-ms', '5'])).toBe(
      '--scenarios S7 measures memory, not timed rounds: --rounds and --warmup-ms would be ignored; drop them',
    )
    expect(parseBenchArgs(['--scenarios', 'S1,S7', '--rounds', '3']).rounds).toBe(3)
  })

  it('exits with code 2 and writes no results for such a command, --check or not', async () => {
    const out = tempDir()
    for (const args of [
      ['--stores=', '--check'],
      ['--stores', 'memory', '--scenarios', 'S2', '--check'],
      ['--stores', 'memory,memcached', '--memcached=', '--scenarios', 'S2'],
      ['--stores', 'memory', '--redis', 'redis://127.0.0.1:1', '--scenarios', 'S1'],
      ['--stores', 'memory,memcached', '--memcached', 'localhost', '--scenarios', 'S1,S2'],
      ['--stores', 'memory,memcached', '--memcached', '127.0.0.1:99999', '--scenarios', 'S1,S2'],
      ['--rounds', '0x10'],
      ['--profile', 'S9 nothing/x'],
      ['--stores', 'memory', '--profile', 'S1 memory/stockpyle', '--check'],
      ['--stores', 'memory', '--scenarios', 'S1', '--s7-count', '3'],
      ['--stores', 'memory', '--scenarios', 'S1,,S1'],
      ['--stores', 'memory,redis', '--redis', 'redis://127.0.0.1:1/?password=topsecret', '--scenarios', 'S2'],
    ]) {
      const run = bench([...args, '--out', out])
      const { code } = await run.exited
      expect(code, `${args.join(' ')}: ${run.stderr()}`).toBe(2)
      expect(run.stderr()).toMatch(/^stockpyle: .*\n\nUsage: stockpyle bench/)
      expect(run.stderr()).not.toMatch(/connecting|^\s+at /m)
      expect(run.stderr()).not.toContain('topsecret')
      expect(readdirSync(out)).toEqual([])
    }
  }, 30_000)
})

/** How many keys of `redis` match `pattern`. */
async function countKeys(redis: Redis, pattern: string): Promise<number> {
  let n = 0
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = next
    n += keys.length
  } while (cursor !== '0')
  return n
}

/** Deletes the keys of `redis` that match `pattern`. */
async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) await redis.unlink(...keys)
  } while (cursor !== '0')
}

/** The benchmark's tables left in the harness's PostgreSQL. */
async function benchTables(): Promise<string[]> {
  const client = new pg.Client({ connectionString: inject('postgresUrl') })
  await client.connect()
  try {
    const { rows } = await client.query(`select tablename from pg_tables where tablename like 'stockpyle\\_bench\\_users%'`)
    return rows.map((r: { tablename: string }) => r.tablename)
  } finally {
    await client.end()
  }
}

/** The key prefix and table a run printed (`this run: …`). */
function runNames(stderr: string): { prefix: string | undefined; table: string | undefined } {
  return {
    prefix: /cache keys under (stockpyle-bench-[0-9a-f]{8}):/.exec(stderr)?.[1],
    table: /table (stockpyle_bench_users_[0-9a-f]{8})/.exec(stderr)?.[1],
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

describe('stockpyle bench --out', () => {
  it('refuses, before connecting, an --out that is a file or under one, or a directory it cannot write into', async () => {
    const dir = tempDir()
    const file = join(dir, 'a-file')
    writeFileSync(file, '')
    const profiled = tempDir()
    writeFileSync(join(profiled, 'profiles'), '')
    const cases: [string[], string | RegExp][] = [
      [['--scenarios', 'S1', ...TINY, '--out', file], `--out ${file}: ${file} is not a directory`],
      [
        ['--scenarios', 'S1', ...TINY, '--out', join(file, 'sub')],
        `--out ${join(file, 'sub')}: ${file} is not a directory, so ${join(file, 'sub')} cannot be created`,
      ],
      // --profile writes into <out>/profiles
      [
        ['--profile', 'S1 memory/stockpyle', '--profile-seconds', '1', '--out', profiled],
        `--out ${profiled}: ${join(profiled, 'profiles')} is not a directory`,
      ],
    ]
    if (process.getuid?.() !== 0) {
      // (root writes into any directory)
      const locked = join(dir, 'locked')
      mkdirSync(locked, { mode: 0o500 })
      cases.push([
        ['--scenarios', 'S1', ...TINY, '--out', locked],
        new RegExp(`^--out ${escapeRegExp(locked)}: cannot write into ${escapeRegExp(locked)}: EACCES`),
      ])
      cases.push([
        ['--scenarios', 'S1', ...TINY, '--out', join(locked, 'new')],
        new RegExp(`^--out ${escapeRegExp(join(locked, 'new'))}: cannot write into ${escapeRegExp(locked)}: EACCES`),
      ])
    }
    for (const [args, message] of cases) {
      const run = bench(['--stores', 'memory', ...args])
      const { code } = await run.exited
      expect(code, `${args.join(' ')}: ${run.stderr()}`).toBe(2)
      const [first, blank, usageLine] = run.stderr().split('\n')
      if (typeof message === 'string') expect(first).toBe(`stockpyle: ${message}`)
      else expect(first?.replace(/^stockpyle: /, '')).toMatch(message)
      expect([blank, usageLine]).toEqual(['', 'Usage: stockpyle bench [options]'])
      expect(run.stderr()).not.toMatch(/connecting|^\s+at /m)
    }
    expect(readdirSync(dir).filter((f) => f !== 'locked')).toEqual(['a-file'])
    expect(readdirSync(profiled)).toEqual(['profiles'])
  }, 60_000)

  it('refuses a dangling symbolic link in --out (e.g. to a volume not mounted) before connecting: the results could not be written there', () => {
    const dir = tempDir()
    const link = join(dir, 'out')
    const gone = join(dir, 'gone')
    symlinkSync(gone, link)
    for (const out of [link, join(link, 'run1')]) {
      expect(() => checkOutDir(out), out).toThrow(UsageError)
      expect(() => checkOutDir(out)).toThrow(`--out ${out}: ${link} is a symbolic link to ${gone}, which does not exist`)
    }
    // a link to a directory is followed as before
    mkdirSync(gone)
    checkOutDir(link)
    checkOutDir(join(link, 'run1'))
    expect(readdirSync(gone)).toEqual([])
  })

  it('cannot write at the end: prints the table and one line, and keeps the results in a temporary directory', async () => {
    const out = join(tempDir(), 'results')
    const args = [
      '--stores',
      'memory',
      '--scenarios',
      'S1',
      '--rounds',
      '3',
      '--round-ms',
      '300',
      '--warmup-ms',
      '1',
      '--warmup-calls',
      '1',
    ]
    const run = bench([...args, '--out', out])
    await run.waitFor('S1 memory-layer hit')
    // --out could be created when the run started; now a file is in the way
    writeFileSync(out, '')
    const { code } = await run.exited
    expect(code, run.stderr()).toBe(1)
    expect(run.stdout()).toMatch(/^\nrow +floor .*\n[- ]+\nS1 memory +\S/)
    expect(run.stderr()).not.toMatch(/^\s+at /m)
    const last = run.stderr().trimEnd().split('\n').at(-1) as string
    const match = new RegExp(
      `^stockpyle bench: cannot write the results to ${escapeRegExp(out)}: EEXIST: .*; wrote them to (\\S+) instead$`,
    ).exec(last)
    expect(match, run.stderr()).not.toBeNull()
    const kept = (match as RegExpExecArray)[1] as string
    dirs.push(kept)
    expect(readdirSync(kept).sort()).toEqual(['results.json', 'results.md', 'results.svg'])
    const results = JSON.parse(readFileSync(join(kept, 'results.json'), 'utf8')) as { rows: { row: string }[] }
    expect(results.rows.map((r) => r.row)).toContain('S1 memory')
  }, 60_000)
})

describe('npm run bench (bench/run.js): the same argument checks, before it starts a server', () => {
  const repoUsage = (argv: string[]): string => {
    try {
      parseRepoBenchArgs(argv, '/x/out')
    } catch (err) {
      expect(err).toBeInstanceOf(UsageError)
      return (err as Error).message
    }
    throw new Error(`parseRepoBenchArgs accepted ${JSON.stringify(argv)}`)
  }

  it('refuses what stockpyle bench refuses, and its own options the run would ignore', () => {
    for (const [args, message] of [
      [['--rounds', '0x10'], '--rounds needs a positive integer, got "0x10"'],
      [['--rounds', '--no-pin'], '--rounds needs a value'],
      [['--scenarios', 'S9'], '--scenarios: unknown scenario S9 (S1…S7)'],
      [
        ['--profile', 'S1 memory/stockpyle', '--check'],
        '--profile runs one case for --profile-seconds after a warm-up of its own and writes no table: --check would be ignored; drop it',
      ],
      [
        ['--scenarios', 'S1', '--s7-count', '3'],
        '--s7-count is given but --scenarios S1 leaves S7 out: add S7 to --scenarios or drop --s7-count',
      ],
      [['--profile', 'S9 x/y'], /^--profile: no row "S9 x" with --stores memory,redis,memcached,sqlite,postgres, which runs S1 memory, /],
      [['--profile-file', 'x.cpuprofile'], '--profile-file is given without --profile'],
      [['--profile', 'S1 memory/stockpyle', '--profile-file='], '--profile-file needs a value'],
      [
        ['--profile', 'S1 memory/stockpyle', '--profile-file', 'x.cpuprofile', '--out', 'y'],
        '--out is given but --profile-file says where the profile goes: drop --out',
      ],
      [
        ['--profile', 'S1 memory/stockpyle', '--update-results'],
        '--update-results is given but --profile writes no results: drop --update-results',
      ],
      [['--profile', 'S1 memory/stockpyle', '--no-peers'], '--no-peers is given but --profile runs no peer: drop --no-peers'],
      [
        ['--stores', 'memory'],
        'unknown option "--stores" (npm run bench runs every store on servers of its own; see the header of bench/run.js)',
      ],
      [
        ['--redis=redis://x'],
        'unknown option "--redis" (npm run bench runs every store on servers of its own; see the header of bench/run.js)',
      ],
      [['--quiet'], 'unknown option "--quiet" (see the header of bench/run.js)'],
      [['--update-results=1'], '--update-results takes no value, got "--update-results=1"'],
    ] as const) {
      if (typeof message === 'string') expect(repoUsage([...args]), args.join(' ')).toBe(message)
      else expect(repoUsage([...args]), args.join(' ')).toMatch(message)
    }
  })

  it('passes the shared options on with every store selected, and reads its own', () => {
    const parsed = parseRepoBenchArgs(['--scenarios', 's1,S3', '--rounds=3', '--no-pin', '--update-results', '--check'], '/x/out')
    expect(parsed).toMatchObject({ update: true, pin: false, peers: true, profileFile: undefined })
    expect(parsed.bench).toMatchObject({ only: new Set(['S1', 'S3']), rounds: 3, check: true, out: '/x/out' })
    expect([...parsed.bench.stores]).toEqual(['memory', 'redis', 'memcached', 'sqlite', 'postgres'])
    const profiled = parseRepoBenchArgs(['--profile', ' s3 REDIS/Stockpyle', '--profile-file', 'p.cpuprofile', '--no-pin'], '/x/out')
    expect(profiled.bench.profile).toEqual({ row: 'S3 redis', library: 'stockpyle' })
    expect(profiled).toMatchObject({ profileFile: 'p.cpuprofile', pin: false })
    expect(parseRepoBenchArgs(['--out', 'elsewhere', '--no-peers'], '/x/out')).toMatchObject({ bench: { out: 'elsewhere' }, peers: false })
  })
})

describe('stockpyle bench in a project without the client of a selected store', () => {
  const hide = fileURLToPath(new URL('./fixtures/hide-packages.mjs', import.meta.url))
  for (const [store, args, hidden, install] of [
    ['sqlite', ['--stores', 'memory,sqlite'], 'kysely', 'kysely better-sqlite3'],
    ['sqlite', ['--stores', 'memory,sqlite'], 'better-sqlite3', 'kysely better-sqlite3'],
    ['redis', ['--stores', 'memory,redis', '--redis', 'redis://127.0.0.1:1'], 'ioredis', 'ioredis'],
  ] as const) {
    it(`${store} without ${hidden}: exits with code 1 and one line naming what to install`, async () => {
      const run = bench([...args, ...TINY, '--out', tempDir()], { env: { NODE_OPTIONS: `--import ${hide}`, STOCKPYLE_HIDE: hidden } })
      const { code } = await run.exited
      expect(code, run.stderr()).toBe(1)
      expect(run.stderr()).toContain(`the ${store} store needs ${install}, which is not installed: npm install ${install}`)
      expect(run.stderr()).not.toMatch(/^\s+at /m) // no stack
    })
  }
})

describe('stockpyle bench with a SQLite file it cannot open', () => {
  it('exits with code 1 and one line naming the file, like a server it cannot reach', async () => {
    const path = join(tempDir(), 'no-such-dir', 'bench.db')
    const run = bench(['--stores', 'memory,sqlite', '--sqlite', path, '--scenarios', 'S4', ...TINY, '--out', tempDir()])
    const { code } = await run.exited
    expect(code, run.stderr()).toBe(1)
    const lines = run.stderr().split('\n')
    expect(lines, run.stderr()).toHaveLength(4)
    expect(lines[0]).toBe('connecting and loading data')
    expect(lines[1]).toMatch(/^ {2}this run: table stockpyle_bench_users_[0-9a-f]{8}$/)
    expect(lines[2]).toMatch(/directory does not exist/)
    expect(lines[2]?.startsWith(`stockpyle bench: cannot open SQLite at ${path}: `), lines[2]).toBe(true)
  }, 30_000)
})

describe('stockpyle bench --profile', () => {
  it('profiles a case named as the table prints it and writes its .cpuprofile', async () => {
    const out = tempDir()
    const run = bench(['--stores', 'memory', '--profile', 'S1 memory/stockpyle by email', '--profile-seconds', '1', '--out', out])
    const { code } = await run.exited
    expect(code, run.stderr()).toBe(0)
    expect(readdirSync(join(out, 'profiles'))).toEqual(['s1-memory-stockpyle-by-email.cpuprofile'])
  }, 60_000)
})

describe('stockpyle bench against a Redis it cannot reach', () => {
  it('exits with code 1 and one message, at once', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`
    const run = bench(['--stores', 'memory,redis', '--redis', url, '--scenarios', 'S2', ...TINY, '--out', tempDir()], {
      timeoutMs: 20_000,
    })
    const { code, signal, ms } = await run.exited
    expect(signal, `killed after ${ms} ms: the CLI kept retrying\n${run.stderr().slice(0, 1000)}`).toBeNull()
    expect(code).toBe(1)
    expect(ms).toBeLessThan(10_000)
    expect(run.stderr()).not.toMatch(/Unhandled error event/)
    expect(run.stderr()).toMatch(
      new RegExp(
        `^connecting and loading data\\n  this run: cache keys under stockpyle-bench-[0-9a-f]{8}:\\nstockpyle bench: cannot connect to Redis at ${url}: .*ECONNREFUSED.*\\n$`,
      ),
    )
  }, 30_000)
})

describe.runIf(stores.has('redis'))('stockpyle bench with a password in the Redis URL', () => {
  let admin: Redis
  const user = `bench-cli-${process.pid}`
  const password = `s3cret-${process.pid}`
  beforeAll(async () => {
    admin = new Redis(inject('redis').url)
    await admin.call('ACL', 'SETUSER', user, 'on', `>${password}`, '~*', '&*', '+@all')
  })
  afterAll(async () => {
    await admin.call('ACL', 'DELUSER', user)
    await admin.quit()
  })

  it('prints and writes the URL without the user and password, also in the saved command line', async () => {
    const out = tempDir()
    const url = inject('redis').url.replace('redis://', `redis://${user}:${password}@`)
    const run = bench(['--stores', 'memory,redis', `--redis=${url}`, '--scenarios', 'S2', ...TINY, '--out', out])
    const { code } = await run.exited
    expect(code, run.stderr()).toBe(0)
    expect(run.stderr()).toContain(`redis: redis://…@127.0.0.1:${inject('redis').port} (Redis `)
    for (const text of [run.stdout(), run.stderr(), ...readdirSync(out).map((f) => readFileSync(join(out, f), 'utf8'))]) {
      expect(text).not.toContain(password)
      expect(text).not.toContain(user)
    }
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { command: string }
    expect(results.command).toBe(
      `stockpyle bench --stores memory,redis --redis=redis://…@127.0.0.1:${inject('redis').port} --scenarios S2 ${TINY.join(' ')} --out ${out}`,
    )
  }, 60_000)
})

describe('stockpyle bench interrupted by a signal', () => {
  it('SIGTERM while loading SQLite: removes its temp dir and exits with code 143', async () => {
    const tmp = tempDir()
    const run = bench(['--stores', 'memory,sqlite', '--scenarios', 'S4', '--out', tempDir()], { env: { TMPDIR: tmp } })
    await run.waitFor('connecting and loading data')
    await new Promise((r) => setTimeout(r, 300))
    run.child.kill('SIGTERM')
    const { code, signal } = await run.exited
    expect({ code, signal }, `${run.stderr()}\n---\n${run.stdout()}`).toEqual({ code: 143, signal: null })
    expect(readdirSync(tmp)).toEqual([])
  }, 60_000)

  describe.runIf(stores.has('redis'))('with Redis', () => {
    let redis: Redis
    beforeAll(() => {
      redis = new Redis(inject('redis').url)
    })
    afterAll(() => redis.quit())
    const benchKeys = (): Promise<number> => countKeys(redis, 'stockpyle-bench*')

    it('SIGINT mid-run: deletes its Redis keys, drops its table, removes its temp dir and exits with code 130', async () => {
      const tmp = tempDir()
      const withPostgres = stores.has('postgres')
      const run = bench(
        [
          '--stores',
          `memory,redis,sqlite${withPostgres ? ',postgres' : ''}`,
          '--redis',
          inject('redis').url,
          ...(withPostgres ? ['--postgres', inject('postgresUrl')] : []),
          '--scenarios',
          'S2,S4',
          '--rounds',
          '50',
          '--round-ms',
          '200',
          '--out',
          tempDir(),
        ],
        { env: { TMPDIR: tmp } },
      )
      await run.waitFor('S2 remote hit, Redis')
      const until = Date.now() + 20_000
      while ((await benchKeys()) === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20))
      expect(await benchKeys(), 'the run wrote no key').toBeGreaterThan(0)
      expect(readdirSync(tmp)).toHaveLength(1)
      run.child.kill('SIGINT')
      const { code, signal } = await run.exited
      expect({ code, signal }, run.stderr()).toEqual({ code: 130, signal: null })
      expect(await benchKeys()).toBe(0)
      expect(readdirSync(tmp)).toEqual([])
      expect(run.stderr()).not.toMatch(/stockpyle bench: /)
      if (withPostgres) expect(await benchTables()).toEqual([])
    }, 90_000)

    it('a second SIGINT exits at once, with code 130', async () => {
      const run = bench([
        '--stores',
        'memory,redis',
        '--redis',
        inject('redis').url,
        '--scenarios',
        'S2',
        '--rounds',
        '50',
        '--out',
        tempDir(),
      ])
      await run.waitFor('S2 remote hit, Redis')
      run.child.kill('SIGINT')
      run.child.kill('SIGINT')
      const { code, signal } = await run.exited
      expect({ code, signal }).toEqual({ code: 130, signal: null })
    }, 60_000)
  })
})

describe.runIf(stores.has('redis'))('stockpyle bench: runs sharing one Redis, and Redis users with fewer rights', () => {
  let admin: Redis
  beforeAll(() => {
    admin = new Redis(inject('redis').url)
  })
  afterAll(() => admin.quit())
  const redisArgs = (url = inject('redis').url): string[] => ['--stores', 'memory,redis', '--redis', url]

  it('two runs at once keep to their own keys: the one that ends first deletes none of the other', async () => {
    const a = bench([...redisArgs(), '--scenarios', 'S2', '--rounds', '3', '--round-ms', '300', '--warmup-ms', '1', '--out', tempDir()])
    await a.waitFor('S2 remote hit, Redis')
    const until = Date.now() + 20_000
    while ((await countKeys(admin, 'stockpyle-bench*')) === 0 && Date.now() < until) await sleep(20)
    const b = bench([...redisArgs(), '--scenarios', 'S1', ...TINY, '--out', tempDir()])
    expect((await b.exited).code, b.stderr()).toBe(0)
    const { code } = await a.exited
    expect(code, a.stderr()).toBe(0)
    expect(a.stderr()).not.toMatch(/FAILED|miss/)
    const [prefixA, prefixB] = [runNames(a.stderr()).prefix, runNames(b.stderr()).prefix]
    expect(prefixA).toBeDefined()
    expect(prefixB).toBeDefined()
    expect(prefixA).not.toBe(prefixB)
    expect(await countKeys(admin, 'stockpyle-bench*')).toBe(0)
  }, 90_000)

  it('a row whose floor or stockpyle case failed: exit code 1 with --check or without, met null in results.json, the miss named', async () => {
    for (const check of [[], ['--check']]) {
      const out = tempDir()
      // deletes the floor's S2 keys as they are written: every read of the floor misses
      let stop = false
      const deleter = (async () => {
        while (!stop) await deleteKeys(admin, 'stockpyle-bench*:floor:s2:*')
      })()
      const run = bench([...redisArgs(), '--scenarios', 'S2', ...TINY, ...check, '--out', out])
      const { code } = await run.exited
      stop = true
      await deleter
      expect(code, run.stderr()).toBe(1)
      expect(run.stderr()).toMatch(/S2 redis \/ floor: FAILED Error: floor: unexpected miss/)
      expect(run.stderr()).not.toMatch(/reading 'buffer'|^\s+at /m)
      expect(run.stderr()).toMatch(/\nstockpyle bench: the run failed: S2 redis \/ floor: Error: floor: unexpected miss\n$/)
      const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { rows: { row: string; target: object }[] }
      const row = results.rows.find((r) => r.row === 'S2 redis')
      expect(row?.target).toHaveProperty('met', null)
      expect(await countKeys(admin, 'stockpyle-bench*')).toBe(0)
    }
  }, 90_000)

  describe('a Redis user that may not run CLIENT LIST and CLIENT KILL, or SCAN', () => {
    const password = `pw-${process.pid}`
    const users = { noKill: `bench-nokill-${process.pid}`, noScan: `bench-noscan-${process.pid}` }
    beforeAll(async () => {
      await admin.call('ACL', 'SETUSER', users.noKill, 'on', `>${password}`, '~*', '&*', '+@all', '-client|list', '-client|kill')
      await admin.call('ACL', 'SETUSER', users.noScan, 'on', `>${password}`, '~*', '&*', '+@all', '-scan')
    })
    afterAll(async () => {
      await admin.call('ACL', 'DELUSER', users.noKill, users.noScan)
      await deleteKeys(admin, 'stockpyle-bench*')
    })
    const as = (user: string): string => inject('redis').url.replace('redis://', `redis://${user}:${password}@`)

    it('without CLIENT LIST / KILL: still deletes every key of the run, and says nothing', async () => {
      const run = bench([...redisArgs(as(users.noKill)), '--scenarios', 'S2', ...TINY, '--out', tempDir()])
      const { code } = await run.exited
      expect(code, run.stderr()).toBe(0)
      expect(await countKeys(admin, 'stockpyle-bench*')).toBe(0)
      expect(run.stderr()).not.toMatch(/warning|NOPERM/)
    }, 60_000)

    it('when the keys cannot be deleted: one warning line naming them, not silence', async () => {
      const run = bench([...redisArgs(as(users.noScan)), '--scenarios', 'S2', ...TINY, '--out', tempDir()])
      const { code } = await run.exited
      expect(code, run.stderr()).toBe(0)
      const { prefix } = runNames(run.stderr())
      expect(await countKeys(admin, `${prefix}:*`)).toBeGreaterThan(0)
      const warnings = run
        .stderr()
        .split('\n')
        .filter((line) => /warning/.test(line))
      expect(warnings, run.stderr()).toHaveLength(1)
      expect(warnings[0]).toMatch(
        new RegExp(
          `^stockpyle bench: warning: cannot delete this run's keys \\(${prefix}:\\*\\) from Redis at redis://…@127\\.0\\.0\\.1:${inject('redis').port}: NOPERM`,
        ),
      )
      expect(warnings[0]).not.toContain(password)
    }, 60_000)
  })
})

describe.runIf(stores.has('postgres'))('stockpyle bench: runs sharing one PostgreSQL database', () => {
  it('two runs at once each load and drop a table of their own', async () => {
    const args = ['--stores', 'memory,postgres', '--postgres', inject('postgresUrl')]
    const a = bench([...args, '--scenarios', 'S4,S5', '--rounds', '3', '--round-ms', '200', '--warmup-ms', '1', '--out', tempDir()])
    await a.waitFor('S4 cold')
    const b = bench([...args, '--scenarios', 'S5', ...TINY, '--out', tempDir()])
    expect((await b.exited).code, b.stderr()).toBe(0)
    const { code } = await a.exited
    expect(code, a.stderr()).toBe(0)
    expect(a.stderr()).not.toMatch(/FAILED/)
    const [tableA, tableB] = [runNames(a.stderr()).table, runNames(b.stderr()).table]
    expect(tableA).toBeDefined()
    expect(tableA).not.toBe(tableB)
    expect(await benchTables()).toEqual([])
  }, 90_000)

  it('prints and saves the URL without a password given as a query parameter', async () => {
    const out = tempDir()
    const url = `${inject('postgresUrl')}?password=topsecret`
    const run = bench(['--stores', 'memory,postgres', '--postgres', url, '--scenarios', 'S5', ...TINY, '--out', out])
    const { code } = await run.exited
    expect(code, run.stderr()).toBe(0)
    expect(run.stderr()).toContain('?password=…')
    for (const text of [run.stdout(), run.stderr(), ...readdirSync(out).map((f) => readFileSync(join(out, f), 'utf8'))]) {
      expect(text).not.toContain('topsecret')
    }
  }, 60_000)
})

describe.runIf(stores.has('memcached'))('stockpyle bench with a memcached server it cannot reach', () => {
  it('checks every server before the run: one line naming the one that does not answer, exit code 1', async () => {
    const down = `127.0.0.1:${await freePort()}`
    const servers = [...inject('memcachedServers').slice(0, 1), down].join(',')
    const run = bench(['--stores', 'memory,memcached', '--memcached', servers, '--scenarios', 'S2', ...TINY, '--out', tempDir()])
    const { code } = await run.exited
    expect(code, run.stderr()).toBe(1)
    expect(run.stderr()).not.toMatch(/^\s+at |S2 remote hit/m)
    expect(run.stderr().trimEnd().split('\n').at(-1)).toMatch(new RegExp(`^stockpyle bench: cannot connect to memcached at ${down}: `))
  }, 60_000)
})

describe('stockpyle bench against a server that accepts connections and never answers', () => {
  let server: Server
  let port: number
  const sockets = new Set<Socket>()
  beforeAll(async () => {
    server = createServer((socket) => {
      sockets.add(socket)
      socket.on('error', () => {})
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    port = (server.address() as AddressInfo).port
  })
  afterAll(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  const targets = {
    Redis: () => ['--stores', 'memory,redis', '--redis', `redis://127.0.0.1:${port}`, '--scenarios', 'S2'],
    postgres: () => ['--stores', 'memory,postgres', '--postgres', `postgres://postgres@127.0.0.1:${port}/postgres`, '--scenarios', 'S5'],
    memcached: () => ['--stores', 'memory,memcached', '--memcached', `127.0.0.1:${port}`, '--scenarios', 'S2'],
  }

  for (const [name, args] of Object.entries(targets)) {
    it(`${name}: SIGINT while connecting ends the run at once, with code 130`, async () => {
      const run = bench([...args(), ...TINY, '--out', tempDir()], { timeoutMs: 30_000 })
      await run.waitFor('connecting and loading data')
      await sleep(300)
      const sent = performance.now()
      run.child.kill('SIGINT')
      const { code, signal } = await run.exited
      expect({ code, signal }, run.stderr()).toEqual({ code: 130, signal: null })
      expect(performance.now() - sent).toBeLessThan(2500)
    }, 40_000)

    it(`${name}: no answer within 5 s is one line and exit code 1`, async () => {
      const run = bench([...args(), ...TINY, '--out', tempDir()], { timeoutMs: 20_000 })
      const { code, signal, ms } = await run.exited
      expect({ code, signal }, run.stderr()).toEqual({ code: 1, signal: null })
      expect(ms).toBeLessThan(12_000)
      expect(run.stderr()).not.toMatch(/^\s+at /m)
      expect(run.stderr().trimEnd().split('\n').at(-1)).toMatch(
        new RegExp(`^stockpyle bench: cannot connect to ${name} at \\S*127\\.0\\.0\\.1:${port}\\S*: no answer within 5 s$`),
      )
    }, 30_000)
  }
})
