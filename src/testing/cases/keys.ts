import assert from 'node:assert/strict'
import type { Store } from '../../index.js'
import { isStockpyleError } from '../../index.js'
import type { ConformanceCase } from '../case.js'
import { ConformanceUser } from '../models.js'
import { makeUser } from './fixtures.js'

async function missOrInvalid(store: Store, lookup: object, why: string): Promise<void> {
  try {
    assert.equal(await store.get(ConformanceUser, lookup as { id: number }), undefined, why)
  } catch (err) {
    assert.ok(isStockpyleError(err, 'E_INVALID_KEY'), `${why}: expected a miss or InvalidKeyError, got ${String(err)}`)
  }
}

/** Alternate keys stay truthful; key values are type-tagged and any text is a valid key. */
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
]
