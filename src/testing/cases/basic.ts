import assert from 'node:assert/strict'
import type { ConformanceCase } from '../case.js'
import { ConformanceUser } from '../models.js'
import { makeUser } from './fixtures.js'

/** put / get / delete of single objects by every key kind. */
export const basicCases: readonly ConformanceCase[] = [
  {
    name: 'get of an absent object is undefined, by every key kind',
    async body(store) {
      assert.equal(await store.get(ConformanceUser, { id: 404 }), undefined)
      assert.equal(await store.get(ConformanceUser, { email: 'nobody@example.com' }), undefined)
      assert.equal(await store.get(ConformanceUser, { orgId: 1, slug: 'nope' }), undefined)
    },
  },
  {
    name: 'put then get by primary, alternate and composite key returns an equal instance',
    async body(store) {
      const user = makeUser(1)
      await store.put(user)
      for (const lookup of [
        { id: 1 },
        { email: user.email },
        { orgId: user.orgId, slug: user.slug },
        { slug: user.slug, orgId: user.orgId },
      ]) {
        const got = await store.get(ConformanceUser, lookup as { id: number })
        assert.ok(got instanceof ConformanceUser, `lookup ${JSON.stringify(lookup)} returns a ConformanceUser`)
        assert.deepEqual(got, user)
      }
    },
  },
  {
    name: 'put replaces the stored object',
    async body(store) {
      const user = makeUser(2)
      await store.put(user)
      user.name = 'changed'
      user.tags.push('more')
      await store.put(user)
      assert.deepEqual(await store.get(ConformanceUser, { id: 2 }), user)
      assert.deepEqual(await store.get(ConformanceUser, { email: user.email }), user)
    },
  },
  {
    name: 'delete removes the object under every key; deleting again is a no-op',
    async body(store) {
      const user = makeUser(3)
      const other = makeUser(4)
      await store.put(user)
      await store.put(other)
      await store.delete(user)
      assert.equal(await store.get(ConformanceUser, { id: 3 }), undefined)
      assert.equal(await store.get(ConformanceUser, { email: user.email }), undefined)
      assert.equal(await store.get(ConformanceUser, { orgId: user.orgId, slug: user.slug }), undefined)
      await store.delete(user)
      await store.delete(makeUser(999))
      assert.deepEqual(await store.get(ConformanceUser, { id: 4 }), other)
    },
  },
  {
    name: 'returned objects are copies: mutating them or the stored original changes nothing held',
    async body(store) {
      const user = makeUser(5)
      await store.put(user)
      const expected = makeUser(5)
      user.name = 'mutated after put'
      user.tags.push('x')
      user.prefs.set('theme', 99)
      const first = (await store.get(ConformanceUser, { id: 5 })) as ConformanceUser
      assert.deepEqual(first, expected)
      first.name = 'mutated result'
      first.roles.add('admin')
      const second = await store.get(ConformanceUser, { id: 5 })
      assert.notEqual(second, first)
      assert.deepEqual(second, expected)
    },
  },
]
