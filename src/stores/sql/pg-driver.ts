/**
 * SqlStore's PostgreSQL driver code, shared with `stockpyle/invalidation` (its buses and watchers
 * reuse it rather than loading `pg` themselves): loading `pg` on first use, quoting, and the
 * options of a dedicated connection.
 */
import type { ClientConfig, Pool } from 'pg'
import { InvalidOptionError, StoreUnavailableError, show } from '../../core/errors.js'
import { checkPlainOptions } from '../../core/options.js'
import { redactUrl } from '../../core/redact-url.js'

export type { Client as PgClient, ClientConfig as PgClientConfig, Pool as PgPool, PoolClient as PgPoolClient } from 'pg'

/** The parts of `pg` SqlStore and stockpyle/invalidation use, loaded on first use (pg is an optional peer dependency). */
export interface PgModule {
  readonly Client: typeof import('pg').Client
  readonly Pool: typeof import('pg').Pool
  /** The type parsers pg applies to the columns of query results (`types.getTypeParser(oid, 'text')`). */
  readonly types: typeof import('pg').types
}

/**
 * Loads `pg`.
 * @throws StoreUnavailableError naming the package when it is not installed.
 */
export async function loadPg(owner: string): Promise<PgModule> {
  try {
    const mod = (await import('pg')) as unknown as { default?: PgModule } & PgModule
    return mod.default ?? mod
  } catch (err) {
    throw new StoreUnavailableError(`${owner} needs the package \`pg\`: npm install pg`, { cause: err })
  }
}

/** `"name"`: an identifier quoted for PostgreSQL. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

/** `'text'`: a string literal for PostgreSQL (standard_conforming_strings). */
export function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`
}

/**
 * Checks a LISTEN/NOTIFY channel name: a non-empty string of at most 63 bytes without NUL (longer
 * names would be truncated by LISTEN but rejected by pg_notify).
 * @throws InvalidOptionError naming the option.
 */
export function checkChannel(owner: string, channel: unknown): string {
  if (typeof channel !== 'string' || channel === '' || channel.includes('\0') || Buffer.byteLength(channel) > 63) {
    throw new InvalidOptionError(`${owner}: option \`channel\` must be a non-empty name of at most 63 bytes, got ${show(channel)}`)
  }
  return channel
}

/** pg's own test for text it percent-encodes before parsing a connection string (pg-connection-string). */
const NEEDS_ENCODING = / |%[^a-f0-9]|%[a-f0-9][^a-f0-9]/i

/** A TCP port as pg can connect to it: 1 to 65535. */
function validPort(port: string): boolean {
  return /^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535
}

/**
 * Checks that pg can read a `postgres://` URL as it does (pg-connection-string: text percent-encoded
 * where pg would, an empty host allowed), with a port (in the authority or `?port=`) of 1 to 65535: pg
 * reads it only when connecting, so a URL it cannot read would fail every call later, as a failure of
 * the database. The message shows the URL without its user and password, and carries no cause (the
 * URL parser's error holds the whole URL).
 * @throws InvalidOptionError naming option `url`.
 */
export function checkPostgresUrl(owner: string, url: string): void {
  const text = NEEDS_ENCODING.test(url) ? encodeURI(url).replace(/%25(\d\d)/g, '%$1') : url
  const parsed = URL.parse(text, 'postgres://base') ?? URL.parse(text.replace('@/', '@___DUMMY___/'), 'postgres://base')
  const refuse = (why: string) => new InvalidOptionError(`${owner}: option \`url\` ${show(redactUrl(url))} ${why}`)
  if (parsed === null) {
    throw refuse('is not a URL pg can read: check its host, its port (1 to 65535) and that its user name and password are percent-encoded')
  }
  if (parsed.port !== '' && !validPort(parsed.port)) throw refuse(`has port ${parsed.port}: a port is 1 to 65535`)
  const port = parsed.searchParams.get('port')
  if (port !== null && !validPort(port)) throw refuse(`sets port ${show(port)}: a port is 1 to 65535`)
}

/** Where a dedicated LISTEN connection connects: one of `url`, `connection` or (the options of) `pool`. */
export interface ListenConnectionOptions {
  /** `postgres://user:password@host:port/database`. */
  url?: string | undefined
  /** pg client options (host, port, user, password, database, ssl, …). */
  connection?: ClientConfig | undefined
  /** A pg Pool: its connection options are used for the dedicated LISTEN connection. */
  pool?: Pool | undefined
}

/**
 * The pg client options of the LISTEN connection.
 * @throws InvalidOptionError when none or several of `url`/`connection` are given, or a value is invalid
 *   (a `url` pg cannot read: see {@link checkPostgresUrl}).
 */
export function listenConfig(owner: string, options: ListenConnectionOptions): ClientConfig {
  const { url, connection, pool } = options
  if (url !== undefined && connection !== undefined) {
    throw new InvalidOptionError(`${owner}: options \`url\` and \`connection\` are exclusive: give one`)
  }
  if (url !== undefined) {
    if (typeof url !== 'string' || !/^postgres(ql)?:\/\//.test(url)) {
      throw new InvalidOptionError(`${owner}: option \`url\` must be a postgres:// URL, got ${show(redactUrl(url?.toString()))}`)
    }
    checkPostgresUrl(owner, url)
    return { connectionString: url }
  }
  if (connection !== undefined) {
    if (typeof connection !== 'object' || connection === null) {
      throw new InvalidOptionError(`${owner}: option \`connection\` must be an object of pg client options, got ${show(connection)}`)
    }
    // copied: what a class instance or Object.create(defaults) inherits would be lost without a word
    checkPlainOptions(`${owner}: option \`connection\``, connection)
    return { ...connection }
  }
  if (pool !== undefined) {
    checkPool(owner, pool)
    const {
      max: _max,
      min: _min,
      idleTimeoutMillis: _idle,
      Client: _client,
      onConnect: _onConnect,
      ...config
    } = pool.options as unknown as Record<string, unknown>
    return config as ClientConfig
  }
  throw new InvalidOptionError(`${owner}: give option \`url\`, \`connection\` or \`pool\`: where to LISTEN`)
}

/** @throws InvalidOptionError unless `pool` looks like a pg Pool. */
export function checkPool(owner: string, pool: unknown): asserts pool is Pool {
  const p = pool as Partial<Pool>
  if (
    typeof p !== 'object' ||
    p === null ||
    typeof p.query !== 'function' ||
    typeof p.connect !== 'function' ||
    typeof p.options !== 'object'
  ) {
    throw new InvalidOptionError(`${owner}: option \`pool\` must be a pg Pool, got ${show(pool)}`)
  }
}
