import Database from 'better-sqlite3'
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, inject } from 'vitest'
import type { Model } from '../../src/index.js'
import { SqlStore, type SqlStoreOptions } from '../../src/stores/sql/index.js'
import { selectedStores } from '../harness/servers.js'

/** The dialects a SQL test runs on. */
export type SqlDialect = 'sqlite' | 'postgres'

/** One test's database: a store on it, and what was sent through it. */
export interface SqlEnv {
  readonly dialect: SqlDialect
  /** PostgreSQL: the URL of the test's database (its tables are in a schema of their own, see `table`); SQLite: `''`. */
  readonly url: string
  /** A Kysely instance on the test's database whose statements are recorded in `queries`. */
  readonly db: Kysely<any>
  /** SQL text of every statement sent through `db`. */
  readonly queries: string[]
  /** A store on `db` with the env's table names, closed after the test. */
  readonly store: SqlStore
  /** Another store on `db` with the env's table names and `options` (closing it leaves `db` open). */
  newStore(options?: SqlStoreOptions): SqlStore
  /**
   * PostgreSQL only: a store that opens its own pool from the test database's URL (`postgres://…`,
   * with `query` appended, e.g. `?options=…`), with the env's table names; closed after the test.
   */
  urlStore(query?: string, options?: SqlStoreOptions): SqlStore
  /** The (qualified) name of a table of this test. */
  table(name: string): string
}

/**
 * Registers the hooks of a test file that opens one database per test: SQLite in memory, or a
 * PostgreSQL schema of its own (dropped after the test) in database `database` (dropped and created
 * once per file). A model's table is its type tag without `prefix`, lowercased, plus `s`
 * (`ExactTag` → `tags`).
 * @returns the dialects selected by STOCKPYLE_STORES and `open(dialect)`.
 */
export function sqlTestEnv(database: string, prefix: string): { dialects: SqlDialect[]; open: (dialect: SqlDialect) => Promise<SqlEnv> } {
  const stores = selectedStores()
  let pgUrl = ''
  let admin: Kysely<any> | undefined
  let schemas = 0
  const cleanups: (() => Promise<void>)[] = []
  beforeAll(async () => {
    if (!stores.has('postgres')) return
    const base = inject('postgresUrl')
    const client = new pg.Client({ connectionString: base })
    await client.connect()
    await client.query(`drop database if exists ${database}`)
    await client.query(`create database ${database}`)
    await client.end()
    pgUrl = base.replace(/\/[^/]*$/, `/${database}`)
    admin = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: pgUrl, max: 2 }) }) })
  })
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup()
  })
  afterAll(async () => {
    await admin?.destroy()
  })
  const open = async (dialect: SqlDialect): Promise<SqlEnv> => {
    const queries: string[] = []
    const log = (event: { level: string; query: { sql: string } }) => {
      if (event.level === 'query' || event.level === 'error') queries.push(event.query.sql)
    }
    let db: Kysely<any>
    let schema: string | undefined
    if (dialect === 'sqlite') {
      const file = new Database(':memory:')
      file.defaultSafeIntegers(true)
      db = new Kysely<any>({ dialect: new SqliteDialect({ database: file }), log })
    } else {
      schema = `x${process.pid}_${++schemas}`
      await sql`create schema ${sql.id(schema)}`.execute(admin as Kysely<any>)
      db = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: pgUrl, max: 3 }) }), log })
    }
    const table = (name: string) => (schema === undefined ? name : `${schema}.${name}`)
    const tables = (_m: Model, tag: string) => table(`${tag.replace(prefix, '').toLowerCase()}s`)
    const newStore = (options: SqlStoreOptions = {}) => new SqlStore({ db }, { tables, ...options })
    const store = newStore()
    const urlStores: SqlStore[] = []
    const urlStore = (query = '', options: SqlStoreOptions = {}) => {
      if (dialect !== 'postgres') throw new Error('urlStore: PostgreSQL only')
      const s = new SqlStore({ url: `${pgUrl}${query}` }, { tables, ...options })
      urlStores.push(s)
      return s
    }
    cleanups.push(async () => {
      for (const s of urlStores) await s.close()
      await store.close()
      await db.destroy()
      if (schema !== undefined) await sql`drop schema ${sql.id(schema)} cascade`.execute(admin as Kysely<any>)
    })
    return { dialect, url: dialect === 'postgres' ? pgUrl : '', store, newStore, urlStore, db, queries, table }
  }
  return { dialects: (['sqlite', 'postgres'] as const).filter((d) => stores.has(d)), open }
}
