import { join } from 'node:path'
import Database from 'better-sqlite3'
import { type Dialect, Kysely, type Migration, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely'
import pg from 'pg'
import { describe, expect, inject, it } from 'vitest'
import { ChainedStore, isStockpyleError, keys, ProcessMemoryStore } from '../../src/index.js'
import { CacheSyncPlugin, createTable, SqlStore } from '../../src/stores/sql/index.js'
import { selectedStores } from '../harness/servers.js'
import { type Kind, scratchDir, selectedKinds, unsupported } from './kysely-sync-env.js'

class EdgeUser {
  static readonly stockpyleName = 'KyselySyncEdgeUser'
  static readonly stockpyleKeys = keys('id', 'email')
  constructor(
    public id: number,
    public email: string,
    public name: string,
  ) {}
}

const stores = selectedStores()
const dir = scratchDir('kysely-sync-edges')
let counter = 0
const kinds = selectedKinds()

/** A chain (memory → SqlStore) with users 1..3 cached by every key, and the app's Kysely with the plugin. */
async function setup(kind: Kind, options: { sqliteDatabase?: (file: string) => Database.Database } = {}) {
  const table = `edge_users_${process.pid}_${++counter}`
  let url: string
  let dialect: () => Dialect
  let pool: pg.Pool | undefined
  if (kind === 'sqlite') {
    const file = join(dir, `edges${counter}.db`)
    url = `sqlite:${file}`
    dialect = () => new SqliteDialect({ database: options.sqliteDatabase?.(file) ?? new Database(file) })
  } else {
    url = inject('postgresUrl')
    pool = new pg.Pool({ connectionString: url, max: 3 })
    dialect = () => new PostgresDialect({ pool: pool as pg.Pool })
  }
  const sqlStore = new SqlStore({ url }, { tables: { KyselySyncEdgeUser: table } })
  await createTable(sqlStore, EdgeUser, { columns: { id: 'integer', email: 'text', name: 'text' } })
  const memory = new ProcessMemoryStore()
  const chain = new ChainedStore([memory, sqlStore])
  const sync = new CacheSyncPlugin({ chain, models: [EdgeUser] })
  const db = new Kysely<any>({ dialect: sync.wrapDialect(dialect()), plugins: [sync] })
  await chain.batchPut([new EdgeUser(1, 'a@x', 'Ada'), new EdgeUser(2, 'b@x', 'Bob'), new EdgeUser(3, 'c@x', 'Cy')])
  for (const id of [1, 2, 3]) {
    const u = (await chain.get(EdgeUser, { id })) as EdgeUser
    await chain.get(EdgeUser, { email: u.email })
  }
  const cached = (lookup: object) => memory.get(EdgeUser, lookup as { id: number })
  const close = async () => {
    await db.withoutPlugins().schema.dropTable(table).ifExists().execute()
    await db.destroy()
    await chain.close()
  }
  return { db, chain, memory, table, url, cached, close }
}

for (const [label, kind] of kinds) {
  describe(`CacheSyncPlugin on ${label}: edge cases`, () => {
    it('a transaction inside db.connection() leaves the connection usable after its COMMIT', async () => {
      const { db, chain, table, cached, close } = await setup(kind)
      try {
        await db.connection().execute(async (conn) => {
          await conn.transaction().execute(async (trx) => {
            await trx.updateTable(table).set({ name: 'Ada 2' }).where('id', '=', 1).execute()
          })
          expect(await cached({ id: 1 })).toBeUndefined()
          expect(await conn.selectFrom(table).select('id').execute()).toHaveLength(3)
          await conn.updateTable(table).set({ name: 'Bob 2' }).where('id', '=', 2).execute()
          expect(await cached({ id: 2 })).toBeUndefined()
        })
        expect((await chain.get(EdgeUser, { id: 2 }))?.name).toBe('Bob 2')
      } finally {
        await close()
      }
    })

    it('an UPDATE that sets a primary key and reads a CTE: runs, and invalidates the old keys', async () => {
      const { db, chain, table, cached, close } = await setup(kind)
      try {
        const result = await db
          .with('moved', (qb) => qb.selectFrom(table).select('id').where('email', '=', 'a@x'))
          .updateTable(table)
          .set((eb) => ({ id: eb('id', '+', 100) }))
          .where('id', 'in', (qb: any) => qb.selectFrom('moved').select('id'))
          .executeTakeFirst()
        expect(result.numUpdatedRows).toBe(1n)
        expect(await cached({ id: 1 })).toBeUndefined()
        expect(await chain.get(EdgeUser, { id: 1 })).toBeUndefined()
        expect((await chain.get(EdgeUser, { email: 'a@x' }))?.id).toBe(101)
      } finally {
        await close()
      }
    })

    it('a primary key set through sql.ref() is still a primary-key update; a column it cannot name is refused', async () => {
      const { db, chain, table, cached, close } = await setup(kind)
      try {
        await db
          .updateTable(table)
          .set(sql.ref('id') as never, 20 as never)
          .set({ email: 'new@x' })
          .where('id', '=', 2)
          .execute()
        expect(await cached({ id: 2 })).toBeUndefined()
        expect(await chain.get(EdgeUser, { id: 2 })).toBeUndefined()
        expect((await chain.get(EdgeUser, { id: 20 }))?.email).toBe('new@x')
        await expect(
          db
            .updateTable(table)
            .set(sql`id` as never, 30 as never)
            .where('id', '=', 20)
            .execute(),
        ).rejects.toSatisfy(unsupported)
      } finally {
        await close()
      }
    })

    it('EXPLAIN of a write is passed through (the plan comes back, nothing runs); EXPLAIN ANALYZE is refused', async () => {
      const { db, table, cached, close } = await setup(kind)
      try {
        const build = (k: Kysely<any>) => k.updateTable(table).set({ name: 'Explained' }).where('id', '=', 1)
        const update = build(db)
        // what it gives without the plugin (on SQLite Kysely reports an UpdateResult of 0 rows)
        expect(await update.explain()).toEqual(await build(db.withoutPlugins()).explain())
        if (kind === 'sqlite') expect((await update.explain(undefined, sql`query plan`)).length).toBeGreaterThan(0)
        else {
          await expect(update.explain(undefined, sql`analyze`)).rejects.toSatisfy(unsupported)
          // however the options were put together
          await expect(update.explain('json', sql.join([sql`analyze`, sql`buffers`]))).rejects.toSatisfy(unsupported)
          await expect(update.explain('json', sql`${sql.raw('analyze')}`)).rejects.toSatisfy(unsupported)
        }
        const row = await db.withoutPlugins().selectFrom(table).select('name').where('id', '=', 1).executeTakeFirst()
        expect(row?.name).toBe('Ada')
        expect((await cached({ id: 1 }))?.name).toBe('Ada')
      } finally {
        await close()
      }
    })

    it('an INSERT resolves to what it would without the plugin (insertId only on SQLite)', async () => {
      const { db, table, close } = await setup(kind)
      try {
        const mine = await db.insertInto(table).values({ id: 7, email: 'g@x', name: 'G' }).executeTakeFirst()
        const plain = await db.withoutPlugins().insertInto(table).values({ id: 8, email: 'h@x', name: 'H' }).executeTakeFirst()
        expect(mine.numInsertedOrUpdatedRows).toBe(plain.numInsertedOrUpdatedRows)
        expect(mine.insertId === undefined).toBe(plain.insertId === undefined)
        if (kind === 'sqlite') expect(mine.insertId).toBe(7n)
      } finally {
        await close()
      }
    })

    it('Kysely’s Migrator: a migration that writes in a transaction, then another; both recorded, caches invalidated', async () => {
      const { db, chain, table, url, cached, close } = await setup(kind)
      const names = {
        migrationTableName: `edge_mig_${process.pid}_${counter}`,
        migrationLockTableName: `edge_lock_${process.pid}_${counter}`,
      }
      const migrations: Record<string, Migration> = {
        // SQLite's Migrator runs in db.connection() (no transactional DDL): the migration opens a transaction;
        // PostgreSQL's runs every migration in a transaction inside db.connection() (advisory lock around it)
        '001_rename': {
          up: async (m) => {
            if (kind === 'postgres') await m.updateTable(table).set({ name: 'Migrated' }).where('id', '=', 1).execute()
            else await m.transaction().execute((trx) => trx.updateTable(table).set({ name: 'Migrated' }).where('id', '=', 1).execute())
          },
        },
        '002_more': { up: async (m) => void (await m.updateTable(table).set({ name: 'Two' }).where('id', '=', 2).execute()) },
      }
      try {
        const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations }, ...names })
        const { error, results } = await migrator.migrateToLatest()
        expect(error).toBeUndefined()
        expect(results?.map((r) => [r.migrationName, r.status])).toEqual([
          ['001_rename', 'Success'],
          ['002_more', 'Success'],
        ])
        const recorded = await db.withoutPlugins().selectFrom(names.migrationTableName).select('name').orderBy('name').execute()
        expect(recorded.map((r) => r.name)).toEqual(['001_rename', '002_more'])
        expect(await cached({ id: 1 })).toBeUndefined()
        expect(await cached({ id: 2 })).toBeUndefined()
        expect((await chain.get(EdgeUser, { id: 1 }))?.name).toBe('Migrated')
        expect((await chain.get(EdgeUser, { id: 2 }))?.name).toBe('Two')
        if (kind === 'postgres') {
          // the Migrator's session advisory lock was released: another session takes it at once
          const other = new pg.Client({ connectionString: url })
          await other.connect()
          try {
            const { rows } = await other.query('select pg_try_advisory_lock(3853314791062309107) as got')
            expect(rows[0].got).toBe(true)
            await other.query('select pg_advisory_unlock(3853314791062309107)')
          } finally {
            await other.end()
          }
        }
      } finally {
        await db.withoutPlugins().schema.dropTable(names.migrationTableName).ifExists().execute()
        await db.withoutPlugins().schema.dropTable(names.migrationLockTableName).ifExists().execute()
        await close()
      }
    })

    it('a write whose target is sql.table(), aliased or wrapped in raw SQL, is followed; a target it cannot name is refused before it runs', async () => {
      const { db, chain, table, cached, close } = await setup(kind)
      try {
        await db.updateTable(sql.table(table).as('t')).set({ name: 'Ada 2' }).where('t.id', '=', 1).execute()
        expect(await cached({ id: 1 })).toBeUndefined()
        expect((await chain.get(EdgeUser, { email: 'a@x' }))?.name).toBe('Ada 2')
        await db
          .updateTable(sql`${sql.table(table)}`.as('t'))
          .set({ name: 'Ada 3' })
          .where('t.id', '=', 1)
          .execute()
        expect(await cached({ id: 1 })).toBeUndefined()
        expect((await chain.get(EdgeUser, { id: 1 }))?.name).toBe('Ada 3')
        await db.updateTable(db.dynamic.table(table).as('t')).set({ name: 'Ada 4' }).where('t.id', '=', 1).execute()
        expect((await chain.get(EdgeUser, { id: 1 }))?.name).toBe('Ada 4')
        await db.deleteFrom(sql.table(table).as('t')).where('t.id', '=', 2).execute()
        expect(await cached({ id: 2 })).toBeUndefined()
        expect(await chain.get(EdgeUser, { email: 'b@x' })).toBeUndefined()
        // raw SQL naming the table: which table it writes cannot be told
        await expect(
          db
            .updateTable(sql`${sql.raw(table)}`.as('t'))
            .set({ name: 'raw' })
            .where('t.id', '=', 3)
            .execute(),
        ).rejects.toSatisfy(unsupported)
        await expect(
          db
            .deleteFrom(sql`${sql.raw(table)}`.as('t'))
            .where('t.id', '=', 3)
            .execute(),
        ).rejects.toSatisfy(unsupported)
        expect((await db.withoutPlugins().selectFrom(table).select('name').where('id', '=', 3).executeTakeFirst())?.name).toBe('Cy')
        expect((await cached({ id: 3 }))?.name).toBe('Cy')
      } finally {
        await close()
      }
    })

    it('a write on a watched table after chain.close() is refused before it runs, and so is a COMMIT of such writes', async () => {
      const { db, chain, table, close } = await setup(kind)
      try {
        const trx = await db.startTransaction().execute()
        await trx.updateTable(table).set({ name: 'Ada in tx' }).where('id', '=', 1).execute()
        await chain.close()
        await expect(trx.commit().execute()).rejects.toSatisfy((e: unknown) => isStockpyleError(e, 'E_STORE_CLOSED'))
        await trx.rollback().execute()
        await expect(db.updateTable(table).set({ name: 'late' }).where('id', '=', 2).execute()).rejects.toSatisfy((e: unknown) =>
          isStockpyleError(e, 'E_STORE_CLOSED'),
        )
        await expect(
          db.transaction().execute((t) => t.updateTable(table).set({ name: 'late' }).where('id', '=', 3).execute()),
        ).rejects.toSatisfy((e: unknown) => isStockpyleError(e, 'E_STORE_CLOSED'))
        const rows = await db.withoutPlugins().selectFrom(table).select(['id', 'name']).orderBy('id').execute()
        expect(rows).toEqual([
          { id: 1, name: 'Ada' },
          { id: 2, name: 'Bob' },
          { id: 3, name: 'Cy' },
        ])
        // other statements still run
        expect(await db.selectFrom(table).select('id').execute()).toHaveLength(3)
      } finally {
        await close()
      }
    })
  })
}

describe.runIf(stores.has('sqlite'))('CacheSyncPlugin on SQLite: a COMMIT that fails and leaves the transaction open', () => {
  it('keeps its invalidations queued: the COMMIT that succeeds later runs them', async () => {
    const withForeignKeys = (file: string) => {
      const database = new Database(file)
      database.pragma('foreign_keys = ON')
      return database
    }
    const { db, chain, memory, table, cached, close } = await setup('sqlite', { sqliteDatabase: withForeignKeys })
    const posts = `edge_posts_${process.pid}_${counter}`
    try {
      await sql`create table ${sql.table(posts)} (id integer primary key, user_id integer references ${sql.table(table)}(id) deferrable initially deferred)`.execute(
        db,
      )
      const trx = await db.startTransaction().execute()
      await trx.updateTable(table).set({ name: 'Ada NEW' }).where('id', '=', 1).execute()
      await trx.insertInto(posts).values({ id: 1, user_id: 999 }).execute() // deferred foreign-key violation
      await expect(trx.commit().execute()).rejects.toThrow(/foreign key/i)
      // not committed (SQLite keeps the transaction open): a reader meanwhile caches the committed row
      await memory.put(new EdgeUser(1, 'a@x', 'Ada'))
      await trx.deleteFrom(posts).where('id', '=', 1).execute()
      await trx.commit().execute()
      expect(await cached({ id: 1 })).toBeUndefined()
      expect((await chain.get(EdgeUser, { id: 1 }))?.name).toBe('Ada NEW')
      // the connection is out of the transaction: a write invalidates at once again
      await db.updateTable(table).set({ name: 'Bob NEW' }).where('id', '=', 2).execute()
      expect(await cached({ id: 2 })).toBeUndefined()
    } finally {
      await db.withoutPlugins().schema.dropTable(posts).ifExists().execute()
      await close()
    }
  })
})

describe.runIf(stores.has('sqlite'))('CacheSyncPlugin on SQLite: a statement whose error rolls the whole transaction back', () => {
  // SQLite ends the transaction on its own after RAISE(ROLLBACK) in a trigger (also SQLITE_FULL,
  // SQLITE_IOERR, an interrupt): the statements after it run in autocommit mode, each committed at once.
  async function withRollbackTrigger(run: (ctx: Awaited<ReturnType<typeof setup>> & { audit: string }) => Promise<void>) {
    const ctx = await setup('sqlite')
    const audit = `edge_audit_${process.pid}_${counter}`
    try {
      await sql`create table ${sql.table(audit)} (id integer primary key)`.execute(ctx.db)
      await sql`create trigger ${sql.id(`${audit}_refuse`)} before insert on ${sql.table(audit)} begin select raise(rollback, 'audit refused'); end`.execute(
        ctx.db,
      )
      await run({ ...ctx, audit })
    } finally {
      await ctx.db.withoutPlugins().schema.dropTable(audit).ifExists().execute()
      await ctx.close()
    }
  }

  it('writes after it are committed at once, so they are invalidated at once (also when the app then calls rollback)', async () => {
    await withRollbackTrigger(async ({ db, chain, table, audit, cached }) => {
      const trx = await db.startTransaction().execute()
      await trx.updateTable(table).set({ name: 'Ada rolled back' }).where('id', '=', 1).execute()
      await expect(trx.insertInto(audit).values({ id: 1 }).execute()).rejects.toThrow(/audit refused/)
      // the transaction is gone: this UPDATE commits on its own, and must not wait for a COMMIT
      await trx.updateTable(table).set({ name: 'Bob NEW' }).where('id', '=', 2).execute()
      const before = [await cached({ id: 2 }), await cached({ email: 'b@x' })]
      await expect(trx.rollback().execute()).rejects.toThrow(/no transaction is active/)
      expect(before).toEqual([undefined, undefined])
      expect([await cached({ id: 2 }), await cached({ email: 'b@x' })]).toEqual([undefined, undefined])
      expect((await chain.get(EdgeUser, { id: 2 }))?.name).toBe('Bob NEW')
      // the first UPDATE was rolled back with the transaction
      expect((await chain.get(EdgeUser, { id: 1 }))?.name).toBe('Ada')
    })
  })

  it('inside db.transaction(): the callback that goes on after the error leaves no stale copy', async () => {
    await withRollbackTrigger(async ({ db, chain, table, audit, cached }) => {
      const failed = await db
        .transaction()
        .execute(async (trx) => {
          await trx
            .insertInto(audit)
            .values({ id: 1 })
            .execute()
            .catch(() => {})
          await trx.updateTable(table).set({ name: 'Cy NEW' }).where('id', '=', 3).execute()
          return 'done'
        })
        .catch((e: unknown) => e)
      expect(failed).toBeInstanceOf(Error) // Kysely's COMMIT finds no transaction
      expect(await cached({ id: 3 })).toBeUndefined()
      expect((await chain.get(EdgeUser, { id: 3 }))?.name).toBe('Cy NEW')
    })
  })

  it('an error that leaves the transaction open keeps the queue: nothing is invalidated before COMMIT', async () => {
    await withRollbackTrigger(async ({ db, table, cached }) => {
      const trx = await db.startTransaction().execute()
      await trx.updateTable(table).set({ name: 'Ada NEW' }).where('id', '=', 1).execute()
      await expect(trx.updateTable(table).set({ id: 2 }).where('id', '=', 1).execute()).rejects.toThrow(/UNIQUE/)
      expect(await cached({ id: 1 })).toBeDefined() // still queued
      await trx.commit().execute()
      expect(await cached({ id: 1 })).toBeUndefined()
    })
  })
})

describe.runIf(stores.has('sqlite'))('CacheSyncPlugin on SQLite: INSERT OR <action>', () => {
  it('refuses OR REPLACE, OR FAIL and OR ROLLBACK before they run; follows OR IGNORE and OR ABORT', async () => {
    const { db, chain, table, cached, close } = await setup('sqlite')
    try {
      expect(await chain.get(EdgeUser, { id: 4 })).toBeUndefined() // a miss, remembered
      const rows = [
        { id: 4, email: 'd@x', name: 'Di' },
        { id: 1, email: 'dup@x', name: 'dup' },
      ]
      await expect(db.insertInto(table).orReplace().values(rows).execute()).rejects.toSatisfy(unsupported)
      await expect(db.insertInto(table).orFail().values(rows).execute()).rejects.toThrow(/OR FAIL.*returns none/)
      await expect(db.insertInto(table).orRollback().values(rows).execute()).rejects.toSatisfy(unsupported)
      const inDb = await db.withoutPlugins().selectFrom(table).select(['id', 'name']).orderBy('id').execute()
      expect(inDb).toEqual([
        { id: 1, name: 'Ada' },
        { id: 2, name: 'Bob' },
        { id: 3, name: 'Cy' },
      ]) // none ran
      await db.insertInto(table).orIgnore().values(rows).execute()
      expect((await chain.get(EdgeUser, { id: 4 }))?.name).toBe('Di')
      expect((await cached({ id: 1 }))?.name).toBe('Ada') // ignored, left alone
      await expect(db.insertInto(table).orAbort().values({ id: 5, email: 'e@x', name: 'E' }).execute()).resolves.toBeDefined()
      expect((await chain.get(EdgeUser, { id: 5 }))?.name).toBe('E')
    } finally {
      await close()
    }
  })
})

describe.runIf(stores.has('sqlite'))('CacheSyncPlugin on SQLite: names in another case', () => {
  it('a table or primary-key column named in another case is the same one (SQLite identifiers ignore case)', async () => {
    const { db, chain, table, cached, close } = await setup('sqlite')
    try {
      await db.updateTable(table.toUpperCase()).set({ name: 'Upper' }).where('id', '=', 1).execute()
      expect(await cached({ id: 1 })).toBeUndefined()
      expect((await chain.get(EdgeUser, { id: 1 }))?.name).toBe('Upper')
      await db.updateTable(table).set({ ID: 20 }).where('id', '=', 2).execute()
      expect(await chain.get(EdgeUser, { id: 2 })).toBeUndefined()
      expect((await chain.get(EdgeUser, { email: 'b@x' }))?.id).toBe(20)
    } finally {
      await close()
    }
  })
})
