import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { type DatabaseConnection, type Dialect, type Driver, Kysely, type QueryResult, SqliteDialect } from 'kysely'
import { afterAll, describe, expect, it } from 'vitest'
import { ChainedStore, keys, ProcessMemoryStore } from '../../src/index.js'
import { CacheSyncPlugin, createTable, SqlStore } from '../../src/stores/sql/index.js'
import { selectedStores } from '../harness/servers.js'

// A streamed write (`.stream()` of an UPDATE … RETURNING). Kysely's own SQLite driver streams SELECTs
// only, and PostgreSQL streams need the `pg-cursor` package, which the project does not depend on; so
// these tests run on SQLite through Kysely's SQLite driver whose connections also stream statements
// with RETURNING, `chunkSize` rows at a time (better-sqlite3's `iterate`), as a PostgreSQL cursor does.

class StreamItem {
  static readonly stockpyleName = 'KyselySyncStreamItem'
  static readonly stockpyleKeys = keys('id')
  constructor(
    public id: number,
    public v: number,
  ) {}
}

/** Kysely's SQLite dialect on `file`, whose connections stream any statement that returns rows, in chunks. */
function streamingSqlite(file: string): Dialect {
  const database = new Database(file)
  const base = new SqliteDialect({ database })
  const streaming = (inner: DatabaseConnection): DatabaseConnection => ({
    executeQuery: (query) => inner.executeQuery(query),
    async *streamQuery<R>(query: { sql: string; parameters: readonly unknown[] }, chunkSize = 1): AsyncIterableIterator<QueryResult<R>> {
      let chunk: R[] = []
      for (const row of database.prepare(query.sql).iterate(...query.parameters)) {
        chunk.push(row as R)
        if (chunk.length >= chunkSize) {
          yield { rows: chunk }
          chunk = []
        }
      }
      if (chunk.length > 0) yield { rows: chunk }
    },
  })
  return {
    createAdapter: () => base.createAdapter(),
    createQueryCompiler: () => base.createQueryCompiler(),
    createIntrospector: (db) => base.createIntrospector(db),
    createDriver: (): Driver => {
      const driver = base.createDriver()
      return {
        init: () => driver.init(),
        acquireConnection: async () => streaming(await driver.acquireConnection()),
        beginTransaction: (c, settings) => driver.beginTransaction(c, settings),
        commitTransaction: (c) => driver.commitTransaction(c),
        rollbackTransaction: (c) => driver.rollbackTransaction(c),
        releaseConnection: (c) => driver.releaseConnection(c),
        destroy: () => driver.destroy(),
      }
    },
  }
}

const dir = mkdtempSync(join(tmpdir(), 'stockpyle-kysely-sync-stream-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let counter = 0
const ids = [1, 2, 3, 4, 5]

describe.runIf(selectedStores().has('sqlite'))('CacheSyncPlugin and a streamed UPDATE … RETURNING (SQLite)', () => {
  async function setup() {
    const file = join(dir, `stream${++counter}.db`)
    const table = 'stream_items'
    const sqlStore = new SqlStore({ url: `sqlite:${file}` }, { tables: { KyselySyncStreamItem: table } })
    await createTable(sqlStore, StreamItem, { columns: { id: 'integer', v: 'integer' } })
    const memory = new ProcessMemoryStore()
    const chain = new ChainedStore([memory, sqlStore])
    const sync = new CacheSyncPlugin({ chain, models: [StreamItem] })
    const db = new Kysely<any>({ dialect: sync.wrapDialect(streamingSqlite(file)), plugins: [sync] })
    await chain.batchPut(ids.map((id) => new StreamItem(id, 0)))
    await chain.batchGet(
      StreamItem,
      ids.map((id) => ({ id })),
    )
    const cachedValues = async () => (await memory.batchGet(StreamItem, ids.map((id) => ({ id })) as { id: number }[])).map((o) => o?.v)
    const close = async () => {
      await db.destroy()
      await chain.close()
    }
    return { db, chain, table, cachedValues, close }
  }

  it('every chunk comes back without the plugin’s columns, and every row is invalidated', async () => {
    const { db, chain, table, cachedValues, close } = await setup()
    try {
      const seen: unknown[] = []
      for await (const row of db.updateTable(table).set({ v: 1 }).returning(['id', 'v']).stream(2)) seen.push(row)
      expect(seen).toEqual(ids.map((id) => ({ id, v: 1 })))
      expect(await cachedValues()).toEqual(ids.map(() => undefined))
      expect((await chain.batchGet(StreamItem, ids.map((id) => ({ id })) as { id: number }[])).map((o) => o?.v)).toEqual(ids.map(() => 1))
    } finally {
      await close()
    }
  })

  it('a consumer that stops after the first chunk: the rows it did not read were changed too, and are invalidated', async () => {
    const { db, chain, table, cachedValues, close } = await setup()
    try {
      for await (const row of db.updateTable(table).set({ v: 2 }).returning(['id']).stream(2)) {
        expect(row).toEqual({ id: 1 })
        break
      }
      expect(await cachedValues()).toEqual(ids.map(() => undefined))
      expect((await chain.get(StreamItem, { id: 5 }))?.v).toBe(2)
    } finally {
      await close()
    }
  })

  it('a streamed UPDATE of primary keys: restricted to the rows whose old keys were read, old keys invalidated', async () => {
    const { db, chain, table, cachedValues, close } = await setup()
    try {
      const seen: unknown[] = []
      const update = db
        .updateTable(table)
        .set((eb) => ({ id: eb('id', '+', 10) }))
        .where('id', '<=', 3)
        .returning(['id'])
      for await (const row of update.stream(2)) seen.push(row)
      expect(seen.sort((a: any, b: any) => a.id - b.id)).toEqual([{ id: 11 }, { id: 12 }, { id: 13 }])
      expect(await cachedValues()).toEqual([undefined, undefined, undefined, 0, 0])
      expect(await chain.get(StreamItem, { id: 1 })).toBeUndefined()
      expect((await chain.get(StreamItem, { id: 13 }))?.v).toBe(0)
    } finally {
      await close()
    }
  })

  it('inside a transaction: the streamed rows are invalidated after COMMIT', async () => {
    const { db, chain, table, cachedValues, close } = await setup()
    try {
      await db.transaction().execute(async (trx) => {
        for await (const _row of trx.updateTable(table).set({ v: 3 }).returning(['id']).stream(2)) {
          // streaming
        }
        expect(await cachedValues()).toEqual(ids.map(() => 0)) // not before COMMIT
      })
      expect(await cachedValues()).toEqual(ids.map(() => undefined))
      expect((await chain.get(StreamItem, { id: 4 }))?.v).toBe(3)
    } finally {
      await close()
    }
  })
})
