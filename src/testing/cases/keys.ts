import assert from 'node:assert/strict'
import type { Store } from '../../index.js'
import { isStockpyleError } from '../../index.js'
import type { ConformanceCase } from '../case.js'
import { ConformanceUser, ConformanceVehicle } from '../models.js'
import { makeUser } from './fixtures.js'

async function missOrInvalid(store: Store, lookup: object, why: string): Promise<void> {
  try {
    assert.equal(await store.get(ConformanceUser, lookup as { id: number }), undefined, why)
  } catch (err) {
    assert.ok(isStockpyleError(err, 'E_INVALID_KEY'), `${why}: expected a miss or InvalidKeyError, got ${String(err)}`)
  }
}

/** Two key texts sharing their first 240 characters (longer than any backend key: stores hash such keys). */
const LONG_HEAD = `long ${'k'.repeat(235)}`

/**
 * Alternate keys stay truthful; key values are type-tagged and any text is a valid key; keys are exact:
 * texts differing only in case, or only after a long shared start, are different keys (a backend that
 * folds case like a case-insensitive collation, or cuts keys, answers one object for another).
 */
export const keyCases: readonly ConformanceCase[] = [
  {
    name: 'changing an alternate key: the old value misses, the new one hits',
    async body(store) {
      const user = makeUser(10)
      await store.put(user)
      const oldEmail = user.email
      const oldSlug = user.slug
      user.email = 'renamed10@example.com'
      user.slug = 'renamed-slug'
      await store.put(user)
      assert.equal(await store.get(ConformanceUser, { email: oldEmail }), undefined)
      assert.equal(await store.get(ConformanceUser, { orgId: user.orgId, slug: oldSlug }), undefined)
      assert.deepEqual(await store.get(ConformanceUser, { email: 'renamed10@example.com' }), user)
      assert.deepEqual(await store.get(ConformanceUser, { orgId: user.orgId, slug: 'renamed-slug' }), user)
      assert.deepEqual(await store.get(ConformanceUser, { id: 10 }), user)
    },
  },
  {
    name: 'delete removes keys whose values changed since the put',
    async body(store) {
      const user = makeUser(11)
      await store.put(user)
      const oldEmail = user.email
      user.email = 'changed-but-not-put@example.com'
      await store.delete(user)
      assert.equal(await store.get(ConformanceUser, { email: oldEmail }), undefined)
      assert.equal(await store.get(ConformanceUser, { id: 11 }), undefined)
    },
  },
  {
    name: 'an alternate key moved to another object answers with that object',
    async body(store) {
      const a = makeUser(12)
      const b = makeUser(13)
      await store.batchPut([a, b])
      const email = a.email
      a.email = 'a-moved@example.com'
      await store.put(a)
      b.email = email
      await store.put(b)
      assert.deepEqual(await store.get(ConformanceUser, { email }), b)
      assert.deepEqual(await store.get(ConformanceUser, { email: 'a-moved@example.com' }), a)
    },
  },
  {
    name: 'keys are type-tagged: a string lookup never finds a number key',
    async body(store) {
      await store.put(makeUser(14))
      await missOrInvalid(store, { id: '14' }, 'get({id: "14"}) after put of id 14')
    },
  },
  {
    name: 'any well-formed text is a key: spaces, separators, quotes, unicode, very long',
    async body(store) {
      const texts = ['with space', 'pipe|and=eq', 'quote\' " ; --', 'emoji 🎉 ü', 'x'.repeat(1000), '%41', '']
      const users = texts.map((text, i) => {
        const u = makeUser(20 + i)
        u.email = text
        return u
      })
      await store.batchPut(users)
      for (const u of users)
        assert.deepEqual(await store.get(ConformanceUser, { email: u.email }), u, `email ${JSON.stringify(u.email.slice(0, 20))}`)
      assert.equal(await store.get(ConformanceUser, { email: 'x'.repeat(999) }), undefined)
      assert.equal(await store.get(ConformanceUser, { email: 'A' }), undefined)
    },
  },
  {
    name: '-0 and 0 are the same key',
    async body(store) {
      const user = makeUser(0)
      await store.put(user)
      assert.deepEqual(await store.get(ConformanceUser, { id: -0 }), user)
    },
  },
  {
    name: 'string primary keys are exact: keys differing only in case, or only after a 240-character start, each read back their own object',
    async body(store) {
      const lower = new ConformanceVehicle('case-abc')
      const longOne = new ConformanceVehicle(`${LONG_HEAD}-1`)
      await store.batchPut([lower, longOne])
      assert.equal(await store.get(ConformanceVehicle, { plate: 'case-ABC' }), undefined, 'get("case-ABC") after put of "case-abc"')
      assert.equal(await store.get(ConformanceVehicle, { plate: `${LONG_HEAD}-2` }), undefined, 'a long key that differs at its end')
      const upper = new ConformanceVehicle('case-ABC')
      upper.wheels = 3
      const longTwo = new ConformanceVehicle(`${LONG_HEAD}-2`)
      longTwo.wheels = 6
      await store.batchPut([upper, longTwo])
      assert.deepEqual(await store.get(ConformanceVehicle, { plate: 'case-abc' }), lower, 'case-abc reads back its own object')
      assert.deepEqual(await store.get(ConformanceVehicle, { plate: 'case-ABC' }), upper, 'case-ABC reads back its own object')
      assert.deepEqual(
        await store.batchGet(ConformanceVehicle, [{ plate: `${LONG_HEAD}-1` }, { plate: `${LONG_HEAD}-2` }, { plate: 'Case-Abc' }]),
        [longOne, longTwo, undefined],
        'each long key reads back its own object, and a third casing misses',
      )
      await store.delete(upper)
      assert.equal(await store.get(ConformanceVehicle, { plate: 'case-ABC' }), undefined, 'the deleted one misses')
      assert.deepEqual(await store.get(ConformanceVehicle, { plate: 'case-abc' }), lower, 'a delete removes only its own key')
    },
  },
  {
    name: 'string alternate keys are exact: emails differing only in case, or only after a 240-character start, each find their own object',
    async body(store) {
      const [a, b, c, d] = [makeUser(30), makeUser(31), makeUser(32), makeUser(33)]
      a.email = 'Case.Mixed@Example.com'
      c.email = `${LONG_HEAD}@1`
      await store.batchPut([a, c])
      assert.equal(await store.get(ConformanceUser, { email: 'case.mixed@example.com' }), undefined, 'another casing misses')
      assert.equal(await store.get(ConformanceUser, { email: `${LONG_HEAD}@2` }), undefined, 'a long key that differs at its end')
      b.email = 'case.mixed@example.com'
      d.email = `${LONG_HEAD}@2`
      await store.batchPut([b, d])
      assert.deepEqual(
        await store.batchGet(ConformanceUser, [
          { email: 'Case.Mixed@Example.com' },
          { email: 'case.mixed@example.com' },
          { email: `${LONG_HEAD}@1` },
          { email: `${LONG_HEAD}@2` },
          { email: 'CASE.MIXED@EXAMPLE.COM' },
        ]),
        [a, b, c, d, undefined],
      )
      await store.delete(b)
      assert.equal(await store.get(ConformanceUser, { email: 'case.mixed@example.com' }), undefined, 'the deleted one misses')
      assert.deepEqual(await store.get(ConformanceUser, { email: 'Case.Mixed@Example.com' }), a, 'a delete removes only its own keys')
    },
  },
]
