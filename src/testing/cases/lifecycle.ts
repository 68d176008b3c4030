import assert from 'node:assert/strict'
import { isStockpyleError } from '../../index.js'
import type { ConformanceCase } from '../case.js'
import { ConformanceUser } from '../models.js'
import { makeUser } from './fixtures.js'

/** close() and what follows it. */
export const lifecycleCases: readonly ConformanceCase[] = [
  {
    name: 'close is idempotent and every call after it rejects with StoreClosedError',
    async body(store) {
      await store.put(makeUser(600))
      await store.close()
      await store.close()
      await store[Symbol.asyncDispose]()
      const closed = (err: unknown) => isStockpyleError(err, 'E_STORE_CLOSED')
      await assert.rejects(store.get(ConformanceUser, { id: 600 }), closed)
      await assert.rejects(store.batchGet(ConformanceUser, [{ id: 600 }]), closed)
      await assert.rejects(store.put(makeUser(601)), closed)
      await assert.rejects(store.batchPut([makeUser(601)]), closed)
      await assert.rejects(store.delete(makeUser(600)), closed)
      await assert.rejects(store.batchDelete([makeUser(600)]), closed)
    },
  },
]
