/**
 * Connections of one benchmark run: the raw clients the floors use (ioredis, memcache-client,
 * Kysely) and factories for stockpyle's stores. Drivers are imported only for the stores selected,
 * so `stockpyle bench` needs nothing that the chosen stores do not.
 */
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type HashRing from 'hashring'
import type { Redis } from 'ioredis'
import type { Kysely } from 'kysely'
import type { MemcacheClient } from 'memcache-client'
import { Packr } from 'msgpackr'
import { redactUrl } from '../../core/redact-url.js'
import type { MemcacheStore } from '../../stores/memcache/memcache-store.js'
import type { RedisStore } from '../../stores/redis/redis-store.js'
import type { SqlStore } from '../../stores/sql/sql-store.js'
import { deleteRunKeys } from './delete-run-keys.js'
import { BenchUser, makeUser, USER_COLUMNS, USER_TABLE } from './fixtures.js'
import { checkpoint } from './runner.js'

/** The stores a run may use. */
export const STORE_NAMES = ['memory', 'redis', 'memcached', 'sqlite', 'postgres'] as const
/** One of {@link STORE_NAMES}. */
export type StoreName = (typeof STORE_NAMES)[number]

/**
 * A server of the run could not be reached or set up. The CLI prints its message alone (one line,
 * no stack) and exits with code 1; every URL in it has its user and password replaced by `…`.
 */
export class BenchSetupError extends Error {
  override readonly name = 'BenchSetupError'
}

/**
 * Imports what a store of the run needs (an optional peer, or the store's subpath that loads one);
 * a package that is not installed fails the run with one line naming what to install.
 */
async function needed<T>(load: () => Promise<T>, packages: string, store: string): Promise<T> {
  try {
    return await load()
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ERR_MODULE_NOT_FOUND') throw err
    throw new BenchSetupError(`the ${store} store needs ${packages}, which is not installed: npm install ${packages}`)
  }
}

/** Where the servers are. */
export interface Targets {
  readonly stores: ReadonlySet<StoreName>
  readonly redisUrl?: string | undefined
  readonly memcached?: readonly string[] | undefined
  readonly postgresUrl?: string | undefined
  /** SQLite database file; default: a file in a fresh temp directory, removed at the end. */
  readonly sqlitePath?: string | undefined
  /** Prefix of every cache key written (and deleted at the end in Redis). Default `'stockpyle-bench'`. */
  readonly prefix?: string | undefined
}

/** Lifetime of every cache entry the benchmark writes, in seconds (what is left in memcached expires). */
export const BENCH_TTL_SECONDS = 600

/** Rows of {@link USER_TABLE}: ids 1..ROWS. */
export const ROWS = 20_000

/** One SQL database of the run. */
export interface SqlEnv {
  readonly dialect: 'sqlite' | 'postgres'
  readonly url: string
  /** The floor's own Kysely instance (a separate connection). */
  readonly db: Kysely<any>
  /** A new SqlStore on the database. */
  newStore(): Promise<SqlStore>
  /** Server version, for the machine description. */
  readonly version: string
}

/** Everything the scenarios need. */
export interface BenchEnv {
  readonly targets: Targets
  readonly prefix: string
  /** The floors' codec: msgpackr with the same options as stockpyle's. */
  readonly packr: Packr
  readonly redis?: {
    readonly url: string
    /** The floor's client. */
    readonly client: Redis
    /** A new RedisStore (under `prefix` instead of the run's when given). */
    newStore(prefix?: string): RedisStore
    readonly version: string
  }
  readonly memcached?: {
    readonly servers: readonly string[]
    /** The floor's clients, one per server, and the ketama ring that picks one. */
    readonly clients: ReadonlyMap<string, MemcacheClient>
    readonly ring: HashRing | undefined
    clientFor(key: string): MemcacheClient
    newStore(): MemcacheStore
    readonly version: string
  }
  readonly sqlite?: SqlEnv
  readonly postgres?: SqlEnv
  /**
   * Closes every connection, deletes the run's Redis keys, drops its table and removes temp files.
   * Runs once: later calls return the same promise. The stores' `newStore()` throw once it began.
   */
  close(): Promise<void>
}

/**
 * Opens the connections for the selected stores and loads the SQL tables. When `signal` aborts
 * (SIGINT), the opening stops at its next step, or the opened environment is closed at once (see
 * {@link BenchEnv.close}), so that the work still running fails fast and leaves nothing behind.
 * @throws BenchSetupError when a server cannot be reached or the SQLite file cannot be opened
 */
export async function openEnv(targets: Targets, log: (line: string) => void, signal?: AbortSignal): Promise<BenchEnv> {
  const prefix = targets.prefix ?? 'stockpyle-bench'
  const closers: (() => Promise<void> | void)[] = []
  const packr = new Packr({ moreTypes: true, useRecords: true } as ConstructorParameters<typeof Packr>[0])
  let closing: Promise<void> | undefined
  const notClosed = (): void => {
    if (closing !== undefined) throw new Error('the benchmark environment is closed (interrupted)')
  }
  const onAbort = (): void => void env.close()
  const env: {
    -readonly [K in keyof BenchEnv]: BenchEnv[K]
  } = {
    targets,
    prefix,
    packr,
    close: () => {
      signal?.removeEventListener('abort', onAbort)
      closing ??= (async () => {
        for (const close of closers.reverse()) {
          try {
            await close()
          } catch {}
        }
      })()
      return closing
    },
  }
  try {
    if (targets.stores.has('redis')) {
      const url = targets.redisUrl ?? 'redis://127.0.0.1:6379'
      // every connection of the run that writes keys carries it: the clean-up closes them on the server
      const connectionName = `${prefix}-${randomUUID()}`
      const { Redis } = await needed(() => import('ioredis'), 'ioredis', 'redis')
      const { RedisStore } = await needed(() => import('../../stores/redis/index.js'), 'ioredis', 'redis')
      // no reconnecting: a server that cannot be reached fails the run at once, not after endless retries
      let client: Redis
      try {
        client = new Redis(url, {
          lazyConnect: true,
          maxRetriesPerRequest: 0,
          enableOfflineQueue: true,
          retryStrategy: () => null,
          connectionName,
        })
      } catch (err) {
        // a URL it cannot read (a port out of range): thrown here, before any connection
        throw new BenchSetupError(`cannot connect to Redis at ${redactUrl(url)}: ${(err as Error).message}`)
      }
      let lastError: Error | undefined
      client.on('error', (err: Error) => {
        lastError = err
      })
      let connected = false
      closers.push(async () => {
        // what the scenarios still send fails from now on; the keys are deleted on a connection of
        // its own, after the server closed the run's (see deleteRunKeys)
        client.disconnect()
        if (connected) await deleteRunKeys(client.duplicate({ connectionName: `${connectionName}-cleanup` }), prefix, connectionName)
      })
      try {
        await client.connect()
        connected = true
      } catch (err) {
        throw new BenchSetupError(`cannot connect to Redis at ${redactUrl(url)}: ${(lastError ?? (err as Error)).message}`)
      }
      const info = await client.info('server')
      const opened: RedisStore[] = []
      closers.push(async () => {
        await Promise.allSettled(opened.map((s) => s.close()))
      })
      env.redis = {
        url,
        client,
        version: `Redis ${/redis_version:(\S+)/.exec(info)?.[1] ?? '?'}`,
        newStore: (own) => {
          notClosed()
          const store = new RedisStore({
            url,
            prefix: own ?? prefix,
            lifetime: BENCH_TTL_SECONDS,
            timeout: 5000,
            redisOptions: { connectionName },
          })
          opened.push(store)
          return store
        },
      }
      log(`  redis: ${redactUrl(url)} (${env.redis.version})`)
      signal?.throwIfAborted()
    }
    if (targets.stores.has('memcached')) {
      const servers = targets.memcached ?? ['127.0.0.1:11211']
      const packages = 'memcache-client hashring'
      const { MemcacheClient: Client } = await needed(() => import('memcache-client'), packages, 'memcached')
      const { default: Ring } = await needed(() => import('hashring'), packages, 'memcached')
      const { MemcacheStore } = await needed(() => import('../../stores/memcache/index.js'), packages, 'memcached')
      const clients = new Map<string, MemcacheClient>()
      for (const server of servers)
        clients.set(server, new Client({ server: { server, maxConnections: 1 }, noDelay: true, cmdTimeout: 5000 }))
      closers.push(() => {
        for (const c of clients.values()) c.shutdown()
      })
      const ring =
        servers.length > 1 ? new Ring(Object.fromEntries(servers.map((s) => [s, 1])), 'md5', { 'max cache size': 10_000 }) : undefined
      const first = clients.get(servers[0] as string) as MemcacheClient
      const version = await first.version().then(
        (v) => v.join(' '),
        (err: Error) => {
          throw new BenchSetupError(`cannot connect to memcached at ${servers[0]}: ${err.message}`)
        },
      )
      const opened: MemcacheStore[] = []
      closers.push(async () => {
        await Promise.allSettled(opened.map((s) => s.close()))
      })
      env.memcached = {
        servers,
        clients,
        ring,
        version: `memcached ${String(version).replace(/^VERSION\s*/, '')}`,
        clientFor: (key) => clients.get(ring === undefined ? (servers[0] as string) : (ring.get(key) as string)) as MemcacheClient,
        newStore: () => {
          notClosed()
          const store = new MemcacheStore({ servers, prefix, lifetime: BENCH_TTL_SECONDS, timeout: 5000 })
          opened.push(store)
          return store
        },
      }
      log(`  memcached: ${servers.join(', ')} (${env.memcached.version})`)
      signal?.throwIfAborted()
    }
    for (const dialect of ['sqlite', 'postgres'] as const) {
      if (!targets.stores.has(dialect)) continue
      let url: string
      if (dialect === 'sqlite') {
        if (targets.sqlitePath !== undefined) url = `sqlite:${targets.sqlitePath}`
        else {
          const dir = mkdtempSync(join(tmpdir(), 'stockpyle-bench-'))
          closers.push(() => rmSync(dir, { recursive: true, force: true }))
          url = `sqlite:${join(dir, 'bench.db')}`
        }
      } else url = targets.postgresUrl ?? 'postgres://postgres@127.0.0.1:5432/postgres'
      const sqlEnv = await openSql(dialect, url, closers, notClosed, signal)
      env[dialect] = sqlEnv
      log(`  ${dialect}: ${dialect === 'sqlite' ? url : redactUrl(url)} (${sqlEnv.version}); ${ROWS} rows loaded`)
    }
    signal?.throwIfAborted()
  } catch (err) {
    await env.close()
    throw err
  }
  signal?.addEventListener('abort', onAbort, { once: true })
  return env
}

async function openSql(
  dialect: 'sqlite' | 'postgres',
  url: string,
  closers: (() => Promise<void> | void)[],
  notClosed: () => void,
  signal: AbortSignal | undefined,
): Promise<SqlEnv> {
  const driver = dialect === 'sqlite' ? 'better-sqlite3' : 'pg'
  const { Kysely, PostgresDialect, SqliteDialect, sql } = await needed(() => import('kysely'), `kysely ${driver}`, dialect)
  const { SqlStore, createTable } = await needed(() => import('../../stores/sql/index.js'), `kysely ${driver}`, dialect)
  let db: Kysely<any>
  if (dialect === 'sqlite') {
    const { default: Database } = await needed(() => import('better-sqlite3'), 'kysely better-sqlite3', dialect)
    const path = url.slice('sqlite:'.length)
    let database: InstanceType<typeof Database>
    try {
      database = new Database(path)
    } catch (err) {
      // (a directory that does not exist, a file that is not a database, no permission)
      throw new BenchSetupError(`cannot open SQLite at ${path}: ${(err as Error).message}`)
    }
    db = new Kysely<any>({ dialect: new SqliteDialect({ database }) })
  } else {
    const { default: pg } = await needed(() => import('pg'), 'kysely pg', dialect)
    db = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 10 }) }) })
  }
  closers.push(() => db.destroy())
  const opened: SqlStore[] = []
  const newStore = async (): Promise<SqlStore> => {
    notClosed()
    const store = new SqlStore({ url }, { tables: { [BenchUser.stockpyleName]: USER_TABLE } })
    opened.push(store)
    return store
  }
  closers.push(async () => {
    await Promise.allSettled(opened.map((s) => s.close()))
  })
  try {
    await db.schema.dropTable(USER_TABLE).ifExists().execute()
  } catch (err) {
    throw new BenchSetupError(`cannot connect to ${dialect} at ${redactUrl(url)}: ${(err as Error).message}`)
  }
  closers.push(async () => {
    await db.schema.dropTable(USER_TABLE).ifExists().execute()
  })
  const loader = await newStore()
  await createTable(loader, BenchUser, { columns: USER_COLUMNS, table: USER_TABLE })
  for (let from = 1; from <= ROWS; from += 1000) {
    await checkpoint(signal)
    const objs: BenchUser[] = []
    for (let id = from; id < from + 1000 && id <= ROWS; id++) objs.push(makeUser(id))
    await loader.batchPut(objs)
  }
  if (dialect === 'postgres') await sql`analyze ${sql.table(USER_TABLE)}`.execute(db)
  const version =
    dialect === 'sqlite'
      ? `SQLite ${((await sql<{ v: string }>`select sqlite_version() as v`.execute(db)).rows[0] as { v: string }).v}`
      : `PostgreSQL ${((await sql<{ v: string }>`show server_version`.execute(db)).rows[0] as { server_version?: string })?.server_version ?? '?'}`
  return { dialect, url, db, newStore, version }
}
