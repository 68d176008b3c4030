import { Kysely, PostgresAdapter, PostgresDialect, SqliteAdapter, SqliteDialect } from 'kysely'
import { InvalidOptionError, StoreUnavailableError, show } from '../../core/errors.js'
import { checkOptionNames } from '../../core/options.js'
import { redactUrl } from '../../core/redact-url.js'
import type { SqlDialect } from './column-kind.js'
import { checkPostgresUrl, loadPg } from './pg-driver.js'
import { storeTypeParsers } from './pg-values.js'
import { OPTIONS_ARGUMENT, SQL_CONNECTION_SETTINGS } from './sql-option-names.js'
import { timedPool } from './timed-pool.js'

/**
 * Where SqlStore keeps its data: a URL (`sqlite:path.db`, `sqlite::memory:`, `postgres://…`), for
 * which it loads the driver (`better-sqlite3` or `pg`) on first use and which it closes on `close()`;
 * or a `Kysely` instance the application owns (SqlStore never destroys it).
 */
export type SqlConnection = { readonly url: string } | { readonly db: Kysely<any> }

/** A validated connection: the dialect, known synchronously, and how to open the database. */
export interface ParsedConnection {
  readonly dialect: SqlDialect
  /** True when SqlStore created the Kysely instance and must destroy it on close. */
  readonly owned: boolean
  /** Opens (once) and returns the Kysely instance. @throws StoreUnavailableError when the driver is missing or fails to open. */
  open(): Promise<Kysely<any>>
}

function adapterDialect(db: Kysely<any>): SqlDialect | undefined {
  let adapter: unknown
  try {
    adapter = db.getExecutor().adapter
  } catch {
    return undefined
  }
  if (adapter instanceof SqliteAdapter) return 'sqlite'
  if (adapter instanceof PostgresAdapter) return 'postgres'
  // Another copy of kysely: recognise the adapter classes by name along the prototype chain.
  for (let proto = Object.getPrototypeOf(adapter); proto !== null && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    const name = (proto as { constructor?: { name?: string } }).constructor?.name
    if (name === 'SqliteAdapter') return 'sqlite'
    if (name === 'PostgresAdapter') return 'postgres'
  }
  return undefined
}

async function importDriver<T>(name: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load()
  } catch (err) {
    throw new StoreUnavailableError(`SqlStore needs the package \`${name}\`: npm install ${name}`, { cause: err })
  }
}

/** How SqlStore opens a connection from a URL. */
export interface ConnectionSettings {
  /**
   * Option `maxConnections` as given, `undefined` when not: the pool size for a `postgres://` URL
   * ({@link DEFAULT_MAX_CONNECTIONS} when `undefined`); refused with a `sqlite:` URL or a `db`.
   */
  readonly maxConnections: number | undefined
  /**
   * Option `timeout` as given (ms), `undefined` when not: PostgreSQL's pool then uses
   * {@link DEFAULT_POSTGRES_TIMEOUT}, SQLite better-sqlite3's busy timeout (5,000 ms).
   */
  readonly timeout: number | undefined
}

/** Default of option `maxConnections`: the size of the pool SqlStore opens for a `postgres://` URL. */
export const DEFAULT_MAX_CONNECTIONS = 10

/**
 * Default of option `timeout` for PostgreSQL, in ms: a frozen server must not hang callers forever,
 * and a statement of a large batch (up to 65,535 parameters) must not be cut.
 */
export const DEFAULT_POSTGRES_TIMEOUT = 30_000

/**
 * How long after `timeout` pg gives up on a statement the server has not answered, in ms: the time the
 * server's own cancel (statement_timeout) may take to arrive over a slow network.
 */
export const CANCEL_GRACE = 1000

async function openSqlite(path: string, timeout: number | undefined): Promise<Kysely<any>> {
  const { default: Database } = await importDriver('better-sqlite3', () => import('better-sqlite3'))
  let database: InstanceType<typeof Database>
  try {
    // (better-sqlite3 takes whole ms only)
    database = new Database(path, timeout === undefined ? {} : { timeout: Math.ceil(timeout) })
  } catch (err) {
    throw new StoreUnavailableError(`SqlStore could not open the SQLite database ${show(path)}: ${(err as Error).message}`, { cause: err })
  }
  // Integers come back as bigint, so int8 columns keep every digit; integer columns are turned back into numbers.
  database.defaultSafeIntegers(true)
  return new Kysely<any>({ dialect: new SqliteDialect({ database }) })
}

async function openPostgres(url: string, settings: ConnectionSettings): Promise<Kysely<any>> {
  const pg = await loadPg('SqlStore')
  const timeout = settings.timeout ?? DEFAULT_POSTGRES_TIMEOUT
  // The server cancels a statement at `timeout` (statement_timeout): a backend waiting for a lock
  // never notices a closed socket, so one the client gave up on would hold its server connection,
  // past maxConnections, until the lock came free. The client's own bound on a reply comes
  // CANCEL_GRACE later (timedPool: the store's shared deadlines, not pg's `query_timeout`, which arms a
  // timer per statement), so the server's cancel (which keeps the connection usable) normally comes
  // first; it remains for a server that does not answer at all. pg-pool bounds the wait for a
  // connection (`connectionTimeoutMillis`): it alone can take a caller that gave up out of its queue.
  const pool = new pg.Pool({
    connectionString: url,
    max: settings.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    connectionTimeoutMillis: timeout,
    statement_timeout: Math.max(1, Math.ceil(timeout)),
    types: storeTypeParsers(pg.types),
  })
  // An idle client that loses its server emits 'error' on the pool; the next query reports it. A client
  // checked out (between two statements of a transaction) emits it on itself, where nothing else
  // listens: without a listener that would end the process. The statement in flight rejects anyway.
  pool.on('error', () => {})
  pool.on('connect', (client) => {
    client.on('error', () => {})
  })
  return new Kysely<any>({ dialect: new PostgresDialect({ pool: timedPool(pool, timeout, CANCEL_GRACE) }) })
}

/** URL parameters pg reads as timeouts, which would replace the ones option `timeout` sets. */
const URL_TIMEOUTS = ['statement_timeout', 'query_timeout', 'connectionTimeoutMillis', 'connect_timeout']

/**
 * Refuses timeouts in a `postgres://` URL: pg merges the URL's parameters over the Pool's config, so
 * they would replace what option `timeout` sets while errors named the option (and `-c
 * statement_timeout` in `options` would be replaced by it silently).
 * @throws InvalidOptionError naming the parameter and option `timeout`.
 */
function checkUrlTimeouts(store: string, url: string): void {
  const at = url.indexOf('?')
  if (at < 0) return
  let params: URLSearchParams
  try {
    params = new URLSearchParams(url.slice(at + 1).split('#')[0])
  } catch {
    return
  }
  const use = "set the store's option `timeout` instead (it bounds every statement and every wait for a connection)"
  for (const name of URL_TIMEOUTS) {
    if (params.has(name))
      throw new InvalidOptionError(`${store}: option \`url\` sets ${name}, which would replace option \`timeout\`: ${use}`)
  }
  if (/(^|\s)(-c\s*|--)statement[_-]timeout\s*=/i.test(params.get('options') ?? '')) {
    throw new InvalidOptionError(
      `${store}: option \`url\` sets statement_timeout in \`options\`, which option \`timeout\` replaces: ${use}`,
    )
  }
}

const MAX_CONNECTIONS_ONLY_POSTGRES =
  'option `maxConnections` is the pool size of a `postgres://` url: a SQLite database opened from a `sqlite:` url has one connection, and the pool of your own `db` is configured on it'

/**
 * Validates a connection argument synchronously.
 * @throws InvalidOptionError naming `url`, `db` or `dialect`: `timeout` or `maxConnections` given with
 *   a `db`, `dialect` given with a `url` (its scheme decides the dialect), `maxConnections` with a
 *   `sqlite:` URL, a `sqlite:` URL with a query (`?…`), a `postgres://` URL pg cannot read (see
 *   {@link checkPostgresUrl}), or a timeout in a `postgres://` URL.
 */
export function parseConnection(store: string, connection: unknown, dialect: unknown, settings: ConnectionSettings): ParsedConnection {
  if (typeof connection !== 'object' || connection === null) {
    throw new InvalidOptionError(`${store}: the connection must be { url } or { db }, got ${show(connection)}`)
  }
  if (dialect !== undefined && dialect !== 'sqlite' && dialect !== 'postgres') {
    throw new InvalidOptionError(`${store}: option \`dialect\` must be 'sqlite' or 'postgres', got ${show(dialect)}`)
  }
  checkOptionNames(store, connection, SQL_CONNECTION_SETTINGS, OPTIONS_ARGUMENT)
  const { url, db } = connection as { url?: unknown; db?: unknown }
  if (db !== undefined) {
    if (url !== undefined) throw new InvalidOptionError(`${store}: pass either option \`url\` or option \`db\`, not both`)
    if (settings.timeout !== undefined) {
      throw new InvalidOptionError(
        `${store}: option \`timeout\` applies to a connection SqlStore opens from a \`url\`; for your own \`db\`, set pg's connectionTimeoutMillis and query_timeout on its Pool (better-sqlite3: its \`timeout\`)`,
      )
    }
    if (settings.maxConnections !== undefined) throw new InvalidOptionError(`${store}: ${MAX_CONNECTIONS_ONLY_POSTGRES}`)
    const kysely = db as Kysely<any>
    if (typeof db !== 'object' || db === null || typeof kysely.selectFrom !== 'function' || typeof kysely.getExecutor !== 'function') {
      throw new InvalidOptionError(`${store}: option \`db\` must be a Kysely instance, got ${show(db)}`)
    }
    const detected = (dialect as SqlDialect | undefined) ?? adapterDialect(kysely)
    if (detected === undefined) {
      throw new InvalidOptionError(
        `${store}: option \`db\` uses a dialect SqlStore cannot recognise: SqlStore speaks SQLite and PostgreSQL; pass option \`dialect\` if yours is compatible`,
      )
    }
    return { dialect: detected, owned: false, open: async () => kysely }
  }
  if (typeof url !== 'string') throw new InvalidOptionError(`${store}: option \`url\` must be a string, got ${show(url)}`)
  if (dialect !== undefined) {
    throw new InvalidOptionError(
      `${store}: option \`dialect\` applies only to a \`db\`: the scheme of option \`url\` decides the dialect (sqlite: → SQLite, postgres:// → PostgreSQL); leave \`dialect\` out`,
    )
  }
  if (url.startsWith('sqlite:')) {
    if (settings.maxConnections !== undefined) throw new InvalidOptionError(`${store}: ${MAX_CONNECTIONS_ONLY_POSTGRES}`)
    if (url.includes('?')) {
      // better-sqlite3 takes a file name, not a URI: the query would become part of the file's name
      throw new InvalidOptionError(
        `${store}: option \`url\` ${show(url)} has a query (\`?…\`): SqlStore does not support query parameters in a SQLite url (better-sqlite3 would open a file whose name ends in them); use sqlite:path/to/file.db, sqlite:///absolute/path.db or sqlite::memory:, and for other settings (read-only, …) pass your own Kysely as { db }`,
      )
    }
    let path = url.slice('sqlite:'.length)
    if (path.startsWith('//')) path = path.slice(2)
    if (path === '')
      throw new InvalidOptionError(`${store}: option \`url\` ${show(url)} names no file: use sqlite:path.db or sqlite::memory:`)
    return { dialect: 'sqlite', owned: true, open: () => openSqlite(path, settings.timeout) }
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    checkPostgresUrl(store, url)
    checkUrlTimeouts(store, url)
    return { dialect: 'postgres', owned: true, open: () => openPostgres(url, settings) }
  }
  throw new InvalidOptionError(`${store}: option \`url\` must start with sqlite: or postgres://, got ${show(redactUrl(url))}`)
}
