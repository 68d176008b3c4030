import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeEach, describe, it } from 'vitest'
import { ChainedStore, type Model, ProcessMemoryStore } from '../../src/index.js'
import { createTable, SqlStore, type SqlStoreOptions } from '../../src/stores/sql/index.js'
import { conformanceTables, runStoreConformance } from '../../src/testing/index.js'
import { selectedStores } from '../harness/servers.js'

const common = { describe, test: it, beforeEach, afterEach }
const dir = mkdtempSync(join(tmpdir(), 'stockpyle-sql-conformance-'))
let files = 0
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** A store on a fresh SQLite database holding the conformance tables. */
async function freshStore(url: string, options: SqlStoreOptions = {}): Promise<SqlStore> {
  const store = new SqlStore({ url }, options)
  for (const t of conformanceTables) await createTable(store, t.model as Model, { table: t.table, columns: t.columns })
  return store
}

describe.runIf(selectedStores().has('sqlite'))('sqlite', () => {
  runStoreConformance({
    ...common,
    name: 'SqlStore (SQLite :memory:)',
    createStore: () => freshStore('sqlite::memory:'),
  })

  runStoreConformance({
    ...common,
    name: 'SqlStore (SQLite file, camelCase columns)',
    createStore: () => freshStore(`sqlite:${join(dir, `db${++files}.sqlite`)}`, { camelCase: true }),
  })
})

describe.runIf(selectedStores().has('sqlite'))('sqlite behind a cache', () => {
  runStoreConformance({
    ...common,
    name: 'ChainedStore([ProcessMemoryStore, SqlStore (SQLite :memory:)])',
    createStore: async (o) => new ChainedStore([new ProcessMemoryStore(o), await freshStore('sqlite::memory:')]),
  })
})
