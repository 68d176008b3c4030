import assert from 'node:assert/strict'
import { isStockpyleError, type LeaseCapable, type Store, type StoreCapabilities } from '../../index.js'
import type { ConformanceCase } from '../case.js'
import { ConformanceUser } from '../models.js'
import { makeUser } from './fixtures.js'

const leases = (c: StoreCapabilities) => (c.leases ? undefined : 'the store hands out no leases (capabilities.leases is false)')

function leasing(store: Store): LeaseCapable {
  const s = store as Store & Partial<LeaseCapable>
  assert.ok(
    typeof s.acquireLeases === 'function' && typeof s.releaseLeases === 'function' && typeof s.leasesHeld === 'function',
    'a store that declares capabilities.leases has acquireLeases, releaseLeases and leasesHeld',
  )
  return s as LeaseCapable
}

/**
 * Leases: a chain takes one on a lookup that missed, so that among processes missing it at once one
 * reads the database and the others wait for its copy.
 */
export const leaseCases: readonly ConformanceCase[] = [
  {
    name: 'leases: one holder per lookup until released; leasesHeld tells; release is idempotent; data is untouched',
    unless: leases,
    async body(store) {
      const l = leasing(store)
      assert.deepEqual(await l.acquireLeases(ConformanceUser, [{ id: 740 }, { id: 741 }], 5000), [true, true])
      assert.deepEqual(await l.acquireLeases(ConformanceUser, [{ id: 740 }, { id: 742 }], 5000), [false, true], 'a held lease is refused')
      assert.deepEqual(await l.leasesHeld(ConformanceUser, [{ id: 740 }, { id: 741 }, { id: 742 }, { id: 743 }]), [true, true, true, false])
      await l.releaseLeases(ConformanceUser, [{ id: 740 }])
      await l.releaseLeases(ConformanceUser, [{ id: 740 }, { id: 749 }])
      assert.deepEqual(await l.leasesHeld(ConformanceUser, [{ id: 740 }, { id: 741 }]), [false, true])
      assert.deepEqual(await l.acquireLeases(ConformanceUser, [{ id: 740 }], 5000), [true], 'a released lease can be taken again')
      assert.equal(await store.get(ConformanceUser, { id: 740 }), undefined, 'a lease is not an object')
      const user = makeUser(741)
      await store.put(user)
      assert.deepEqual(await store.get(ConformanceUser, { id: 741 }), user, 'a lease does not stop a put')
      assert.deepEqual(await l.leasesHeld(ConformanceUser, [{ id: 741 }]), [true], 'nor does a put end the lease')
      await l.releaseLeases(ConformanceUser, [{ id: 740 }, { id: 741 }, { id: 742 }])
      assert.deepEqual(
        await l.leasesHeld(ConformanceUser, [{ id: 740 }, { id: 741 }, { id: 742 }]),
        [false, false, false],
        'one releaseLeases call gives back every lease it names',
      )
    },
  },
  {
    name: 'leases: a lease is no longer held once its ttl has passed',
    unless: leases,
    async body(store, { clock }) {
      const l = leasing(store)
      assert.deepEqual(await l.acquireLeases(ConformanceUser, [{ id: 744 }], 1000), [true])
      clock.advance(999)
      assert.deepEqual(await l.leasesHeld(ConformanceUser, [{ id: 744 }]), [true])
      clock.advance(2)
      assert.deepEqual(await l.leasesHeld(ConformanceUser, [{ id: 744 }]), [false], 'held for ttlMs, not longer')
    },
  },
  {
    // A backend whose server drops keys on its own clock (Redis PX) still holds the lease when only the
    // manual clock moved: such a store skips this case and checks it in real time.
    name: 'leases: a lease whose ttl has passed can be taken again (an add over an expired lease lands)',
    unless: leases,
    async body(store, { clock }) {
      const l = leasing(store)
      assert.deepEqual(await l.acquireLeases(ConformanceUser, [{ id: 745 }, { id: 747 }], 1000), [true, true])
      clock.advance(1001)
      assert.deepEqual(
        await l.acquireLeases(ConformanceUser, [{ id: 745 }, { id: 747 }], 1000),
        [true, true],
        'a lease whose ttl has passed holds nothing: it is taken again',
      )
      assert.deepEqual(await l.acquireLeases(ConformanceUser, [{ id: 745 }], 1000), [false], 'and held by the new holder')
      await l.releaseLeases(ConformanceUser, [{ id: 745 }, { id: 747 }])
    },
  },
  {
    name: 'leases: a ttlMs that is not a number of ms in (0, 2^31) is refused with InvalidArgumentError, and no lease is taken',
    unless: leases,
    async body(store) {
      const l = leasing(store)
      for (const ttl of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, 1e20, '2000', undefined, null]) {
        await assert.rejects(
          l.acquireLeases(ConformanceUser, [{ id: 746 }], ttl as number),
          (err: unknown) => isStockpyleError(err, 'E_INVALID_ARGUMENT') && /ttlMs/.test(err.message),
          `ttlMs ${String(ttl)}`,
        )
      }
      assert.deepEqual(await l.leasesHeld(ConformanceUser, [{ id: 746 }]), [false], 'nothing was taken')
      assert.deepEqual(await l.acquireLeases(ConformanceUser, [{ id: 746 }], 2 ** 31 - 1), [true], 'the longest ttlMs is taken')
      await l.releaseLeases(ConformanceUser, [{ id: 746 }])
    },
  },
]
