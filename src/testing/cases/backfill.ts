import assert from 'node:assert/strict'
import type { StoreCapabilities } from '../../index.js'
import type { ConformanceCase } from '../case.js'
import { ConformanceUser } from '../models.js'
import { makeUser } from './fixtures.js'

const addOnly = (c: StoreCapabilities) =>
  c.addOnlyBackfills ? undefined : 'the store writes backfills like puts (capabilities.addOnlyBackfills is false)'
const tombstones = (c: StoreCapabilities) =>
  c.tombstones ? undefined : 'deletes leave no tombstone that backfills respect (capabilities.tombstones is false)'

/**
 * `batchPutEntries(entries, { backfill: true })`: a chain copies what it read from a lower layer into
 * the layers above; such a copy may be older than what a concurrent write stored, so it lands only
 * where the key holds nothing.
 */
export const backfillCases: readonly ConformanceCase[] = [
  {
    name: 'a backfill lands where the key holds nothing, under every key, capped at its expiresAt',
    options: { lifetime: 60 },
    unless: addOnly,
    async body(store, { clock }) {
      const user = makeUser(710)
      await store.batchPutEntries([{ value: user, expiresAt: clock.now() + 5000 }], { backfill: true })
      assert.deepEqual(await store.get(ConformanceUser, { id: 710 }), user)
      assert.deepEqual(await store.get(ConformanceUser, { email: user.email }), user)
      assert.deepEqual(await store.get(ConformanceUser, { orgId: user.orgId, slug: user.slug }), user)
      clock.advance(5001)
      assert.equal(await store.get(ConformanceUser, { id: 710 }), undefined, 'the backfill expires at its expiresAt')
    },
  },
  {
    name: 'a backfill never replaces a newer value, under any key',
    unless: addOnly,
    async body(store) {
      const older = makeUser(711)
      const newer = makeUser(711)
      newer.name = 'newer'
      newer.email = 'moved711@example.com'
      await store.put(newer)
      await store.batchPutEntries([{ value: older, expiresAt: undefined }], { backfill: true })
      assert.deepEqual(await store.get(ConformanceUser, { id: 711 }), newer)
      assert.deepEqual(await store.get(ConformanceUser, { email: newer.email }), newer)
      assert.equal(await store.get(ConformanceUser, { email: older.email }), undefined, 'the older copy answers by no key')
    },
  },
  {
    name: 'a backfill never lands over the tombstone of a recent delete; a put does',
    unless: (c) => addOnly(c) ?? tombstones(c),
    async body(store) {
      const user = makeUser(712)
      await store.put(user)
      await store.delete(user)
      await store.batchPutEntries([{ value: user, expiresAt: undefined }], { backfill: true })
      assert.equal(await store.get(ConformanceUser, { id: 712 }), undefined, 'the copy read before the delete stays out')
      assert.equal(await store.get(ConformanceUser, { email: user.email }), undefined)
      await store.put(user)
      assert.deepEqual(await store.get(ConformanceUser, { id: 712 }), user, 'a put replaces the tombstone at once')
    },
  },
]
