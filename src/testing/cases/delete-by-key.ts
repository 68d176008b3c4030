import assert from 'node:assert/strict'
import type { Store } from '../../index.js'
import { isStockpyleError } from '../../index.js'
import type { ConformanceCase } from '../case.js'
import { ConformanceCar, ConformanceUser, ConformanceVehicle } from '../models.js'
import { makeCar, makeUser } from './fixtures.js'

async function assertGone(store: Store, user: ConformanceUser): Promise<void> {
  assert.equal(await store.get(ConformanceUser, { id: user.id }), undefined, `id ${user.id} is gone`)
  assert.equal(await store.get(ConformanceUser, { email: user.email }), undefined, `email ${user.email} is gone`)
  assert.equal(await store.get(ConformanceUser, { orgId: user.orgId, slug: user.slug }), undefined, `slug ${user.slug} is gone`)
}

/** Delete by key (DESIGN §7.13): `delete(Model, lookup)` and `batchDelete(Model, lookups)`. */
export const deleteByKeyCases: readonly ConformanceCase[] = [
  {
    name: 'delete(Model, lookup) by primary, alternate or composite key removes the object under every key',
    async body(store) {
      const users = [makeUser(700), makeUser(701), makeUser(702)]
      const bystander = makeUser(703)
      await store.batchPut([...users, bystander])
      const [byId, byEmail, bySlug] = users as [ConformanceUser, ConformanceUser, ConformanceUser]
      await store.delete(ConformanceUser, { id: byId.id })
      await store.delete(ConformanceUser, { email: byEmail.email })
      await store.delete(ConformanceUser, { slug: bySlug.slug, orgId: bySlug.orgId })
      for (const user of users) await assertGone(store, user)
      assert.deepEqual(await store.get(ConformanceUser, { email: bystander.email }), bystander)
    },
  },
  {
    name: 'delete by key of an absent object is a no-op; deleting twice is a no-op',
    async body(store) {
      const user = makeUser(710)
      await store.put(user)
      await store.delete(ConformanceUser, { id: 404_404 })
      await store.delete(ConformanceUser, { email: 'nobody@example.com' })
      await store.batchDelete(ConformanceUser, [])
      assert.deepEqual(await store.get(ConformanceUser, { id: 710 }), user)
      await store.delete(ConformanceUser, { email: user.email })
      await store.delete(ConformanceUser, { email: user.email })
      await assertGone(store, user)
    },
  },
  {
    name: 'batchDelete(Model, lookups) mixes key kinds, duplicates and absent lookups',
    async body(store) {
      const users = [makeUser(720), makeUser(721), makeUser(722), makeUser(723)]
      await store.batchPut(users)
      const [a, b, c, kept] = users as [ConformanceUser, ConformanceUser, ConformanceUser, ConformanceUser]
      await store.batchDelete(ConformanceUser, [
        { id: a.id },
        { email: b.email },
        { orgId: c.orgId, slug: c.slug },
        { id: a.id },
        { email: a.email },
        { id: 999_999 },
      ])
      for (const user of [a, b, c]) await assertGone(store, user)
      assert.deepEqual(await store.get(ConformanceUser, { orgId: kept.orgId, slug: kept.slug }), kept)
    },
  },
  {
    name: 'delete by a changed alternate key is a no-op; by the current one it removes the object',
    async body(store) {
      const user = makeUser(730)
      await store.put(user)
      const oldEmail = user.email
      user.email = 'renamed730@example.com'
      await store.put(user)
      await store.delete(ConformanceUser, { email: oldEmail })
      assert.deepEqual(await store.get(ConformanceUser, { id: 730 }), user)
      await store.delete(ConformanceUser, { email: user.email })
      await assertGone(store, user)
    },
  },
  {
    name: 'batchDeleteByKey resolves to the removed objects, one slot per lookup',
    async body(store) {
      if (store.batchDeleteByKey === undefined) {
        console.info(`[stockpyle conformance] ${store.name}: no batchDeleteByKey (optional for custom stores)`)
        return
      }
      const users = [makeUser(740), makeUser(741)]
      await store.batchPut(users)
      const [a, b] = users as [ConformanceUser, ConformanceUser]
      const removed = await store.batchDeleteByKey(ConformanceUser, [{ email: a.email }, { id: 404 }, { orgId: b.orgId, slug: b.slug }])
      assert.equal(removed.length, 3)
      assert.deepEqual(removed, [a, undefined, b])
      assert.ok(removed[0] instanceof ConformanceUser)
      await assertGone(store, a)
      await assertGone(store, b)
      assert.deepEqual(await store.batchDeleteByKey(ConformanceUser, []), [])
    },
  },
  {
    name: 'a bad lookup rejects with UnknownKeyError or InvalidKeyError and deletes nothing',
    async body(store) {
      const user = makeUser(750)
      await store.put(user)
      const typed = (c: string) => (err: unknown) => {
        assert.ok(isStockpyleError(err, c as never), `expected ${c}, got ${String(err)}`)
        return true
      }
      await assert.rejects(store.batchDelete(ConformanceUser, [{ id: 750 }, { id: 1, email: 'x' } as never]), typed('E_UNKNOWN_KEY'))
      await assert.rejects(store.batchDelete(ConformanceUser, [{ id: 750 }, { id: Number.NaN }]), typed('E_INVALID_KEY'))
      await assert.rejects((store.delete as (m: unknown) => Promise<void>)(ConformanceUser), typed('E_UNKNOWN_KEY'))
      assert.deepEqual(await store.get(ConformanceUser, { id: 750 }), user)
    },
  },
  {
    name: 'polymorphic: delete(Base, baseKey) removes the stored subclass instance under every key',
    options: { polymorphic: true },
    unless: (c) =>
      c.polymorphic ? undefined : 'the store does not index objects under ancestor models (capabilities.polymorphic is false)',
    async body(store) {
      const car = makeCar(760)
      await store.put(car)
      await store.delete(ConformanceVehicle, { plate: car.plate })
      assert.equal(await store.get(ConformanceVehicle, { plate: car.plate }), undefined)
      assert.equal(await store.get(ConformanceCar, { vin: car.vin }), undefined)
      assert.equal(await store.get(ConformanceCar, { plate: car.plate }), undefined)
    },
  },
]
