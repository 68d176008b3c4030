import Database from 'better-sqlite3'
import { Kysely, SqliteDialect, sql } from 'kysely'
import pg from 'pg'
import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import { ChainedStore, type Model, ProcessMemoryStore, SerializationError } from '../../src/index.js'
import { SqlStore } from '../../src/stores/sql/index.js'
import { selectedStores } from '../harness/servers.js'

// Values SqlStore's numeric columns cannot give back exactly are refused at put, before
// anything is written; what they can hold comes back as it was sent.

class Reading {
  static readonly stockpyleName = 'ExactReading'
  static readonly stockpyleKeys = ['id'] as const
  constructor(
    public id: number,
    public value: unknown,
  ) {}
}

const stores = selectedStores()
const dialects = (['sqlite', 'postgres'] as const).filter((d) => stores.has(d))
let pgUrl = ''
let schemas = 0

beforeAll(async () => {
  if (!stores.has('postgres')) return
  const base = inject('postgresUrl')
  const admin = new pg.Client({ connectionString: base })
  await admin.connect()
  await admin.query('drop database if exists stockpyle_sql_exactness_tests')
  await admin.query('create database stockpyle_sql_exactness_tests')
  await admin.end()
  pgUrl = base.replace(/\/[^/]*$/, '/stockpyle_sql_exactness_tests')
})

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup()
})

interface Env {
  readonly store: SqlStore
  readonly db: Kysely<any>
  /** SQL text of every statement the store sent. */
  readonly queries: string[]
  /** The (qualified) name of a table of this test. */
  table(name: string): string
}

/** A store on a fresh SQLite database, or on a PostgreSQL schema of its own; every model's table is `<type tag>s` lowercased. */
async function open(dialect: 'sqlite' | 'postgres'): Promise<Env> {
  const queries: string[] = []
  const log = (event: { level: string; query: { sql: string } }) => {
    if (event.level === 'query' || event.level === 'error') queries.push(event.query.sql)
  }
  let db: Kysely<any>
  let schema: string | undefined
  if (dialect === 'sqlite') {
    const database = new Database(':memory:')
    database.defaultSafeIntegers(true)
    db = new Kysely<any>({ dialect: new SqliteDialect({ database }), log })
  } else {
    const { PostgresDialect } = await import('kysely')
    schema = `x${process.pid}_${++schemas}`
    db = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: pgUrl, max: 2 }) }), log })
    await sql`create schema ${sql.id(schema)}`.execute(db)
  }
  const table = (name: string) => (schema === undefined ? name : `${schema}.${name}`)
  const store = new SqlStore({ db }, { tables: (_m: Model, tag: string) => table(`${tag.replace('Exact', '').toLowerCase()}s`) })
  cleanups.push(async () => {
    await store.close()
    await db.destroy()
  })
  return { store, db, queries, table }
}

const show = (v: unknown) => (Object.is(v, -0) ? '-0' : typeof v === 'bigint' ? `${v}n` : v)

describe.each(dialects)('SqlStore on %s: -0 in numeric columns', (dialect) => {
  // [declared type, whether -0 comes back]: PostgreSQL's float types keep the sign, SQLite stores an
  // integral REAL as an integer, and integer/numeric types have no negative zero
  const types: [string, boolean][] =
    dialect === 'sqlite'
      ? [
          ['integer', false],
          ['real', false],
          ['double', false],
          ['numeric', false],
        ]
      : [
          ['integer', false],
          ['smallint', false],
          ['numeric', false],
          ['oid', false],
          ['double precision', true],
          ['real', true],
        ]

  for (const [type, kept] of types) {
    it(`${type}: -0 ${kept ? 'comes back as -0, from the database and from a chain' : 'is refused before anything is written'}`, async () => {
      const env = await open(dialect)
      await sql`create table ${sql.table(env.table('readings'))} (id integer primary key, value ${sql.raw(type)})`.execute(env.db)
      const chain = new ChainedStore([new ProcessMemoryStore({ max: 10 }), env.store])
      const r = new Reading(1, -0)
      if (kept) {
        await chain.put(r)
        expect(show(r.value)).toBe('-0')
        expect(show((await env.store.get(Reading, { id: 1 }))?.value)).toBe('-0')
        expect(show((await chain.get(Reading, { id: 1 }))?.value)).toBe('-0')
        // several rows in one statement, and a read by another process
        await env.store.batchPut([new Reading(2, 1.5), new Reading(3, -0)])
        const fresh = new SqlStore({ db: env.db }, { tables: () => env.table('readings') })
        expect((await fresh.batchGet(Reading, [{ id: 1 }, { id: 2 }, { id: 3 }])).map((x) => show(x?.value))).toEqual(['-0', 1.5, '-0'])
      } else {
        const err = await chain.put(r).catch((e: unknown) => e)
        expect(err).toBeInstanceOf(SerializationError)
        expect((err as Error).message).toMatch(/`ExactReading`.*`value`.*-0.*column `value`/)
        expect(show(r.value)).toBe('-0')
        expect(await env.store.get(Reading, { id: 1 })).toBeUndefined()
        await expect(env.store.batchPut([new Reading(2, 5), new Reading(3, -0)])).rejects.toThrow(SerializationError)
        expect(await env.store.get(Reading, { id: 2 })).toBeUndefined()
        await env.store.put(new Reading(4, 0))
        expect(show((await env.store.get(Reading, { id: 4 }))?.value)).toBe(0)
      }
      await chain.close()
    })
  }

  it('a key -0 is the key 0, and a lookup by -0 finds the row of 0', async () => {
    const env = await open(dialect)
    await sql`create table ${sql.table(env.table('readings'))} (id integer primary key, value integer)`.execute(env.db)
    await env.store.put(new Reading(0, 7))
    expect((await env.store.get(Reading, { id: -0 }))?.value).toBe(7)
  })
})
