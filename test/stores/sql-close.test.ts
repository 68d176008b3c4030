/**
 * `SqlStore.close()` lets the calls and transactions begun before it complete, then destroys the
 * connection it created: before, they failed on the destroyed connection with E_STOCKPYLE ("The
 * database connection is not open") and nothing was written. Calls after close() reject with
 * StoreClosedError.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { isStockpyleError } from '../../src/core/errors.js'
import type { Model } from '../../src/core/model.js'
import { createTable, SqlStore } from '../../src/stores/sql/index.js'
import { ConformanceUser, conformanceTables, makeUser } from '../../src/testing/index.js'

const dir = mkdtempSync(join(tmpdir(), 'stockpyle-sql-close-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

it('calls and a transaction begun before close() complete; calls after it reject with StoreClosedError', async () => {
  const url = `sqlite://${join(dir, 'close.db')}`
  const sql = new SqlStore({ url })
  for (const t of conformanceTables) await createTable(sql, t.model as Model, { table: t.table, columns: t.columns })
  await sql.put(makeUser(1))
  const put = sql.batchPut([makeUser(2), makeUser(3)])
  const get = sql.get(ConformanceUser, { id: 1 })
  const removed = sql.delete(makeUser(1))
  const tx = sql.transaction(async (t) => {
    await t.put(makeUser(4))
    return 'committed'
  })
  const closing = sql.close()
  await expect(put).resolves.toBeUndefined()
  await expect(get).resolves.toEqual(makeUser(1))
  await expect(removed).resolves.toBeUndefined()
  await expect(tx).resolves.toBe('committed')
  await closing
  const after = await sql.get(ConformanceUser, { id: 2 }).catch((e: unknown) => e)
  expect(isStockpyleError(after, 'E_STORE_CLOSED')).toBe(true)

  const reopened = new SqlStore({ url })
  try {
    expect(await reopened.batchGet(ConformanceUser, [{ id: 1 }, { id: 2 }, { id: 3 }, { id: 4 }])).toEqual([
      undefined,
      makeUser(2),
      makeUser(3),
      makeUser(4),
    ])
  } finally {
    await reopened.close()
  }
})
