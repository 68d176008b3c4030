/**
 * The arguments of `stockpyle bench`: parsed and checked before anything connects, so that a command
 * that would fail in a driver, measure nothing or not what it says is a usage error (exit code 2).
 */
import { InvalidOptionError } from '../core/errors.js'
import { checkRedisUrl } from '../stores/redis/redis-url.js'
import { profileCases, SCENARIO_STORES, STORE_NAMES, type StoreName } from './bench/suite.js'

/** The case `--profile ROW/CASE` names, as the table spells it (e.g. `{ row: 'S3 redis', library: 'stockpyle' }`). */
export interface ProfileTarget {
  readonly row: string
  readonly library: string
}

/** Parsed options of `stockpyle bench`. Numbers are positive integers (ms where the flag says MS). */
export interface BenchArgs {
  stores: Set<StoreName>
  redisUrl?: string
  /** Servers as `host:port`, each once. */
  memcached?: string[]
  postgresUrl?: string
  sqlitePath?: string
  /** Scenarios to run; undefined: every one the stores can run (with `--profile`: its scenario alone). */
  only?: Set<string>
  /** The timing flags: given only when the run measures a scenario besides S7 (and no `--profile`). */
  rounds?: number
  roundMs?: number
  warmupMs?: number
  warmupCalls?: number
  /** Given only when the run has S7 (and no `--profile`). */
  s7Count?: number
  /** A case the selected stores run (checked against {@link profileCases}). */
  profile?: ProfileTarget
  /** Seconds; given only with `profile`. */
  profileSeconds?: number
  /** As given (default `bench/out`); checked for writing by `checkOutDir` in the command, not here. */
  out: string
  quiet: boolean
  /** Never with `profile`. */
  check: boolean
  help: boolean
}

/** A command-line mistake: reported with the usage text and exit code 2. */
export class UsageError extends Error {}

/** Digits alone: `Number()` would also take `0x10`, `1e3`, `' 5'` and `''` (as 0). */
function positive(flag: string, value: string): number {
  const n = Number(value)
  if (!/^[1-9]\d*$/.test(value) || !Number.isSafeInteger(n))
    throw new UsageError(`${flag} needs a positive integer, got ${JSON.stringify(value)}`)
  return n
}

/**
 * The items of a comma-separated list, trimmed, as given (`fold` is how two items are the same one).
 * @throws UsageError for a list without items, an empty item (`S1,,S2`, `S1,`) or an item given twice
 */
function list(flag: string, value: string, what: string, fold: (item: string) => string = (item) => item): string[] {
  const items = value.split(',').map((s) => s.trim())
  if (items.every((s) => s === '')) throw new UsageError(`${flag} needs at least one ${what}, got ${JSON.stringify(value)}`)
  if (items.includes('')) throw new UsageError(`${flag} has an empty item: ${JSON.stringify(value)}`)
  const seen = new Set<string>()
  for (const item of items.map(fold)) {
    if (seen.has(item)) throw new UsageError(`${flag} lists ${item} twice`)
    seen.add(item)
  }
  return items
}

/** What memcache-client can connect to (it splits at `:`, so no IPv6 literal) and MemcacheStore accepts. */
const MEMCACHED_SERVER = /^[A-Za-z0-9._-]+:(\d{1,5})$/

function memcachedServers(value: string): string[] {
  const servers = list('--memcached', value, 'server', (server) => JSON.stringify(server))
  for (const server of servers) {
    const port = Number(MEMCACHED_SERVER.exec(server)?.[1])
    if (!(port >= 1 && port <= 65535))
      throw new UsageError(`--memcached: server ${JSON.stringify(server)} is not host:port (a host name or IPv4 address, a port 1-65535)`)
  }
  return servers
}

/**
 * `value` when the run's RedisStore takes it as its `url` (see {@link checkRedisUrl}): checked here so
 * that a URL it refuses (query parameters, a path that is not a database number) is a usage error
 * before anything connects, not a failure in the middle of the run.
 * @throws UsageError with checkRedisUrl's message (which shows no password)
 */
function redisUrl(value: string): string {
  try {
    checkRedisUrl('--redis', value)
  } catch (err) {
    if (err instanceof InvalidOptionError) throw new UsageError(err.message)
    throw err
  }
  return value
}

/** The connection flags, each with the store it is for. */
const CONNECTION_FLAGS = [
  ['--redis', 'redis', 'redisUrl'],
  ['--memcached', 'memcached', 'memcached'],
  ['--postgres', 'postgres', 'postgresUrl'],
  ['--sqlite', 'sqlite', 'sqlitePath'],
] as const

const fold = (name: string): string => name.trim().replace(/\s+/g, ' ').toLowerCase()

/**
 * The case `value` (`ROW/CASE`) names among those the selected stores run, spelt as the table spells
 * it (the names are matched ignoring case and extra spaces).
 * @throws UsageError naming the rows or cases there are
 */
function profileTarget(value: string, args: BenchArgs): ProfileTarget {
  const slash = value.lastIndexOf('/')
  if (slash <= 0) throw new UsageError(`--profile wants ROW/CASE, e.g. 'S3 redis/stockpyle', got ${JSON.stringify(value)}`)
  const rowAsked = value.slice(0, slash).trim()
  const libraryAsked = value.slice(slash + 1).trim()
  const rows = profileCases(args.stores)
  const stores = [...args.stores].join(',')
  const row = [...rows.keys()].find((r) => fold(r) === fold(rowAsked))
  if (row === undefined) {
    const s7 = /^s7\b/i.test(rowAsked) ? '; S7, measured in child processes, cannot be profiled' : ''
    throw new UsageError(
      `--profile: no row ${JSON.stringify(rowAsked)} with --stores ${stores}, which runs ${[...rows.keys()].join(', ')}${s7}`,
    )
  }
  const cases = rows.get(row) as readonly string[]
  const library = cases.find((c) => fold(c) === fold(libraryAsked))
  if (library === undefined) {
    const needsRedis = row.startsWith('S4 ') && !args.stores.has('redis') ? ' (floor and stockpyle need redis in --stores)' : ''
    throw new UsageError(
      `--profile: row ${JSON.stringify(row)} has no case ${JSON.stringify(libraryAsked)}; its cases are ${cases.join(', ')}${needsRedis}`,
    )
  }
  const scenario = row.split(' ')[0] as string
  if (args.only !== undefined && !args.only.has(scenario))
    throw new UsageError(
      `--profile: row ${JSON.stringify(row)} is in scenario ${scenario}, which --scenarios ${[...args.only].join(',')} leaves out`,
    )
  return { row, library }
}

/** Parses the arguments after `bench`. @throws UsageError for an unknown or malformed option. */
export function parseBenchArgs(argv: readonly string[]): BenchArgs {
  const args: BenchArgs = { stores: new Set(), out: 'bench/out', quiet: false, check: false, help: false }
  let stores: string[] | undefined
  let profile: string | undefined
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
    // a path or URL: an empty one would be the current directory, or fail in a driver
    const text = (): string => {
      const v = value()
      if (v.trim() === '') throw new UsageError(`${flag} needs a value`)
      return v
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
        stores = list(flag, value(), 'store', (s) => s.toLowerCase()).map((s) => s.toLowerCase())
        break
      case '--redis':
        args.redisUrl = redisUrl(text())
        break
      case '--memcached':
        args.memcached = memcachedServers(value())
        break
      case '--postgres':
        args.postgresUrl = text()
        break
      case '--sqlite':
        args.sqlitePath = text()
        if (args.sqlitePath === ':memory:')
          throw new UsageError(
            '--sqlite needs a file: the floor and stockpyle open it separately, and :memory: would give each a database of its own',
          )
        break
      case '--scenarios':
        args.only = new Set(list(flag, value(), 'scenario', (s) => s.toUpperCase()).map((s) => s.toUpperCase()))
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
        args.out = text()
        break
      case '--profile':
        profile = value()
        break
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
  if (profile !== undefined) {
    args.profile = profileTarget(profile, args)
    args.only ??= new Set([args.profile.row.split(' ')[0] as string])
    refuseIgnored('--profile runs one case for --profile-seconds after a warm-up of its own and writes no table', [
      ['--check', args.check],
      ...measuring(args),
      ['--s7-count', args.s7Count !== undefined],
    ])
  } else {
    if (args.profileSeconds !== undefined) throw new UsageError('--profile-seconds is given without --profile')
    refuseUnusedMeasuring(args)
  }
  return args
}

/** The flags of the timed rounds, each with whether it is given. */
const measuring = (args: BenchArgs): [string, boolean][] => [
  ['--rounds', args.rounds !== undefined],
  ['--round-ms', args.roundMs !== undefined],
  ['--warmup-ms', args.warmupMs !== undefined],
  ['--warmup-calls', args.warmupCalls !== undefined],
]

/** @throws UsageError naming the given flags of `flags`, which the run would ignore because of `why` */
function refuseIgnored(why: string, flags: readonly [string, boolean][]): void {
  const given = flags.filter(([, on]) => on).map(([flag]) => flag)
  if (given.length === 0) return
  const names = given.length === 1 ? given[0] : `${given.slice(0, -1).join(', ')} and ${given.at(-1)}`
  throw new UsageError(`${why}: ${names} would be ignored; drop ${given.length === 1 ? 'it' : 'them'}`)
}

/**
 * Without `--profile`: `--s7-count` needs a run with S7 (the scenario selected, and `memory`, which it
 * runs on), and the timing flags a run with a scenario besides S7 (which measures memory, not rounds).
 * @throws UsageError naming the flag that would be ignored
 */
function refuseUnusedMeasuring(args: BenchArgs): void {
  if (args.s7Count !== undefined) {
    if (args.only !== undefined && !args.only.has('S7'))
      throw new UsageError(
        `--s7-count is given but --scenarios ${[...args.only].join(',')} leaves S7 out: add S7 to --scenarios or drop --s7-count`,
      )
    if (!args.stores.has('memory'))
      throw new UsageError(
        `--s7-count is given but S7 needs memory in --stores (--stores is ${[...args.stores].join(',')}): add memory or drop --s7-count`,
      )
  }
  if (args.only !== undefined && args.only.size === 1 && args.only.has('S7'))
    refuseIgnored('--scenarios S7 measures memory, not timed rounds', measuring(args))
}
