import assert from 'node:assert/strict'
import type { StoreCapabilities } from '../../index.js'
import type { ConformanceCase } from '../case.js'
import { ConformanceUser } from '../models.js'
import { makeUser } from './fixtures.js'

const addOnly = (c: StoreCapabilities) =>
  c.addOnlyBackfills ? undefined : 'the store writes backfills like puts (capabilities.addOnlyBackfills is false)'
const tombstones = (c: StoreCapabilities) =>
  c.tombstones ? undefined : 'deletes leave no tombstone that backfills respect (capabilities.tombstones is false)'
const refills = (c: StoreCapabilities) =>
  !c.staleReads
    ? 'the store keeps no expired copies (capabilities.staleReads is false)'
    : c.refillsExpired
      ? undefined
      : 'an expired copy kept for grace refuses backfills until the grace ends (capabilities.refillsExpired is false)'

/**
 * `batchPutEntries(entries, { backfill: true })`: a chain copies what it read from a lower layer into
 * the layers above; such a copy may be older than what a concurrent write stored, so it lands only
 * where the key holds nothing — or, in a store with a `grace`, only an expired copy kept for stale reads.
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
    // Like the lease case of the same kind: a server dropping keys on its own clock still holds the copy
    // when only the manual clock moved (see docs/writing-a-store.md, "Prove it").
    name: 'a backfill lands over a copy whose lifetime has passed, under every key',
    options: { lifetime: 1 },
    unless: addOnly,
    async body(store, { clock }) {
      const user = makeUser(715)
      await store.put(user)
      clock.advance(1001)
      assert.equal(await store.get(ConformanceUser, { id: 715 }), undefined, 'the put copy expired')
      const fresh = makeUser(715)
      fresh.name = 'fresh'
      await store.batchPutEntries([{ value: fresh, expiresAt: clock.now() + 500 }], { backfill: true })
      assert.deepEqual(await store.get(ConformanceUser, { id: 715 }), fresh, 'the expired copy holds nothing: the backfill lands')
      assert.deepEqual(await store.get(ConformanceUser, { email: fresh.email }), fresh, 'under its alternate keys too')
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
  {
    // A lifetime of 0 seconds or a past Date means "do not cache": the put removes the copy as a delete
    // does. Review found it removed it with a plain delete: a copy read before the put (in another
    // process, or another chain over the same layer) then landed and was served for its whole lifetime.
    name: 'a put whose lifetime is already over leaves a tombstone as a delete does: a backfill of a copy read before it never lands',
    options: {
      lifetime: (obj: object) => {
        const name = (obj as ConformanceUser).name
        return name === 'uncached' ? 0 : name === 'expired' ? new Date(0) : 60
      },
    },
    unless: (c) => addOnly(c) ?? tombstones(c),
    async body(store) {
      const [held, absent] = [makeUser(716), makeUser(717)]
      await store.put(held)
      const [uncached, expired] = [makeUser(716), makeUser(717)]
      uncached.name = 'uncached' // the callback returns 0 seconds
      uncached.email = 'moved716@example.com'
      expired.name = 'expired' // the callback returns a past Date; the store held no copy
      await store.batchPut([uncached, expired])
      assert.equal(await store.get(ConformanceUser, { id: 716 }), undefined, 'the put removed the copy it replaced')
      // the copies other readers fetched from the database before the put
      await store.batchPutEntries(
        [
          { value: held, expiresAt: undefined },
          { value: absent, expiresAt: undefined },
        ],
        { backfill: true },
      )
      assert.equal(await store.get(ConformanceUser, { id: 716 }), undefined, 'the copy read before the put stays out')
      assert.equal(await store.get(ConformanceUser, { email: held.email }), undefined, 'by its alternate keys too')
      assert.equal(await store.get(ConformanceUser, { id: 717 }), undefined, 'also where the store held no copy')
      assert.equal(await store.get(ConformanceUser, { email: absent.email }), undefined)
      const cached = makeUser(716)
      await store.put(cached)
      assert.deepEqual(await store.get(ConformanceUser, { id: 716 }), cached, 'a put replaces the tombstone at once')
    },
  },
  {
    name: 'with a grace, a backfill replaces an expired copy kept for stale reads, under every key; never a live copy or a tombstone',
    options: { lifetime: 1, grace: 60 },
    unless: (c) => addOnly(c) ?? refills(c),
    async body(store, { clock }) {
      const [expired, deleted] = [makeUser(713), makeUser(714)]
      await store.batchPut([expired, deleted])
      clock.advance(1500) // both expired, kept for stale reads
      await store.delete(deleted)
      const fresh = makeUser(713)
      fresh.name = 'fresh'
      fresh.email = 'fresh713@example.com'
      await store.batchPutEntries(
        [
          { value: fresh, expiresAt: clock.now() + 5000 },
          { value: deleted, expiresAt: undefined },
        ],
        { backfill: true },
      )
      assert.deepEqual(await store.get(ConformanceUser, { id: 713 }), fresh, 'the backfill replaced the expired copy')
      assert.deepEqual(await store.get(ConformanceUser, { email: fresh.email }), fresh, 'under its alternate keys too')
      assert.equal(await store.get(ConformanceUser, { email: expired.email }), undefined, 'the expired copy answers by no key')
      if (store.capabilities.tombstones) {
        assert.equal(await store.get(ConformanceUser, { id: 714 }), undefined, 'the tombstone of the delete refused the backfill')
      }
      const other = makeUser(713)
      other.name = 'other'
      await store.batchPutEntries([{ value: other, expiresAt: undefined }], { backfill: true })
      assert.deepEqual(await store.get(ConformanceUser, { id: 713 }), fresh, 'a live copy is never replaced by a backfill')
      clock.advance(5000)
      await store.batchPutEntries([{ value: other, expiresAt: clock.now() + 5000 }], { backfill: true })
      assert.deepEqual(await store.get(ConformanceUser, { id: 713 }), other, 'once the backfilled copy expired too, the next one lands')
    },
  },
]
