import assert from 'node:assert/strict'
import type { StoreCapabilities } from '../../index.js'
import type { ConformanceCase } from '../case.js'
import { ConformanceUser } from '../models.js'
import { makeUser } from './fixtures.js'

const expires = (c: StoreCapabilities) => (c.expires ? undefined : 'the store keeps objects until deleted (capabilities.expires is false)')

/**
 * `batchPutEntries` caps each entry at its `expiresAt`: a chain backfills a copy with the remaining
 * lifetime of the layer it came from, and the copy must not outlive it.
 */
export const expiryCapCases: readonly ConformanceCase[] = [
  {
    name: 'batchPutEntries: an entry expires at its expiresAt when that comes before the lifetime, and never outlives the lifetime',
    options: { lifetime: 60 },
    unless: expires,
    async body(store, { clock }) {
      const t0 = clock.now()
      const [capped, uncapped, later] = [makeUser(700), makeUser(701), makeUser(702)]
      await store.batchPutEntries([
        { value: capped, expiresAt: t0 + 1500 },
        { value: uncapped, expiresAt: undefined },
        { value: later, expiresAt: t0 + 120_000 },
      ])
      const [entry, uncappedEntry, laterEntry] = await store.batchGetEntries(ConformanceUser, [{ id: 700 }, { id: 701 }, { id: 702 }])
      assert.ok(entry !== undefined, 'the capped entry is stored')
      assert.ok(entry.expiresAt !== undefined && entry.expiresAt <= t0 + 1500, `the capped entry reports its cap, got ${entry.expiresAt}`)
      assert.ok(
        uncappedEntry?.expiresAt !== undefined && uncappedEntry.expiresAt <= t0 + 60_000,
        `the uncapped entry reports the end of its lifetime, t0 + 60 s at the latest, got ${uncappedEntry?.expiresAt}`,
      )
      assert.ok(laterEntry?.expiresAt !== undefined && laterEntry.expiresAt <= t0 + 60_000, 'a later cap does not lengthen the lifetime')
      clock.advance(1499)
      assert.deepEqual(await store.get(ConformanceUser, { email: capped.email }), capped, 'a hit until its expiresAt')
      clock.advance(2)
      assert.equal(await store.get(ConformanceUser, { id: 700 }), undefined, 'expired at its expiresAt (by primary key)')
      assert.equal(await store.get(ConformanceUser, { email: capped.email }), undefined, 'expired at its expiresAt (by alternate key)')
      assert.deepEqual(await store.batchGet(ConformanceUser, [{ id: 701 }, { id: 702 }]), [uncapped, later], 'the others live on')
      clock.advance(60_000)
      assert.deepEqual(await store.batchGet(ConformanceUser, [{ id: 701 }, { id: 702 }]), [undefined, undefined], 'the lifetime ends both')
    },
  },
  {
    name: 'batchPutEntries: an entry whose expiresAt has passed is not stored, and the older copy is gone',
    options: { lifetime: 60 },
    unless: expires,
    async body(store, { clock }) {
      const user = makeUser(703)
      await store.put(user)
      const newer = makeUser(703)
      newer.name = 'written already expired'
      await store.batchPutEntries([{ value: newer, expiresAt: clock.now() - 1 }])
      assert.equal(await store.get(ConformanceUser, { id: 703 }), undefined)
      assert.equal(await store.get(ConformanceUser, { email: user.email }), undefined)
    },
  },
  {
    name: 'an entry written by put reports the end of its lifetime as its expiresAt',
    options: { lifetime: 60 },
    unless: expires,
    async body(store, { clock }) {
      const t0 = clock.now()
      const user = makeUser(704)
      await store.put(user)
      const [byId, byEmail] = await store.batchGetEntries(ConformanceUser, [{ id: 704 }, { email: user.email }])
      for (const [entry, how] of [
        [byId, 'by primary key'],
        [byEmail, 'by alternate key'],
      ] as const) {
        assert.ok(entry !== undefined, `the entry is found ${how}`)
        assert.deepEqual(entry.value, user, `the entry found ${how} is the object`)
        // a chain caps what it copies from this layer at this instant: undefined would let a copy outlive it
        assert.ok(
          entry.expiresAt !== undefined && entry.expiresAt <= t0 + 60_000,
          `the entry read ${how} reports when its lifetime ends, t0 + 60 s at the latest, got ${entry.expiresAt}`,
        )
      }
    },
  },
]
