import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { type Dialect, Kysely, PostgresDialect, SqliteDialect } from 'kysely'
import pg from 'pg'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { ChainedStore, isStockpyleError, keys, ProcessMemoryStore } from '../../src/index.js'
import { CacheSyncPlugin, createTable, SqlStore } from '../../src/stores/sql/index.js'
import { selectedStores } from '../harness/servers.js'

class SyncUser {
  static readonly stockpyleName = 'KyselySyncUser'
  static readonly stockpyleKeys = keys('id', 'email', ['orgId', 'slug'])
  constructor(
    public id: number,
    public email: string,
    public orgId: number,
    public slug: string,
    public name: string,
  ) {}
}

const stores = selectedStores()
const dir = mkdtempSync(join(tmpdir(), 'stockpyle-kysely-sync-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let counter = 0

interface Env {
  /** Raw connection settings for the app's Kysely and the SqlStore, on one database. */
  dialect: () => Dialect
  url: string
  /** SQL text of every statement the app's Kysely sent to the database (as the database got it). */
  sent: string[]
}

function envs(): [string, () => Env][] {
  const out: [string, () => Env][] = []
  if (stores.has('sqlite')) {
    out.push([
      'SQLite',
      () => {
        const file = join(dir, `sync${++counter}.db`)
        const sent: string[] = []
        const verbose = (sql: unknown) => sent.push(String(sql))
        return { url: `sqlite:${file}`, sent, dialect: () => new SqliteDialect({ database: new Database(file, { verbose }) }) }
      },
    ])
  }
  if (stores.has('postgres')) {
    out.push([
      'PostgreSQL',
      () => {
        const url = inject('postgresUrl')
        const sent: string[] = []
        const dialect = () => {
          const pool = new pg.Pool({ connectionString: url, max: 3 })
          pool.on('connect', (client) => {
            const query = client.query.bind(client) as (...args: unknown[]) => unknown
            ;(client as { query: unknown }).query = (...args: unknown[]) => {
              if (typeof args[0] === 'string') sent.push(args[0])
              return query(...args)
            }
          })
          return new PostgresDialect({ pool })
        }
        return { url, sent, dialect }
      },
    ])
  }
  return out
}

const unsupported = (e: unknown) => isStockpyleError(e, 'E_UNSUPPORTED')

for (const [label, makeEnv] of envs()) {
  describe(`CacheSyncPlugin on ${label}`, () => {
    async function setup() {
      const env = makeEnv()
      const table = `sync_users_${process.pid}_${++counter}`
      const other = `sync_other_${process.pid}_${counter}`
      const sqlStore = new SqlStore({ url: env.url }, { tables: { KyselySyncUser: table }, camelCase: true })
      await createTable(sqlStore, SyncUser, { columns: { id: 'integer', email: 'text', orgId: 'integer', slug: 'text', name: 'text' } })
      const memory = new ProcessMemoryStore()
      const chain = new ChainedStore([memory, sqlStore], { missLifetime: 60 })
      const sync = new CacheSyncPlugin({ chain, models: [SyncUser] })
      const db = new Kysely<any>({ dialect: sync.wrapDialect(env.dialect()), plugins: [sync] })
      await db.schema
        .createTable(other)
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('v', 'text')
        .execute()
      await chain.batchPut([new SyncUser(1, 'a@x', 7, 'a', 'Ada'), new SyncUser(2, 'b@x', 7, 'b', 'Bob')])
      // Warm the memory layer by every key of both users.
      for (const id of [1, 2]) {
        const u = (await chain.get(SyncUser, { id })) as SyncUser
        await chain.get(SyncUser, { email: u.email })
        await chain.get(SyncUser, { orgId: u.orgId, slug: u.slug })
      }
      const cached = (lookup: object) => memory.get(SyncUser, lookup as { id: number })
      const close = async () => {
        await db.schema.dropTable(other).execute()
        await db.schema.dropTable(table).execute()
        await db.destroy()
        await chain.close()
      }
      return { db, chain, memory, table, other, cached, close, sent: env.sent }
    }

    it('an UPDATE that changes an alternate key: the old key misses and the new one hits, in every layer', async () => {
      const { db, chain, table, cached, close } = await setup()
      try {
        const result = await db.updateTable(table).set({ email: 'a2@x', slug: 'a2' }).where('id', '=', 1).executeTakeFirst()
        expect(result.numUpdatedRows).toBe(1n)
        expect(await cached({ id: 1 })).toBeUndefined()
        expect(await chain.get(SyncUser, { email: 'a@x' })).toBeUndefined()
        expect(await chain.get(SyncUser, { orgId: 7, slug: 'a' })).toBeUndefined()
        expect(await chain.get(SyncUser, { email: 'a2@x' })).toEqual(new SyncUser(1, 'a2@x', 7, 'a2', 'Ada'))
        expect((await chain.get(SyncUser, { id: 1 }))?.email).toBe('a2@x')
        expect(await cached({ id: 2 })).toEqual(new SyncUser(2, 'b@x', 7, 'b', 'Bob')) // untouched
      } finally {
        await close()
      }
    })

    it('statements of one builder run at once (they share its queryId) each invalidate their own rows and keep their results', async () => {
      const { db, chain, table, cached, close } = await setup()
      try {
        const base = db.updateTable(table).set({ name: 'NEW' })
        const results = await Promise.all([base.where('id', '=', 1).executeTakeFirst(), base.where('id', '=', 2).executeTakeFirst()])
        expect(results.map((r) => r.numUpdatedRows)).toEqual([1n, 1n])
        for (const id of [1, 2]) {
          expect(await cached({ id })).toBeUndefined()
          expect((await chain.get(SyncUser, { id }))?.name).toBe('NEW')
        }
        // the same builder twice at once, and again after one of them failed
        const rename = db.updateTable(table).set({ name: 'AGAIN' }).where('id', 'in', [1, 2])
        await Promise.all([rename.execute(), rename.execute()])
        await expect(
          db
            .updateTable(table)
            .set({ nope: 1 } as never)
            .where('id', '=', 1)
            .execute(),
        ).rejects.toThrow()
        for (const id of [1, 2]) expect((await chain.get(SyncUser, { id }))?.name).toBe('AGAIN')
      } finally {
        await close()
      }
    })

    it('a DELETE removes the rows from every cache; the builder still resolves to a DeleteResult', async () => {
      const { db, chain, table, cached, close } = await setup()
      try {
        const result = await db.deleteFrom(table).where('org_id', '=', 7).execute()
        expect(result).toHaveLength(1)
        expect(result[0]?.numDeletedRows).toBe(2n)
        expect(await cached({ email: 'a@x' })).toBeUndefined()
        expect(await chain.get(SyncUser, { email: 'b@x' })).toBeUndefined()
      } finally {
        await close()
      }
    })

    it('an INSERT forgets remembered misses; upserts invalidate the rows they update', async () => {
      const { db, chain, table, close } = await setup()
      try {
        expect(await chain.get(SyncUser, { email: 'c@x' })).toBeUndefined() // remembered as a miss
        const inserted = await db.insertInto(table).values({ id: 3, email: 'c@x', org_id: 8, slug: 'c', name: 'Cy' }).executeTakeFirst()
        expect(inserted.numInsertedOrUpdatedRows).toBe(1n)
        if (label === 'SQLite') expect(inserted.insertId).toBe(3n)
        expect(await chain.get(SyncUser, { email: 'c@x' })).toEqual(new SyncUser(3, 'c@x', 8, 'c', 'Cy'))
        await db
          .insertInto(table)
          .values([
            { id: 1, email: 'a3@x', org_id: 7, slug: 'a', name: 'Ada 3' },
            { id: 4, email: 'd@x', org_id: 8, slug: 'd', name: 'Di' },
          ])
          .onConflict((oc) => oc.column('id').doUpdateSet((eb) => ({ email: eb.ref('excluded.email'), name: eb.ref('excluded.name') })))
          .execute()
        expect(await chain.get(SyncUser, { email: 'a@x' })).toBeUndefined()
        expect((await chain.get(SyncUser, { id: 1 }))?.name).toBe('Ada 3')
        expect((await chain.get(SyncUser, { email: 'd@x' }))?.name).toBe('Di')
      } finally {
        await close()
      }
    })

    it('inside a transaction: caches change only after COMMIT, never after a rollback', async () => {
      const { db, chain, table, cached, close } = await setup()
      try {
        await db.transaction().execute(async (trx) => {
          await trx.updateTable(table).set({ name: 'Ada (tx)' }).where('id', '=', 1).execute()
          expect((await cached({ id: 1 }))?.name).toBe('Ada') // not yet
        })
        expect(await cached({ id: 1 })).toBeUndefined()
        expect((await chain.get(SyncUser, { id: 1 }))?.name).toBe('Ada (tx)')

        await expect(
          db.transaction().execute(async (trx) => {
            await trx.deleteFrom(table).where('id', '=', 2).execute()
            throw new Error('roll back')
          }),
        ).rejects.toThrow('roll back')
        expect((await cached({ id: 2 }))?.name).toBe('Bob') // never invalidated
        expect((await chain.get(SyncUser, { email: 'b@x' }))?.name).toBe('Bob')
      } finally {
        await close()
      }
    })

    it('a savepoint rolled back drops what was written after it; the rest follows the COMMIT', async () => {
      const { db, chain, table, cached, close } = await setup()
      try {
        const trx = await db.startTransaction().execute()
        await trx.updateTable(table).set({ name: 'Ada (kept)' }).where('id', '=', 1).execute()
        const sp = await trx.savepoint('sp1').execute()
        await sp.updateTable(table).set({ name: 'Bob (undone)' }).where('id', '=', 2).execute()
        const back = await sp.rollbackToSavepoint('sp1').execute()
        await back.commit().execute()
        expect(await cached({ id: 1 })).toBeUndefined()
        expect((await cached({ id: 2 }))?.name).toBe('Bob')
        expect((await chain.get(SyncUser, { id: 1 }))?.name).toBe('Ada (kept)')
      } finally {
        await close()
      }
    })

    it('statements on unmapped tables are left alone (no RETURNING added)', async () => {
      const { db, table, other, cached, close, sent } = await setup()
      try {
        // the RETURNING is added on the way to the database, after every plugin: compile() shows the statement as built
        expect(db.updateTable(table).set({ name: 'x' }).where('id', '=', 1).compile().sql).not.toMatch(/returning/i)
        await db.insertInto(other).values({ id: 1, v: 'a' }).execute()
        sent.length = 0
        const result = await db.updateTable(other).set({ v: 'b' }).where('id', '=', 1).executeTakeFirst()
        expect(result.numUpdatedRows).toBe(1n)
        expect((await cached({ id: 1 }))?.name).toBe('Ada')
        await db.updateTable(table).set({ name: 'Ada' }).where('id', '=', 1).execute()
        expect(sent.filter((q) => /^update/i.test(q))).toEqual([
          expect.not.stringMatching(/returning/i),
          expect.stringMatching(/returning/i),
        ])
      } finally {
        await close()
      }
    })

    it('a statement’s own RETURNING comes back without the plugin’s key columns', async () => {
      const { db, table, close } = await setup()
      try {
        const rows = await db.updateTable(table).set({ name: 'N' }).where('id', '=', 2).returning(['name']).execute()
        expect(rows).toEqual([{ name: 'N' }])
      } finally {
        await close()
      }
    })

    it('an UPDATE that changes primary keys: the old keys are read first on the same connection and invalidated too', async () => {
      const { db, chain, table, cached, close } = await setup()
      try {
        const result = await db.updateTable(table).set({ id: 11, email: 'a11@x' }).where('id', '=', 1).executeTakeFirst()
        expect(result.numUpdatedRows).toBe(1n)
        expect(await cached({ id: 1 })).toBeUndefined()
        expect(await chain.get(SyncUser, { id: 1 })).toBeUndefined()
        expect(await chain.get(SyncUser, { email: 'a@x' })).toBeUndefined()
        expect(await chain.get(SyncUser, { id: 11 })).toEqual(new SyncUser(11, 'a11@x', 7, 'a', 'Ada'))
        await db.transaction().execute(async (trx) => {
          await trx.updateTable(`${table} as u`).set({ id: 12 }).where('u.email', '=', 'b@x').execute()
          expect((await cached({ id: 2 }))?.id).toBe(2) // not before COMMIT
        })
        expect(await chain.get(SyncUser, { id: 2 })).toBeUndefined()
        expect((await chain.get(SyncUser, { email: 'b@x' }))?.id).toBe(12)
      } finally {
        await close()
      }
    })

    it('refuses, before running it, a statement whose old keys it cannot learn (upsert setting the primary key)', async () => {
      const { db, chain, table, close } = await setup()
      try {
        await expect(
          db
            .insertInto(table)
            .values({ id: 30, email: 'a@x', org_id: 1, slug: 'z', name: 'Z' })
            .onConflict((oc) => oc.column('email').doUpdateSet({ id: 30 }))
            .execute(),
        ).rejects.toSatisfy(unsupported)
        expect((await chain.get(SyncUser, { email: 'a@x' }))?.id).toBe(1)
      } finally {
        await close()
      }
    })
  })
}

describe.runIf(stores.has('sqlite'))('CacheSyncPlugin options', () => {
  it('rejects a chain whose last layer is not a SqlStore without `store`, and writes through an unwrapped dialect', async () => {
    const memoryChain = new ChainedStore([new ProcessMemoryStore(), new ProcessMemoryStore()])
    expect(() => new CacheSyncPlugin({ chain: memoryChain, models: [SyncUser] })).toThrow(/`store`/)
    const sqlStore = new SqlStore({ url: 'sqlite::memory:' })
    const chain = new ChainedStore([new ProcessMemoryStore(), sqlStore])
    expect(() => new CacheSyncPlugin({ chain, models: [] })).toThrow(/`models`/)
    const sync = new CacheSyncPlugin({ chain, models: [SyncUser] })
    const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(':memory:') }), plugins: [sync] })
    await expect(db.deleteFrom('kysely_sync_users').execute()).rejects.toThrow(/wrapDialect/)
    await db.destroy()
    await chain.close()
  })
})
