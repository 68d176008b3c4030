import { join } from 'node:path'
import Database from 'better-sqlite3'
import { type CompiledQuery, type DatabaseConnection, type Dialect, Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely'
import pg from 'pg'
import { describe, expect, inject, it } from 'vitest'
import { ChainedStore, keys, ProcessMemoryStore } from '../../src/index.js'
import { CacheSyncPlugin, createTable, SqlStore } from '../../src/stores/sql/index.js'
import { type Kind, scratchDir, selectedKinds, unsupported } from './kysely-sync-env.js'

// CacheSyncPlugin and primary keys: which rows an UPDATE of primary keys changes (exactly those whose
// old keys it read), and writes through a Kysely whose dialect was not wrapped.

/** Its primary key only: nothing but the old primary key can invalidate the old copy. */
class KeyItem {
  static readonly stockpyleName = 'KyselySyncKeyItem'
  static readonly stockpyleKeys = keys('id')
  constructor(
    public id: number,
    public tag: string,
  ) {}
}

/** A composite primary key only. */
class KeyPair {
  static readonly stockpyleName = 'KyselySyncKeyPair'
  static readonly stockpyleKeys = keys(['org', 'slug'])
  constructor(
    public org: number,
    public slug: string,
    public tag: string,
  ) {}
}

/** A primary key on a column that may hold NULL (backed by a unique index, not a PRIMARY KEY). */
class KeyCode {
  static readonly stockpyleName = 'KyselySyncKeyCode'
  static readonly stockpyleKeys = keys('code')
  constructor(
    public code: string,
    public tag: string,
  ) {}
}

const dir = scratchDir('kysely-sync-keys')
let counter = 0
const kinds = selectedKinds()

/**
 * `dialect` whose connections run `hook.after` (once) right after the plugin's SELECT of old keys
 * returned, before the statement that follows it: another client's write lands exactly there.
 */
function interleaving(dialect: Dialect, hook: { after?: (() => Promise<void>) | undefined }): Dialect {
  const hooked = new WeakSet<DatabaseConnection>()
  return {
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createAdapter: () => dialect.createAdapter(),
    createIntrospector: (db) => dialect.createIntrospector(db),
    createDriver: () => {
      const driver = dialect.createDriver()
      const acquire = driver.acquireConnection.bind(driver)
      driver.acquireConnection = async () => {
        const connection = await acquire()
        if (!hooked.has(connection)) {
          hooked.add(connection)
          const execute = connection.executeQuery.bind(connection)
          connection.executeQuery = (async (query: CompiledQuery) => {
            const result = await execute(query)
            const after = hook.after
            if (after !== undefined && /^select/i.test(query.sql) && query.sql.includes('__stockpyle_key_')) {
              hook.after = undefined
              await after()
            }
            return result
          }) as DatabaseConnection['executeQuery']
        }
        return connection
      }
      return driver
    },
  }
}

async function setup<M extends typeof KeyItem | typeof KeyPair | typeof KeyCode>(
  kind: Kind,
  model: M,
  columns: Record<string, string>,
  create?: (db: Kysely<any>, table: string) => Promise<void>,
) {
  const table = `key_items_${process.pid}_${++counter}`
  let url: string
  let raw: () => Dialect
  if (kind === 'sqlite') {
    const file = join(dir, `keys${counter}.db`)
    url = `sqlite:${file}`
    raw = () => new SqliteDialect({ database: new Database(file) })
  } else {
    url = inject('postgresUrl')
    raw = () => {
      return new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 3 }) })
    }
  }
  const sqlStore = new SqlStore({ url }, { tables: { [model.stockpyleName]: table } })
  if (create === undefined) await createTable(sqlStore, model, { columns: columns as never })
  else await create(await sqlStore.kysely(), table)
  const memory = new ProcessMemoryStore()
  const chain = new ChainedStore([memory, sqlStore])
  const sync = new CacheSyncPlugin({ chain, models: [model] })
  const hook: { after?: (() => Promise<void>) | undefined } = {}
  const db = new Kysely<any>({ dialect: sync.wrapDialect(interleaving(raw(), hook)), plugins: [sync] })
  const rows = () => db.withoutPlugins().selectFrom(table).selectAll().orderBy(Object.keys(columns)).execute()
  const close = async () => {
    await db.withoutPlugins().schema.dropTable(table).ifExists().execute()
    await db.destroy()
    await chain.close()
  }
  return { db, chain, memory, sync, sqlStore, raw, table, hook, rows, close }
}

for (const [label, kind] of kinds) {
  describe(`CacheSyncPlugin on ${label}: UPDATEs of primary keys`, () => {
    const modes = kind === 'postgres' ? (['outside a transaction', 'inside a transaction'] as const) : (['outside a transaction'] as const)
    for (const mode of modes) {
      it(`${mode}: a row another client makes match between the SELECT of old keys and the UPDATE is left alone`, async () => {
        const { db, chain, memory, table, hook, rows, close } = await setup(kind, KeyItem, { id: 'integer', tag: 'text' })
        try {
          await chain.batchPut([new KeyItem(1, 'keep'), new KeyItem(2, 'move')])
          expect(await chain.batchGet(KeyItem, [{ id: 1 }, { id: 2 }])).toHaveLength(2)
          // another client retags row 1 right after the plugin read the old keys (of row 2 only)
          hook.after = () => chain.put(new KeyItem(1, 'move'))
          const update = (d: Kysely<any>) =>
            d
              .updateTable(table)
              .set((eb) => ({ id: eb('id', '+', 100) }))
              .where('tag', '=', 'move')
              .executeTakeFirst()
          const result = mode === 'inside a transaction' ? await db.transaction().execute(update) : await update(db)
          expect(hook.after).toBeUndefined()
          // the UPDATE changed the row whose old key it read, and only that one
          expect(result.numUpdatedRows).toBe(1n)
          expect(await rows()).toEqual([
            { id: 1, tag: 'move' },
            { id: 102, tag: 'move' },
          ])
          // every copy a cache holds is the row's as the database has it
          expect(await memory.get(KeyItem, { id: 2 })).toBeUndefined()
          expect(await chain.get(KeyItem, { id: 2 })).toBeUndefined()
          expect(await chain.get(KeyItem, { id: 1 })).toEqual(new KeyItem(1, 'move'))
          expect(await chain.get(KeyItem, { id: 102 })).toEqual(new KeyItem(102, 'move'))
        } finally {
          await close()
        }
      })
    }

    it('a composite primary key: the UPDATE changes only the rows whose old keys it read', async () => {
      const { db, chain, memory, table, hook, rows, close } = await setup(kind, KeyPair, { org: 'integer', slug: 'text', tag: 'text' })
      try {
        await chain.batchPut([new KeyPair(1, 'a', 'keep'), new KeyPair(1, 'b', 'move'), new KeyPair(2, 'a', 'move')])
        for (const [org, slug] of [
          [1, 'a'],
          [1, 'b'],
          [2, 'a'],
        ] as const) {
          expect(await chain.get(KeyPair, { org, slug })).toBeDefined()
        }
        hook.after = () => chain.put(new KeyPair(1, 'a', 'move'))
        const result = await db
          .updateTable(table)
          .set((eb) => ({ org: eb('org', '+', 10) }))
          .where('tag', '=', 'move')
          .returning(['org', 'slug'])
          .execute()
        expect(result.sort((x, y) => x.org - y.org)).toEqual([
          { org: 11, slug: 'b' },
          { org: 12, slug: 'a' },
        ])
        expect(await rows()).toEqual([
          { org: 1, slug: 'a', tag: 'move' },
          { org: 11, slug: 'b', tag: 'move' },
          { org: 12, slug: 'a', tag: 'move' },
        ])
        expect(await memory.get(KeyPair, { org: 1, slug: 'b' })).toBeUndefined()
        expect(await memory.get(KeyPair, { org: 2, slug: 'a' })).toBeUndefined()
        expect(await chain.get(KeyPair, { org: 1, slug: 'a' })).toEqual(new KeyPair(1, 'a', 'move'))
      } finally {
        await close()
      }
    })

    it('an UPDATE of primary keys of more rows than a statement takes parameters (40 000) runs as one statement', async () => {
      const { db, chain, memory, table, close } = await setup(kind, KeyItem, { id: 'integer', tag: 'text' })
      try {
        const n = 40_000
        const fill =
          kind === 'sqlite'
            ? sql`with recursive c(n) as (select 1 union all select n + 1 from c where n < ${n}) insert into ${sql.table(table)} select n, 'm' from c`
            : sql`insert into ${sql.table(table)} select n, 'm' from generate_series(1, ${n}) as n`
        await fill.execute(db.withoutPlugins())
        expect(await chain.get(KeyItem, { id: n })).toEqual(new KeyItem(n, 'm'))
        const result = await db
          .updateTable(table)
          .set((eb) => ({ id: eb('id', '+', n) }))
          .where('tag', '=', 'm')
          .executeTakeFirst()
        expect(result.numUpdatedRows).toBe(BigInt(n))
        expect(await memory.get(KeyItem, { id: n })).toBeUndefined()
        expect(await chain.get(KeyItem, { id: n })).toBeUndefined()
        expect(await chain.get(KeyItem, { id: 2 * n })).toEqual(new KeyItem(2 * n, 'm'))
      } finally {
        await close()
      }
    })

    it('a primary key on a nullable column: the rows read with a NULL there are updated too', async () => {
      const { db, chain, memory, table, close } = await setup(kind, KeyCode, { code: 'text', tag: 'text' }, async (d, t) => {
        await d.schema
          .createTable(t)
          .addColumn('code', 'text', (c) => c.unique())
          .addColumn('tag', 'text')
          .execute()
      })
      try {
        await db
          .withoutPlugins()
          .insertInto(table)
          .values([
            { code: null, tag: 'x' },
            { code: 'a', tag: 'x' },
            { code: 'b', tag: 'y' },
          ])
          .execute()
        expect(await chain.get(KeyCode, { code: 'a' })).toEqual(new KeyCode('a', 'x'))
        const result = await db.updateTable(table).set({ code: sql`coalesce(code, 'n') || '2'` }).where('tag', '=', 'x').executeTakeFirst()
        expect(result.numUpdatedRows).toBe(2n)
        expect(await db.selectFrom(table).select('code').orderBy('code').execute()).toEqual([{ code: 'a2' }, { code: 'b' }, { code: 'n2' }])
        expect(await memory.get(KeyCode, { code: 'a' })).toBeUndefined()
        expect(await chain.get(KeyCode, { code: 'a' })).toBeUndefined()
      } finally {
        await close()
      }
    })

    it('columns of domain types (one NOT NULL) and a char(n) key: the rows read are updated', async (ctx) => {
      if (kind !== 'postgres') return ctx.skip('does not apply: SQLite has no domain types')
      const domain = `key_dom_${process.pid}_${counter + 1}`
      const { db, chain, memory, table, rows, close } = await setup(
        kind,
        KeyPair,
        { org: 'integer', slug: 'text', tag: 'text' },
        async (d, t) => {
          await sql`create domain ${sql.id(domain)} as text not null`.execute(d)
          await sql`create domain ${sql.id(`${domain}_int`)} as integer check (value > 0)`.execute(d)
          await d.schema
            .createTable(t)
            .addColumn('org', sql.id(`${domain}_int`))
            .addColumn('slug', sql`char(4)`)
            .addColumn('tag', sql.id(domain))
            .addPrimaryKeyConstraint(`${t}_pk`, ['org', 'slug'])
            .execute()
        },
      )
      try {
        await chain.batchPut([new KeyPair(1, 'ab  ', 'x'), new KeyPair(2, 'cd  ', 'y')])
        expect(await chain.get(KeyPair, { org: 1, slug: 'ab  ' })).toEqual(new KeyPair(1, 'ab  ', 'x'))
        const result = await db
          .updateTable(table)
          .set((eb) => ({ org: eb('org', '+', 10) }))
          .where('tag', '=', 'x')
          .executeTakeFirst()
        expect(result.numUpdatedRows).toBe(1n)
        expect(await rows()).toEqual([
          { org: 2, slug: 'cd  ', tag: 'y' },
          { org: 11, slug: 'ab  ', tag: 'x' },
        ])
        expect(await memory.get(KeyPair, { org: 1, slug: 'ab  ' })).toBeUndefined()
        expect(await chain.get(KeyPair, { org: 11, slug: 'ab  ' })).toEqual(new KeyPair(11, 'ab  ', 'x'))
      } finally {
        await db.withoutPlugins().schema.dropTable(table).ifExists().execute()
        await sql`drop domain if exists ${sql.id(domain)}, ${sql.id(`${domain}_int`)}`.execute(db.withoutPlugins())
        await close()
      }
    })

    it('an UPDATE of primary keys that matches no row updates nothing and resolves as it would without the plugin', async () => {
      const { db, chain, table, rows, close } = await setup(kind, KeyItem, { id: 'integer', tag: 'text' })
      try {
        await chain.batchPut([new KeyItem(1, 'keep')])
        const none = db.updateTable(table).set({ id: 50 }).where('tag', '=', 'nothing')
        expect((await none.executeTakeFirst()).numUpdatedRows).toBe(0n)
        expect(await none.returning('id').execute()).toEqual([])
        // a WHERE with OR keeps its meaning once the plugin's condition is added
        const result = await db
          .updateTable(table)
          .set((eb) => ({ id: eb('id', '+', 10) }))
          .where((eb) => eb('tag', '=', 'nothing').or('id', '=', 1))
          .executeTakeFirst()
        expect(result.numUpdatedRows).toBe(1n)
        expect(await rows()).toEqual([{ id: 11, tag: 'keep' }])
        expect(await chain.get(KeyItem, { id: 1 })).toBeUndefined()
      } finally {
        await close()
      }
    })

    it('a write through another Kysely with the plugin but a dialect it did not wrap is refused before it runs', async () => {
      const { db, chain, memory, sync, sqlStore, raw, table, rows, close } = await setup(kind, KeyItem, { id: 'integer', tag: 'text' })
      const other = new Kysely<any>({ dialect: raw(), plugins: [sync] })
      try {
        await chain.batchPut([new KeyItem(1, 'keep'), new KeyItem(2, 'two')])
        await chain.get(KeyItem, { id: 1 })
        await expect(other.updateTable(table).set({ tag: 'changed' }).where('id', '=', 1).execute()).rejects.toThrow(
          /CacheSyncPlugin: dialect not wrapped/,
        )
        await expect(other.deleteFrom(table).where('id', '=', 2).execute()).rejects.toThrow(/CacheSyncPlugin: dialect not wrapped/)
        await expect(other.insertInto(table).values({ id: 3, tag: 'three' }).returning('id').execute()).rejects.toThrow(
          /CacheSyncPlugin: dialect not wrapped/,
        )
        // a Kysely whose dialect another plugin wrapped
        const mixed = new Kysely<any>({ dialect: new CacheSyncPlugin({ chain, models: [KeyItem] }).wrapDialect(raw()), plugins: [sync] })
        await expect(mixed.updateTable(table).set({ tag: 'changed' }).where('id', '=', 1).execute()).rejects.toThrow(
          /CacheSyncPlugin: dialect not wrapped/,
        )
        await mixed.destroy()
        const storeDb = (await sqlStore.kysely()).withPlugin(sync)
        await expect(storeDb.updateTable(table).set({ tag: 'changed' }).where('id', '=', 1).execute()).rejects.toThrow(
          /CacheSyncPlugin: dialect not wrapped/,
        )
        expect(await rows()).toEqual([
          { id: 1, tag: 'keep' },
          { id: 2, tag: 'two' },
        ])
        expect(await memory.get(KeyItem, { id: 1 })).toEqual(new KeyItem(1, 'keep'))
        // reads through it, and its writes without the plugin, run as usual
        expect(await other.selectFrom(table).select('id').orderBy('id').execute()).toEqual([{ id: 1 }, { id: 2 }])
        await other.withoutPlugins().updateTable(table).set({ tag: 'two 2' }).where('id', '=', 2).execute()
        // the wrapped Kysely: followed, and compile() shows the statement as built
        const update = db.updateTable(table).set({ tag: 'changed' }).where('id', '=', 1)
        expect(update.compile().sql).not.toMatch(/stockpyle|CacheSyncPlugin/)
        await update.execute()
        expect(await memory.get(KeyItem, { id: 1 })).toBeUndefined()
        expect(await chain.get(KeyItem, { id: 1 })).toEqual(new KeyItem(1, 'changed'))
        // a write nested in another statement (not followed) still runs through the wrapped Kysely
        if (kind === 'postgres') {
          const moved = await db
            .with('d', (qb) => qb.deleteFrom(table).where('id', '=', 2).returning('id'))
            .selectFrom('d')
            .select('id')
            .execute()
          expect(moved).toEqual([{ id: 2 }])
          const inRaw = db.deleteFrom(table).where('id', '=', 2).returning('id')
          expect((await sql`with d as (${inRaw}) select id from d`.execute(db)).rows).toEqual([])
        }
      } finally {
        await other.destroy()
        await close()
      }
    })

    it('a target that is not a table is refused with a message that reads right', async () => {
      const { db, table, close } = await setup(kind, KeyItem, { id: 'integer', tag: 'text' })
      try {
        const update = db
          .updateTable(sql`${sql.raw(table)}`.as('t'))
          .set({ tag: 'x' })
          .where('t.id', '=', 1)
        await expect(update.execute()).rejects.toSatisfy(unsupported)
        await expect(update.execute()).rejects.toThrow(/cache sync: an UPDATE whose target is not a table \(an AliasNode: /)
        await expect(db.deleteFrom(sql`${sql.raw(table)}`.as('t')).execute()).rejects.toThrow(
          /cache sync: a DELETE whose target is not a table \(an AliasNode: /,
        )
        await expect(db.deleteFrom(sql`${sql.raw(table)}` as never).execute()).rejects.toThrow(
          /cache sync: a DELETE whose target is not a table \(a RawNode: /,
        )
      } finally {
        await close()
      }
    })
  })
}
