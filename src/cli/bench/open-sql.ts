import { mkdtempSync, rmSync } from 'node:fs'
import { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Kysely } from 'kysely'
import { redactUrl } from '../../core/redact-url.js'
import type { SqlStore } from '../../stores/sql/sql-store.js'
import { type OpenContext, ROWS, type SqlEnv } from './bench-env.js'
import { BenchSetupError, needed } from './bench-setup-error.js'
import { answered, CONNECT_TIMEOUT_MS, unlessAborted } from './connect-timeout.js'
import { BenchUser, makeUser, USER_COLUMNS } from './fixtures.js'
import { checkpoint } from './runner.js'

/**
 * Opens the floor's Kysely instance on a SQL database, creates the run's table ({@link OpenContext.table})
 * and loads it with {@link ROWS} users; registers dropping it (and removing the temporary SQLite
 * directory) for the clean-up. `url` is `sqlite:<path>` or a postgres:// URL; without `sqlitePath`
 * SQLite uses a file in a new temporary directory.
 * @throws BenchSetupError when the database cannot be opened or reached, or does not answer within 5 s
 */
export async function openSql(dialect: 'sqlite' | 'postgres', target: string | undefined, run: OpenContext): Promise<SqlEnv> {
  const { table } = run
  const driver = dialect === 'sqlite' ? 'better-sqlite3' : 'pg'
  const { Kysely, PostgresDialect, SqliteDialect, sql } = await needed(() => import('kysely'), `kysely ${driver}`, dialect)
  const { SqlStore, createTable } = await needed(() => import('../../stores/sql/index.js'), `kysely ${driver}`, dialect)
  let db: Kysely<any>
  let url: string
  if (dialect === 'sqlite') {
    const { default: Database } = await needed(() => import('better-sqlite3'), 'kysely better-sqlite3', dialect)
    let path = target
    if (path === undefined) {
      const dir = mkdtempSync(join(tmpdir(), 'stockpyle-bench-'))
      run.onCleanUp(`remove the temporary directory ${dir}`, () => rmSync(dir, { recursive: true, force: true }))
      path = join(dir, 'bench.db')
    }
    url = `sqlite:${path}`
    let database: InstanceType<typeof Database>
    try {
      database = new Database(path)
    } catch (err) {
      // (a directory that does not exist, a file that is not a database, no permission)
      throw new BenchSetupError(`cannot open SQLite at ${path}: ${(err as Error).message}`)
    }
    db = new Kysely<any>({ dialect: new SqliteDialect({ database }) })
  } else {
    url = target ?? 'postgres://postgres@127.0.0.1:5432/postgres'
    const { default: pg } = await needed(() => import('pg'), 'kysely pg', dialect)
    // the sockets still connecting: the clean-up destroys them, so that SIGINT or a server that never
    // answers does not keep the pool waiting for them
    const connecting = new Set<Socket>()
    const pool = new pg.Pool({
      connectionString: url,
      max: 10,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS + 1000,
      stream: () => {
        const socket = new Socket()
        connecting.add(socket)
        socket.once('close', () => connecting.delete(socket))
        return socket
      },
    })
    pool.on('connect', (client) => connecting.delete((client as unknown as { connection: { stream: Socket } }).connection.stream))
    pool.on('error', () => {}) // (an idle connection the server closed: the next query fails and says why)
    db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) })
    run.onClose(() => db.destroy())
    run.onClose(() => {
      for (const socket of connecting) socket.destroy()
    })
  }
  if (dialect === 'sqlite') run.onClose(() => db.destroy())
  const shown = dialect === 'sqlite' ? url : redactUrl(url)
  const opened: SqlStore[] = []
  const newStore = async (): Promise<SqlStore> => {
    run.notClosed()
    const store = new SqlStore({ url }, { tables: { [BenchUser.stockpyleName]: table } })
    opened.push(store)
    return store
  }
  run.onClose(async () => {
    await Promise.allSettled(opened.map((s) => s.close()))
  })
  try {
    // the first answer (the run's table has a name of its own: nothing is dropped or replaced here)
    await unlessAborted(answered(sql`select 1`.execute(db), `${dialect} at ${shown}`), run.signal)
  } catch (err) {
    if (err instanceof BenchSetupError || run.signal?.aborted) throw err
    throw new BenchSetupError(`cannot connect to ${dialect} at ${shown}: ${(err as Error).message}`)
  }
  run.onCleanUp(`drop this run's table ${table} from ${dialect} at ${shown}`, async () => {
    await db.schema.dropTable(table).ifExists().execute()
  })
  const loader = await newStore()
  await createTable(loader, BenchUser, { columns: USER_COLUMNS, table })
  for (let from = 1; from <= ROWS; from += 1000) {
    await checkpoint(run.signal)
    const objs: BenchUser[] = []
    for (let id = from; id < from + 1000 && id <= ROWS; id++) objs.push(makeUser(id))
    await loader.batchPut(objs)
  }
  if (dialect === 'postgres') await sql`analyze ${sql.table(table)}`.execute(db)
  const version =
    dialect === 'sqlite'
      ? `SQLite ${((await sql<{ v: string }>`select sqlite_version() as v`.execute(db)).rows[0] as { v: string }).v}`
      : `PostgreSQL ${((await sql<{ v: string }>`show server_version`.execute(db)).rows[0] as { server_version?: string })?.server_version ?? '?'}`
  run.log(`  ${dialect}: ${shown} (${version}); ${ROWS} rows loaded`)
  return { dialect, url, table, db, newStore, version }
}
