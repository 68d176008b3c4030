import assert from 'node:assert/strict'
import { isStockpyleError, type Store } from '../../index.js'
import type { ConformanceCase } from '../case.js'
import { ConformanceUser } from '../models.js'
import { makeUser } from './fixtures.js'

const invalidates = (_: unknown, store: Store) =>
  typeof store.batchInvalidate === 'function' ? undefined : 'the store has no batchInvalidate (optional: a chain passes over it)'

/**
 * `batchInvalidate`: how a chain (and a database watcher) drops copies of objects that changed
 * elsewhere. A cache drops them under every key; a store that owns the truth keeps them.
 */
export const invalidationCases: readonly ConformanceCase[] = [
  {
    name: 'batchInvalidate drops the copies under every key (a store that owns the truth keeps them); others stay',
    unless: invalidates,
    async body(store) {
      const [a, b, c] = [makeUser(730), makeUser(731), makeUser(732)]
      await store.batchPut([a, b, c])
      const invalidate = store.batchInvalidate?.bind(store) as NonNullable<Store['batchInvalidate']>
      await invalidate(ConformanceUser, [{ email: a.email }, { id: 731 }, { id: 739 }])
      await invalidate(ConformanceUser, [])
      await assert.rejects(invalidate(ConformanceUser, [{ nope: 1 } as never]), (err) => isStockpyleError(err, 'E_UNKNOWN_KEY'))
      const got = await store.batchGet(ConformanceUser, [
        { id: 730 },
        { email: a.email },
        { orgId: a.orgId, slug: a.slug },
        { id: 731 },
        { email: b.email },
        { id: 732 },
      ])
      if (store.capabilities.authoritative) assert.deepEqual(got, [a, a, a, b, b, c], 'a store that owns the truth keeps its objects')
      else assert.deepEqual(got, [undefined, undefined, undefined, undefined, undefined, c], 'invalidated by any key, gone by every key')
    },
  },
  {
    name: 'after batchInvalidate, a backfill of a copy read before it does not land',
    unless: (c, store) =>
      invalidates(c, store) ?? (c.tombstones ? undefined : 'invalidations leave no tombstone (capabilities.tombstones is false)'),
    async body(store) {
      const user = makeUser(733)
      await store.put(user)
      await store.batchInvalidate?.(ConformanceUser, [{ id: 733 }])
      await store.batchPutEntries([{ value: user, expiresAt: undefined }], { backfill: true })
      assert.equal(await store.get(ConformanceUser, { id: 733 }), undefined)
      assert.equal(await store.get(ConformanceUser, { email: user.email }), undefined)
    },
  },
  {
    name: 'a late repair (batchInvalidate with an old changedAt) drops the copies and keeps a tombstone the key holds',
    unless: (c, store) =>
      invalidates(c, store) ??
      (c.tombstones ? undefined : 'invalidations leave no tombstone (capabilities.tombstones is false)') ??
      (c.addOnlyBackfills ? undefined : 'the store writes backfills like puts (capabilities.addOnlyBackfills is false)'),
    async body(store) {
      const [kept, deleted] = [makeUser(734), makeUser(735)]
      await store.batchPut([kept, deleted])
      await store.delete(deleted) // e.g. another process's delete, later than the change being repaired
      const longAgo = { changedAt: 1 } // a change whose tombstone would have ended long ago
      await store.batchInvalidate?.(ConformanceUser, [{ email: kept.email }, { id: 735 }], longAgo)
      assert.equal(await store.get(ConformanceUser, { id: 734 }), undefined, 'the copy is gone')
      assert.equal(await store.get(ConformanceUser, { orgId: kept.orgId, slug: kept.slug }), undefined)
      await store.batchPutEntries([{ value: deleted, expiresAt: undefined }], { backfill: true })
      assert.equal(await store.get(ConformanceUser, { id: 735 }), undefined, 'the delete’s tombstone still refuses a copy read before it')
    },
  },
]
