import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect, sql } from 'kysely'
import { afterAll, describe, expect, it } from 'vitest'
import { ChainedStore, keys, ProcessMemoryStore } from '../../src/index.js'
import { CacheSyncPlugin, SqlStore } from '../../src/stores/sql/index.js'
import { selectedStores } from '../harness/servers.js'

// CacheSyncPlugin on SQLite and the keys only SQLite has: the rowid's names (`rowid`, `_rowid_`, `oid`,
// unless the table declares a column of that name) and primary keys stored as REAL.

/** An integer primary key (the rowid's alias). */
class RowItem {
  static readonly stockpyleName = 'KyselySyncRowItem'
  static readonly stockpyleKeys = keys('id')
  constructor(
    public id: number,
    public tag: string,
  ) {}
}

/** A table with a declared column named `oid`, which hides the rowid's alias of that name. */
class RowOrder {
  static readonly stockpyleName = 'KyselySyncRowOrder'
  static readonly stockpyleKeys = keys('id')
  constructor(
    public id: number,
    public oid: string,
    public v: string,
  ) {}
}

/** A primary key stored as REAL. */
class RowReal {
  static readonly stockpyleName = 'KyselySyncRowReal'
  static readonly stockpyleKeys = keys('k')
  constructor(
    public k: number,
    public v: string,
  ) {}
}

const stores = selectedStores()
const dir = mkdtempSync(join(tmpdir(), 'stockpyle-kysely-sync-rowid-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let counter = 0

/** A SQLite file with `ddl` run (its table named `t`), a chain (memory → SqlStore) on it, and the app's Kysely with the plugin. */
async function setup(model: typeof RowItem | typeof RowOrder | typeof RowReal, ddl: string, options: { safeIntegers?: boolean } = {}) {
  const file = join(dir, `rowid${++counter}.db`)
  const raw = new Database(file)
  raw.exec(ddl)
  raw.close()
  const sqlStore = new SqlStore({ url: `sqlite:${file}` }, { tables: { [model.stockpyleName]: 't' } })
  const memory = new ProcessMemoryStore()
  const chain = new ChainedStore([memory, sqlStore])
  const sync = new CacheSyncPlugin({ chain, models: [model] })
  const database = new Database(file)
  if (options.safeIntegers === true) database.defaultSafeIntegers(true)
  const db = new Kysely<any>({ dialect: sync.wrapDialect(new SqliteDialect({ database })), plugins: [sync] })
  const rows = () => new Database(file).prepare('select * from t order by 1').all()
  const close = async () => {
    await db.destroy()
    await chain.close()
  }
  return { db, chain, memory, rows, close }
}

describe.runIf(stores.has('sqlite'))('CacheSyncPlugin on SQLite: rowid aliases', () => {
  const items = 'create table t (id integer primary key, tag text)'
  for (const column of ['rowid', '_rowid_', 'OID']) {
    it(`an UPDATE setting \`${column}\` (the INTEGER PRIMARY KEY's alias) invalidates the old primary key`, async () => {
      const { db, chain, memory, rows, close } = await setup(RowItem, items)
      try {
        await chain.batchPut([new RowItem(1, 'one'), new RowItem(2, 'two')])
        expect(await chain.get(RowItem, { id: 1 })).toEqual(new RowItem(1, 'one'))
        const result = await db
          .updateTable('t')
          .set({ [column]: 5 })
          .where('id', '=', 1)
          .executeTakeFirst()
        expect(result.numUpdatedRows).toBe(1n)
        expect(rows()).toEqual([
          { id: 2, tag: 'two' },
          { id: 5, tag: 'one' },
        ])
        expect(await memory.get(RowItem, { id: 1 })).toBeUndefined()
        expect(await chain.get(RowItem, { id: 1 })).toBeUndefined()
        expect(await chain.get(RowItem, { id: 5 })).toEqual(new RowItem(5, 'one'))
      } finally {
        await close()
      }
    })
  }

  it('an upsert whose DO UPDATE sets the rowid is refused before it runs', async () => {
    const { db, chain, rows, close } = await setup(RowItem, items)
    try {
      await chain.batchPut([new RowItem(1, 'one')])
      await expect(
        db
          .insertInto('t')
          .values({ id: 1, tag: 'again' })
          .onConflict((oc) => oc.column('id').doUpdateSet({ rowid: 9 } as never))
          .execute(),
      ).rejects.toThrow(/an upsert that sets the primary-key column `rowid`/)
      expect(rows()).toEqual([{ id: 1, tag: 'one' }])
    } finally {
      await close()
    }
  })

  it('a declared column named `oid` is that column, not the rowid: an upsert setting it runs and invalidates', async () => {
    const { db, chain, memory, rows, close } = await setup(RowOrder, 'create table t (id integer primary key, oid text, v text)')
    try {
      await chain.batchPut([new RowOrder(1, 'o-1', 'a')])
      expect(await chain.get(RowOrder, { id: 1 })).toEqual(new RowOrder(1, 'o-1', 'a'))
      await db
        .insertInto('t')
        .values({ id: 1, oid: 'o-2', v: 'b' })
        .onConflict((oc) => oc.column('id').doUpdateSet({ OID: sql`excluded.oid`, v: sql`excluded.v` } as never))
        .execute()
      expect(rows()).toEqual([{ id: 1, oid: 'o-2', v: 'b' }])
      expect(await memory.get(RowOrder, { id: 1 })).toBeUndefined()
      expect(await chain.get(RowOrder, { id: 1 })).toEqual(new RowOrder(1, 'o-2', 'b'))
      await db.updateTable('t').set({ oid: 'o-3' }).where('id', '=', 1).execute()
      expect(await chain.get(RowOrder, { id: 1 })).toEqual(new RowOrder(1, 'o-3', 'b'))
      // (any case, as SQLite compares names); the other names still alias the rowid
      await expect(
        db
          .insertInto('t')
          .values({ id: 1, oid: 'o-4', v: 'c' })
          .onConflict((oc) => oc.column('id').doUpdateSet({ _rowid_: 9 } as never))
          .execute(),
      ).rejects.toThrow(/an upsert that sets the primary-key column `_rowid_`/)
    } finally {
      await close()
    }
  })
})

describe.runIf(stores.has('sqlite'))('CacheSyncPlugin on SQLite: primary keys beyond ±2^53', () => {
  for (const type of ['real', '(no type: stored as it comes)']) {
    it(`a primary key of type ${type} holding REALs beyond 2^53 (exact as numbers): an UPDATE of it runs and invalidates the old keys`, async () => {
      const big = 1.2345678901234568e18
      const ddl = `create table t (k ${type === 'real' ? 'real ' : ''}primary key, v text); insert into t values (1e20, 'x'), (${big.toExponential()}, 'x'), (2.5, 'y')`
      const { db, chain, memory, rows, close } = await setup(RowReal, ddl)
      try {
        expect(await chain.get(RowReal, { k: 1e20 })).toEqual(new RowReal(1e20, 'x'))
        expect(await chain.get(RowReal, { k: big })).toEqual(new RowReal(big, 'x'))
        const result = await db.updateTable('t').set({ k: 3e20 }).where('v', '=', 'x').where('k', '>', 1e19).executeTakeFirst()
        expect(result.numUpdatedRows).toBe(1n)
        await db.updateTable('t').set({ k: 4e18 }).where('k', '=', big).execute()
        expect(rows()).toEqual([
          { k: 2.5, v: 'y' },
          { k: 4e18, v: 'x' },
          { k: 3e20, v: 'x' },
        ])
        expect(await memory.get(RowReal, { k: 1e20 })).toBeUndefined()
        expect(await chain.get(RowReal, { k: 1e20 })).toBeUndefined()
        expect(await chain.get(RowReal, { k: big })).toBeUndefined()
      } finally {
        await close()
      }
    })
  }

  it('an INTEGER beyond 2^53 that the driver rounds is refused before the UPDATE runs; read as bigint it runs', async () => {
    const ddl = "create table t (id integer primary key, tag text); insert into t values (9007199254740993, 'big')"
    const rounded = await setup(RowItem, ddl)
    try {
      await expect(rounded.db.updateTable('t').set({ id: 5 }).where('tag', '=', 'big').execute()).rejects.toThrow(/safeIntegers/)
    } finally {
      await rounded.close()
    }
    const exact = await setup(RowItem, ddl, { safeIntegers: true })
    try {
      const result = await exact.db.updateTable('t').set({ id: 5 }).where('tag', '=', 'big').executeTakeFirst()
      expect(result.numUpdatedRows).toBe(1n)
    } finally {
      await exact.close()
    }
  })
})
