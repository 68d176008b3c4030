import { join } from 'node:path'
import Database from 'better-sqlite3'
import { type Dialect, Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely'
import pg from 'pg'
import { describe, expect, inject, it } from 'vitest'
import { ChainedStore, keys, ProcessMemoryStore } from '../../src/index.js'
import { CacheSyncPlugin, createTable, SqlStore } from '../../src/stores/sql/index.js'
import { type Kind, scratchDir, selectedKinds, unsupported } from './kysely-sync-env.js'

// CacheSyncPlugin and comments a write ends with (`.modifyEnd(sql\`-- trace\`)`): what the plugin
// appends (its RETURNING, its mark) is not commented out with them.

class NoteUser {
  static readonly stockpyleName = 'KyselySyncNoteUser'
  static readonly stockpyleKeys = keys('id', 'email')
  constructor(
    public id: number,
    public email: string,
    public name: string,
  ) {}
}

const dir = scratchDir('kysely-sync-comments')
let counter = 0
const kinds = selectedKinds()

/** A chain (memory → SqlStore) with users 1 and 2 cached by every key, the app's Kysely with the plugin, and one whose dialect it did not wrap. */
async function setup(kind: Kind) {
  const table = `note_users_${process.pid}_${++counter}`
  let url: string
  let dialect: () => Dialect
  const pools: pg.Pool[] = []
  if (kind === 'sqlite') {
    const file = join(dir, `comments${counter}.db`)
    url = `sqlite:${file}`
    dialect = () => new SqliteDialect({ database: new Database(file) })
  } else {
    url = inject('postgresUrl')
    dialect = () => {
      const pool = new pg.Pool({ connectionString: url, max: 2 })
      pools.push(pool)
      return new PostgresDialect({ pool })
    }
  }
  const sqlStore = new SqlStore({ url }, { tables: { KyselySyncNoteUser: table } })
  await createTable(sqlStore, NoteUser, { columns: { id: 'integer', email: 'text', name: 'text' } })
  const memory = new ProcessMemoryStore()
  const chain = new ChainedStore([memory, sqlStore])
  const sync = new CacheSyncPlugin({ chain, models: [NoteUser] })
  const db = new Kysely<any>({ dialect: sync.wrapDialect(dialect()), plugins: [sync] })
  const unwrapped = new Kysely<any>({ dialect: dialect(), plugins: [sync] })
  await chain.batchPut([new NoteUser(1, 'a@x', 'Ada'), new NoteUser(2, 'b@x', 'Bob')])
  for (const id of [1, 2]) {
    const u = (await chain.get(NoteUser, { id })) as NoteUser
    await chain.get(NoteUser, { email: u.email })
  }
  const rows = () => db.withoutPlugins().selectFrom(table).selectAll().orderBy('id').execute()
  const close = async () => {
    await db.withoutPlugins().schema.dropTable(table).ifExists().execute()
    await unwrapped.destroy()
    await db.destroy()
    await chain.close()
  }
  return { db, unwrapped, chain, memory, table, rows, close }
}

for (const [label, kind] of kinds) {
  describe(`CacheSyncPlugin on ${label}: a write ending with a comment`, () => {
    it('a line comment: the write is followed and its old copies invalidated (by every key)', async () => {
      const { db, chain, memory, table, rows, close } = await setup(kind)
      try {
        const result = await db
          .updateTable(table)
          .set({ name: 'Bea', email: 'q@x' })
          .where('id', '=', 2)
          .modifyEnd(sql`-- trace=abc`)
          .executeTakeFirst()
        expect(result.numUpdatedRows).toBe(1n)
        expect(await memory.get(NoteUser, { id: 2 })).toBeUndefined()
        expect(await chain.get(NoteUser, { id: 2 })).toEqual(new NoteUser(2, 'q@x', 'Bea'))
        expect(await chain.get(NoteUser, { email: 'b@x' })).toBeUndefined()
        // an UPDATE of primary keys (its SELECT of old keys too) and a DELETE
        await db.updateTable(table).set({ id: 7 }).where('id', '=', 2).modifyEnd(sql.raw('-- moved')).execute()
        expect(await chain.get(NoteUser, { id: 2 })).toBeUndefined()
        await db.deleteFrom(table).where('id', '=', 1).modifyEnd(sql`-- gone`).execute()
        expect(await memory.get(NoteUser, { id: 1 })).toBeUndefined()
        expect(await chain.get(NoteUser, { id: 1 })).toBeUndefined()
        expect(await rows()).toEqual([{ id: 7, email: 'q@x', name: 'Bea' }])
        // the statement's own RETURNING, before the comment
        const returned = await db
          .insertInto(table)
          .values({ id: 3, email: 'c@x', name: 'Cy' })
          .returning('name')
          .modifyEnd(sql`-- new`)
          .execute()
        expect(returned).toEqual([{ name: 'Cy' }])
        // a block comment that is closed is followed too
        await chain.get(NoteUser, { id: 3 })
        await db.updateTable(table).set({ name: 'Cyd' }).where('id', '=', 3).modifyEnd(sql`/* app='x' */`).execute()
        expect(await memory.get(NoteUser, { id: 3 })).toBeUndefined()
      } finally {
        await close()
      }
    })

    it('a line comment does not hide the mark: through a dialect the plugin did not wrap the write is refused', async () => {
      const { unwrapped, memory, table, rows, close } = await setup(kind)
      try {
        await expect(
          unwrapped.updateTable(table).set({ name: 'Zed' }).where('id', '=', 1).modifyEnd(sql`-- trace=abc`).execute(),
        ).rejects.toThrow(/CacheSyncPlugin: dialect not wrapped/)
        await expect(unwrapped.deleteFrom(table).modifyEnd(sql.raw('-- all')).execute()).rejects.toThrow(
          /CacheSyncPlugin: dialect not wrapped/,
        )
        expect((await rows()).map((r) => r.name)).toEqual(['Ada', 'Bob'])
        expect(await memory.get(NoteUser, { id: 1 })).toEqual(new NoteUser(1, 'a@x', 'Ada'))
      } finally {
        await close()
      }
    })

    it('a block comment left open (which SQLite reads to the end) is refused before the write runs', async () => {
      const { db, unwrapped, table, rows, close } = await setup(kind)
      try {
        for (const k of [db, unwrapped]) {
          await expect(k.deleteFrom(table).modifyEnd(sql.raw('/*')).execute()).rejects.toSatisfy(unsupported)
          await expect(k.updateTable(table).set({ name: 'Zed' }).modifyEnd(sql`/* a */ /* b`).execute()).rejects.toThrow(
            /a block comment it leaves open/,
          )
        }
        expect((await rows()).map((r) => r.name)).toEqual(['Ada', 'Bob'])
        // not a comment: in a string, or after a line comment
        await db.updateTable(table).set({ name: 'Ann' }).where('id', '=', 1).modifyEnd(sql`-- /*`).execute()
        expect((await rows()).map((r) => r.name)).toEqual(['Ann', 'Bob'])
      } finally {
        await close()
      }
    })
  })
}
