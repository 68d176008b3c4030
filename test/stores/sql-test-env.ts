import Database from 'better-sqlite3'
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely'
import pg from 'pg'
import { afterEach, beforeAll, inject } from 'vitest'
import type { Model } from '../../src/index.js'
import { SqlStore } from '../../src/stores/sql/index.js'
import { selectedStores } from '../harness/servers.js'

/** One test's database: a store on it, and what the store sent. */
export interface SqlEnv {
  readonly store: SqlStore
  readonly db: Kysely<any>
  /** SQL text of every statement sent through `db`. */
  readonly queries: string[]
  /** The (qualified) name of a table of this test. */
  table(name: string): string
}

/**
 * Registers the hooks of a test file that opens one database per test: SQLite in memory, or a
 * PostgreSQL schema of its own in database `database` (dropped and created once per file). A model's
 * table is its type tag without `prefix`, lowercased, plus `s` (`ExactTag` → `tags`).
 * @returns the dialects selected by STOCKPYLE_STORES and `open(dialect)`.
 */
export function sqlTestEnv(
  database: string,
  prefix: string,
): { dialects: ('sqlite' | 'postgres')[]; open: (dialect: 'sqlite' | 'postgres') => Promise<SqlEnv> } {
  const stores = selectedStores()
  let pgUrl = ''
  let schemas = 0
  const cleanups: (() => Promise<void>)[] = []
  beforeAll(async () => {
    if (!stores.has('postgres')) return
    const base = inject('postgresUrl')
    const admin = new pg.Client({ connectionString: base })
    await admin.connect()
    await admin.query(`drop database if exists ${database}`)
    await admin.query(`create database ${database}`)
    await admin.end()
    pgUrl = base.replace(/\/[^/]*$/, `/${database}`)
  })
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup()
  })
  const open = async (dialect: 'sqlite' | 'postgres'): Promise<SqlEnv> => {
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
      db = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: pgUrl, max: 2 }) }), log })
      await sql`create schema ${sql.id(schema)}`.execute(db)
    }
    const table = (name: string) => (schema === undefined ? name : `${schema}.${name}`)
    const store = new SqlStore({ db }, { tables: (_m: Model, tag: string) => table(`${tag.replace(prefix, '').toLowerCase()}s`) })
    cleanups.push(async () => {
      await store.close()
      await db.destroy()
    })
    return { store, db, queries, table }
  }
  return { dialects: (['sqlite', 'postgres'] as const).filter((d) => stores.has(d)), open }
}
