import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, beforeEach, describe, inject, it } from 'vitest'
import type { Model } from '../../src/index.js'
import { createTable, SqlStore } from '../../src/stores/sql/index.js'
import { conformanceTables, runStoreConformance } from '../../src/testing/index.js'
import { selectedStores } from '../harness/servers.js'

const common = { describe, test: it, beforeEach, afterEach }

/** Creates (or recreates) a database of its own on the harness's server and returns its URL. */
async function freshDatabase(name: string): Promise<string> {
  const base = inject('postgresUrl')
  const admin = new pg.Client({ connectionString: base })
  await admin.connect()
  try {
    await admin.query(`drop database if exists ${name}`)
    await admin.query(`create database ${name}`)
  } finally {
    await admin.end()
  }
  return base.replace(/\/[^/]*$/, `/${name}`)
}

describe.runIf(selectedStores().has('postgres'))('postgres', () => {
  let url = ''
  let shared: Kysely<any> | undefined

  beforeAll(async () => {
    url = await freshDatabase('stockpyle_sql_conformance')
    const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 4 }) }) })
    for (const t of conformanceTables) await createTable(db, t.model as Model, { table: t.table, columns: t.columns })
    shared = db
  })
  afterAll(async () => {
    await shared?.destroy()
  })

  /** Empties the conformance tables, so each test starts from nothing. */
  async function truncate(): Promise<void> {
    await sql`truncate ${sql.join(conformanceTables.map((t) => sql.table(t.table)))}`.execute(shared as Kysely<any>)
  }

  runStoreConformance({
    ...common,
    name: 'SqlStore (PostgreSQL URL)',
    createStore: async () => {
      await truncate()
      return new SqlStore({ url }, { maxConnections: 2 })
    },
  })

  runStoreConformance({
    ...common,
    name: 'SqlStore (PostgreSQL, an application-owned Kysely instance)',
    createStore: async () => {
      await truncate()
      return new SqlStore({ db: shared as Kysely<any> })
    },
  })
})
