import assert from 'node:assert/strict'
import type { StoreCapabilities } from '../../index.js'
import type { ConformanceCase } from '../case.js'
import { ConformanceUser } from '../models.js'
import { makeUser } from './fixtures.js'

const stale = (c: StoreCapabilities) =>
  !c.expires
    ? 'the store keeps objects until deleted (capabilities.expires is false)'
    : c.staleReads
      ? undefined
      : 'the store keeps no expired copies (capabilities.staleReads is false)'

/**
 * `batchGetEntries(model, lookups, { stale: true })`: what a chain with `serveStale` answers while its
 * database fails — expired copies within the store's `grace`, and nothing a delete removed.
 */
export const staleReadCases: readonly ConformanceCase[] = [
  {
    name: 'stale reads: an expired copy comes back only with { stale: true }, only within grace, never after a delete',
    options: { lifetime: 1, grace: 10 },
    unless: stale,
    async body(store, { clock }) {
      const t0 = clock.now()
      const [kept, deleted] = [makeUser(720), makeUser(721)]
      await store.batchPut([kept, deleted])
      clock.advance(1500)
      assert.equal(await store.get(ConformanceUser, { id: 720 }), undefined, 'an expired copy is a miss for a normal read')
      assert.deepEqual(await store.batchGetEntries(ConformanceUser, [{ id: 720 }]), [undefined], 'also through batchGetEntries')
      const [byId, byEmail, absent] = await store.batchGetEntries(ConformanceUser, [{ id: 720 }, { email: kept.email }, { id: 729 }], {
        stale: true,
      })
      assert.deepEqual(byId?.value, kept, 'a stale read returns the expired copy')
      assert.deepEqual(byEmail?.value, kept, 'by alternate key too')
      assert.ok(byId.expiresAt !== undefined && byId.expiresAt <= t0 + 1000, `with its real expiry, got ${byId.expiresAt}`)
      assert.equal(absent, undefined)
      await store.delete(deleted)
      assert.deepEqual(await store.batchGetEntries(ConformanceUser, [{ id: 721 }], { stale: true }), [undefined], 'a delete ends it')
      clock.advance(10_000)
      assert.deepEqual(await store.batchGetEntries(ConformanceUser, [{ id: 720 }], { stale: true }), [undefined], 'past the grace')
    },
  },
]
