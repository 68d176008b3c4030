import assert from 'node:assert/strict'
import {
  ChainedStore,
  type CorruptEntryError,
  canonicalKey,
  isStockpyleError,
  KeyValueStore,
  ProcessMemoryStore,
  type StoreEntry,
} from '../../index.js'
import type { ConformanceCase } from '../case.js'
import { ConformanceUser } from '../models.js'
import { makeUser } from './fixtures.js'

/** Bytes no stockpyle store writes: another program's value under the store's prefix. */
const FOREIGN = Buffer.from('not a stockpyle entry')

/** What a store holds under its keys: a corrupt entry fails only its own lookups. */
export const corruptEntryCases: readonly ConformanceCase[] = [
  {
    name: 'a corrupt entry fails only its own lookup: batchGet rejects with CorruptEntryError naming it in `failed`, the others answered in `results`; a chain over the store reads only that lookup below',
    unless: (_, store) =>
      store instanceof KeyValueStore
        ? undefined
        : 'the store is not a KeyValueStore: the suite cannot place bytes that are not an entry under its keys',
    async body(store) {
      const { backend, keyPrefix } = store as KeyValueStore
      const users = [makeUser(600), makeUser(601), makeUser(602)]
      const lookups = users.map((u) => ({ id: u.id }))
      await store.batchPut(users)
      const key = keyPrefix + canonicalKey(ConformanceUser, { id: 601 })
      const [held] = await backend.getMany([key])
      assert.ok(held !== undefined, `the store holds nothing under ${key}, its key for {id: 601}`)
      await backend.setMany([{ key, value: FOREIGN, expiresAt: undefined }])
      await assert.rejects(store.batchGet(ConformanceUser, lookups), (err: unknown) => {
        assert.ok(isStockpyleError(err, 'E_CORRUPT_ENTRY'), `expected E_CORRUPT_ENTRY, got ${String(err)}`)
        const corrupt = err as CorruptEntryError<StoreEntry>
        assert.ok(corrupt.message.includes(key), `the message names the corrupt key ${key}: ${corrupt.message}`)
        assert.deepEqual(corrupt.failed, [1], 'failed: the position of the corrupt lookup alone')
        assert.deepEqual(
          corrupt.results?.map((e) => e?.value),
          [users[0], undefined, users[2]],
          'results: what the other lookups found',
        )
        return true
      })
      // the entry was replaced (by a tombstone, as a delete does): no longer corrupt, a miss
      assert.deepEqual(await store.batchGet(ConformanceUser, lookups), [users[0], undefined, users[2]])
      // a chain over the store answers every lookup, and reads the layer below for the corrupt one only
      await backend.setMany([{ key, value: FOREIGN, expiresAt: undefined }])
      const db = new ProcessMemoryStore({ name: 'db' })
      await db.batchPut(users)
      const chain = new ChainedStore([store, db], { name: 'corrupt-chain' })
      try {
        assert.deepEqual(await chain.batchGet(ConformanceUser, lookups), users)
        const [cache, below] = chain.stats()
        assert.deepEqual([cache?.hits, cache?.errors], [2, 1], 'the store answered two lookups; the corrupt entry was reported once')
        assert.deepEqual([below?.hits, below?.misses], [1, 0], 'the layer below was read for the corrupt lookup only')
      } finally {
        await chain.close()
      }
    },
  },
]
