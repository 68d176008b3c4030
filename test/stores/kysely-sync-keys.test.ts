import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { type CompiledQuery, type DatabaseConnection, type Dialect, Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely'
import pg from 'pg'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { ChainedStore, isStockpyleError, keys, ProcessMemoryStore } from '../../src/index.js'
import { CacheSyncPlugin, createTable, SqlStore } from '../../src/stores/sql/index.js'
import { selectedStores } from '../harness/servers.js'

// CacheSyncPlugin and primary keys: which rows an UPDATE of primary keys changes (exactly those whose
// old keys it read), SQLite's rowid aliases, and writes through a Kysely whose dialect was not wrapped.

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

const stores = selectedStores()
const dir = mkdtempSync(join(tmpdir(), 'stockpyle-kysely-sync-keys-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let counter = 0
const unsupported = (e: unknown) => isStockpyleError(e, 'E_UNSUPPORTED')

type Kind = 'sqlite' | 'postgres'
const kinds: [string, Kind][] = [
  ...(stores.has('sqlite') ? [['SQLite', 'sqlite'] as [string, Kind]] : []),
  ...(stores.has('postgres') ? [['PostgreSQL', 'postgres'] as [string, Kind]] : []),
]

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

describe.runIf(stores.has('sqlite'))('CacheSyncPlugin on SQLite: rowid aliases', () => {
  for (const column of ['rowid', '_rowid_', 'OID']) {
    it(`an UPDATE setting \`${column}\` (the INTEGER PRIMARY KEY's alias) invalidates the old primary key`, async () => {
      const { db, chain, memory, table, rows, close } = await setup('sqlite', KeyItem, { id: 'integer', tag: 'text' })
      try {
        await chain.batchPut([new KeyItem(1, 'one'), new KeyItem(2, 'two')])
        expect(await chain.get(KeyItem, { id: 1 })).toEqual(new KeyItem(1, 'one'))
        const result = await db
          .updateTable(table)
          .set({ [column]: 5 })
          .where('id', '=', 1)
          .executeTakeFirst()
        expect(result.numUpdatedRows).toBe(1n)
        expect(await rows()).toEqual([
          { id: 2, tag: 'two' },
          { id: 5, tag: 'one' },
        ])
        expect(await memory.get(KeyItem, { id: 1 })).toBeUndefined()
        expect(await chain.get(KeyItem, { id: 1 })).toBeUndefined()
        expect(await chain.get(KeyItem, { id: 5 })).toEqual(new KeyItem(5, 'one'))
      } finally {
        await close()
      }
    })
  }

  it('an upsert whose DO UPDATE sets the rowid is refused before it runs', async () => {
    const { db, chain, table, rows, close } = await setup('sqlite', KeyItem, { id: 'integer', tag: 'text' })
    try {
      await chain.batchPut([new KeyItem(1, 'one')])
      await expect(
        db
          .insertInto(table)
          .values({ id: 1, tag: 'again' })
          .onConflict((oc) => oc.column('id').doUpdateSet({ rowid: 9 } as never))
          .execute(),
      ).rejects.toThrow(/an upsert that sets the primary-key column `rowid`/)
      expect(await rows()).toEqual([{ id: 1, tag: 'one' }])
    } finally {
      await close()
    }
  })
})
