import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import {
  CamelCasePlugin,
  type Dialect,
  HandleEmptyInListsPlugin,
  Kysely,
  type KyselyPlugin,
  PostgresDialect,
  replaceWithNoncontingentExpression,
  SqliteDialect,
  sql,
} from 'kysely'
import pg from 'pg'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { ChainedStore, isStockpyleError, keys, ProcessMemoryStore } from '../../src/index.js'
import { CacheSyncPlugin, createTable, SqlStore } from '../../src/stores/sql/index.js'
import { selectedStores } from '../harness/servers.js'

// CacheSyncPlugin next to other Kysely plugins: the plugin follows each statement as the database gets
// it (after every plugin), whatever the order of the plugins.

class SyncMember {
  static readonly stockpyleName = 'KyselySyncMember'
  static readonly stockpyleKeys = keys('memberId', 'email')
  constructor(
    public memberId: number,
    public email: string,
    public displayName: string,
  ) {}
}

/** A model whose key column is named exactly like its attribute (`"orgId"`), as a camelCase store finds it. */
class SyncOrg {
  static readonly stockpyleName = 'KyselySyncOrg'
  static readonly stockpyleKeys = keys('orgId')
  constructor(
    public orgId: number,
    public displayName: string,
  ) {}
}

/** A model with its primary key only: nothing but the old primary key can invalidate the old copy. */
class SyncSlot {
  static readonly stockpyleName = 'KyselySyncSlot'
  static readonly stockpyleKeys = keys('slotId')
  constructor(
    public slotId: number,
    public label: string,
  ) {}
}

const stores = selectedStores()
const dir = mkdtempSync(join(tmpdir(), 'stockpyle-kysely-sync-plugins-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let counter = 0

function envs(): [string, () => { url: string; dialect: () => Dialect }][] {
  const out: [string, () => { url: string; dialect: () => Dialect }][] = []
  if (stores.has('sqlite')) {
    out.push([
      'SQLite',
      () => {
        const file = join(dir, `plugins${++counter}.db`)
        return { url: `sqlite:${file}`, dialect: () => new SqliteDialect({ database: new Database(file) }) }
      },
    ])
  }
  if (stores.has('postgres')) {
    out.push([
      'PostgreSQL',
      () => {
        const url = inject('postgresUrl')
        return { url, dialect: () => new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 3 }) }) }
      },
    ])
  }
  return out
}

for (const [label, makeEnv] of envs()) {
  describe(`CacheSyncPlugin with other plugins on ${label}`, () => {
    /** A camelCase SqlStore and chain, and the app's Kysely with `plugins` (`'sync'` marks the plugin's place). */
    async function setup(plugins: (KyselyPlugin | 'sync')[]) {
      const env = makeEnv()
      const table = `sync_members_${process.pid}_${++counter}`
      const sqlStore = new SqlStore({ url: env.url }, { tables: { KyselySyncMember: table }, camelCase: true })
      await createTable(sqlStore, SyncMember, { columns: { memberId: 'integer', email: 'text', displayName: 'text' } })
      const memory = new ProcessMemoryStore()
      const chain = new ChainedStore([memory, sqlStore])
      const sync = new CacheSyncPlugin({ chain, models: [SyncMember] })
      const db = new Kysely<any>({ dialect: sync.wrapDialect(env.dialect()), plugins: plugins.map((p) => (p === 'sync' ? sync : p)) })
      await chain.batchPut([new SyncMember(1, 'a@x', 'Ada'), new SyncMember(2, 'b@x', 'Bob')])
      for (const memberId of [1, 2]) {
        const m = (await chain.get(SyncMember, { memberId })) as SyncMember
        await chain.get(SyncMember, { email: m.email })
      }
      const cached = (lookup: { memberId: number } | { email: string }) => memory.get(SyncMember, lookup as { memberId: number })
      const close = async () => {
        await db.schema.dropTable(table).execute()
        await db.destroy()
        await chain.close()
      }
      return { db, chain, table, cached, close }
    }

    for (const order of ['[CamelCasePlugin, sync]', '[sync, CamelCasePlugin]'] as const) {
      it(`${order}: updates, primary-key updates, inserts and deletes invalidate what they touched; results come back camelCased without the plugin's columns`, async () => {
        const camel = new CamelCasePlugin()
        const { db, chain, table, cached, close } = await setup(order === '[CamelCasePlugin, sync]' ? [camel, 'sync'] : ['sync', camel])
        try {
          const updated = await db.updateTable(table).set({ displayName: 'Ada Lovelace' }).where('memberId', '=', 1).executeTakeFirst()
          expect(updated.numUpdatedRows).toBe(1n)
          expect(await cached({ memberId: 1 })).toBeUndefined()
          expect((await chain.get(SyncMember, { memberId: 1 }))?.displayName).toBe('Ada Lovelace')

          // a primary-key update: the old key is read first and invalidated too
          await db.updateTable(table).set({ memberId: 20 }).where('memberId', '=', 2).execute()
          expect(await cached({ memberId: 2 })).toBeUndefined()
          expect(await chain.get(SyncMember, { memberId: 2 })).toBeUndefined()
          expect((await chain.get(SyncMember, { email: 'b@x' }))?.memberId).toBe(20)

          // the statement's own RETURNING, camelCased, without the plugin's columns
          const rows = await db
            .updateTable(table)
            .set({ displayName: 'Bo' })
            .where('memberId', '=', 20)
            .returning(['memberId', 'displayName'])
            .execute()
          expect(rows).toEqual([{ memberId: 20, displayName: 'Bo' }])
          expect((await chain.get(SyncMember, { memberId: 20 }))?.displayName).toBe('Bo')

          expect(await chain.get(SyncMember, { memberId: 3 })).toBeUndefined()
          await db.insertInto(table).values({ memberId: 3, email: 'c@x', displayName: 'Cy' }).execute()
          expect((await chain.get(SyncMember, { memberId: 3 }))?.displayName).toBe('Cy')

          const deleted = await db.deleteFrom(table).where('memberId', '=', 1).executeTakeFirst()
          expect(deleted.numDeletedRows).toBe(1n)
          expect(await cached({ email: 'a@x' })).toBeUndefined()
          expect(await chain.get(SyncMember, { memberId: 1 })).toBeUndefined()

          // an upsert that sets the primary key (camelCase name) is refused before it runs
          await expect(
            db
              .insertInto(table)
              .values({ memberId: 30, email: 'c@x', displayName: 'Z' })
              .onConflict((oc) => oc.column('email').doUpdateSet({ memberId: 30 }))
              .execute(),
          ).rejects.toSatisfy((e: unknown) => isStockpyleError(e, 'E_UNSUPPORTED'))
        } finally {
          await close()
        }
      })
    }

    for (const order of ['[CamelCasePlugin, sync]', '[sync, CamelCasePlugin]'] as const) {
      it(`${order}: an UPDATE of a camelCased primary-key column is one (the old key is invalidated)`, async () => {
        const env = makeEnv()
        const table = `sync_slots_${process.pid}_${++counter}`
        const sqlStore = new SqlStore({ url: env.url }, { tables: { KyselySyncSlot: table }, camelCase: true })
        await createTable(sqlStore, SyncSlot, { columns: { slotId: 'integer', label: 'text' } })
        const memory = new ProcessMemoryStore()
        const chain = new ChainedStore([memory, sqlStore])
        const sync = new CacheSyncPlugin({ chain, models: [SyncSlot] })
        const camel = new CamelCasePlugin()
        const db = new Kysely<any>({
          dialect: sync.wrapDialect(env.dialect()),
          plugins: order === '[CamelCasePlugin, sync]' ? [camel, sync] : [sync, camel],
        })
        try {
          await chain.put(new SyncSlot(2, 'two'))
          await chain.get(SyncSlot, { slotId: 2 })
          await db.transaction().execute(async (trx) => {
            await trx.updateTable(table).set({ slotId: 20 }).where('slotId', '=', 2).execute()
            expect((await memory.get(SyncSlot, { slotId: 2 }))?.label).toBe('two') // not before COMMIT
          })
          expect(await memory.get(SyncSlot, { slotId: 2 })).toBeUndefined()
          expect(await chain.get(SyncSlot, { slotId: 2 })).toBeUndefined()
          expect(await chain.get(SyncSlot, { slotId: 20 })).toEqual(new SyncSlot(20, 'two'))
        } finally {
          await db.schema.dropTable(table).execute()
          await db.destroy()
          await chain.close()
        }
      })
    }

    for (const compile of [true, false]) {
      it(`a plugin after the sync plugin, ${compile ? 'with' : 'without'} compile() before execute(): inside a transaction the caches change only after COMMIT`, async () => {
        const { db: base, chain, table, cached, close } = await setup(['sync'])
        const db = base.withPlugin(new HandleEmptyInListsPlugin({ strategy: replaceWithNoncontingentExpression }))
        try {
          await db.transaction().execute(async (trx) => {
            const q = trx.updateTable(table).set({ display_name: 'new' }).where('member_id', '=', 1)
            if (compile) q.compile() // e.g. for a debug log of q.compile().sql
            await q.execute()
            expect((await cached({ memberId: 1 }))?.displayName).toBe('Ada') // not before COMMIT
          })
          expect(await cached({ memberId: 1 })).toBeUndefined()
          expect((await chain.get(SyncMember, { memberId: 1 }))?.displayName).toBe('new')

          // the same builder compiled and run several times outside a transaction: each run invalidates at once
          const q = db.updateTable(table).set({ display_name: 'again' }).where('member_id', 'in', [1, 2])
          if (compile) q.compile()
          await Promise.all([q.execute(), q.execute()])
          expect(await cached({ memberId: 1 })).toBeUndefined()
          expect(await cached({ memberId: 2 })).toBeUndefined()
          expect((await chain.get(SyncMember, { email: 'b@x' }))?.displayName).toBe('again')
        } finally {
          await close()
        }
      })
    }

    it('a camelCase store whose key column is named like its attribute ("orgId"): the plugin returns that column, and writes invalidate', async () => {
      const env = makeEnv()
      const table = `sync_orgs_${process.pid}_${++counter}`
      const sqlStore = new SqlStore({ url: env.url }, { tables: { KyselySyncOrg: table }, camelCase: true })
      const memory = new ProcessMemoryStore()
      const chain = new ChainedStore([memory, sqlStore])
      const sync = new CacheSyncPlugin({ chain, models: [SyncOrg] })
      const db = new Kysely<any>({ dialect: sync.wrapDialect(env.dialect()), plugins: [sync] })
      await sql`create table ${sql.table(table)} (${sql.id('orgId')} integer primary key, display_name text)`.execute(db.withoutPlugins())
      try {
        await chain.batchPut([new SyncOrg(1, 'One'), new SyncOrg(2, 'Two')])
        for (const orgId of [1, 2, 3]) await chain.get(SyncOrg, { orgId })
        expect((await memory.get(SyncOrg, { orgId: 1 }))?.displayName).toBe('One')

        await db.updateTable(table).set({ display_name: 'Uno' }).where('orgId', '=', 1).execute()
        expect(await memory.get(SyncOrg, { orgId: 1 })).toBeUndefined()
        expect(await chain.get(SyncOrg, { orgId: 1 })).toEqual(new SyncOrg(1, 'Uno'))

        await db.transaction().execute(async (trx) => {
          await trx.updateTable(table).set({ orgId: 20 }).where('orgId', '=', 2).execute()
          await trx.insertInto(table).values({ orgId: 3, display_name: 'Three' }).execute()
          expect((await memory.get(SyncOrg, { orgId: 2 }))?.displayName).toBe('Two') // not before COMMIT
        })
        expect(await memory.get(SyncOrg, { orgId: 2 })).toBeUndefined() // the old primary key too
        expect(await chain.get(SyncOrg, { orgId: 2 })).toBeUndefined()
        expect(await chain.get(SyncOrg, { orgId: 20 })).toEqual(new SyncOrg(20, 'Two'))
        expect(await chain.get(SyncOrg, { orgId: 3 })).toEqual(new SyncOrg(3, 'Three')) // its cached miss was invalidated

        await db.deleteFrom(table).where('orgId', '=', 1).execute()
        expect(await chain.get(SyncOrg, { orgId: 1 })).toBeUndefined()
      } finally {
        await db.schema.dropTable(table).execute()
        await db.destroy()
        await chain.close()
      }
    })
  })
}
