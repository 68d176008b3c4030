import assert from 'node:assert/strict'
import type { ConformanceCase } from '../case.js'
import { ConformanceUser } from '../models.js'
import { makeUser } from './fixtures.js'

/** batchGet / batchPut / batchDelete. */
export const batchCases: readonly ConformanceCase[] = [
  {
    name: 'batchGet of [] is []',
    async body(store) {
      assert.deepEqual(await store.batchGet(ConformanceUser, []), [])
    },
  },
  {
    name: 'batchGet keeps order and length, mixes hits and misses, allows duplicates and mixed key kinds',
    async body(store) {
      const users = [1, 2, 3, 4, 5].map((i) => makeUser(100 + i))
      await store.batchPut(users)
      const [u1, u2, u3] = users as [ConformanceUser, ConformanceUser, ConformanceUser]
      const got = await store.batchGet(ConformanceUser, [
        { id: 103 },
        { id: 999 },
        { email: u1.email },
        { id: 103 },
        { orgId: u2.orgId, slug: u2.slug },
        { email: 'missing@example.com' },
        { email: u1.email },
      ])
      assert.equal(got.length, 7)
      assert.deepEqual(got, [u3, undefined, u1, u3, u2, undefined, u1])
      assert.notEqual(got[0], got[3], 'duplicate lookups give separate copies')
    },
  },
  {
    name: 'batchPut then batchGet of 250 objects by alternate key',
    async body(store) {
      const users = Array.from({ length: 250 }, (_, i) => makeUser(1000 + i))
      await store.batchPut(users)
      const got = await store.batchGet(
        ConformanceUser,
        users.map((u) => ({ email: u.email })),
      )
      assert.deepEqual(got, users)
    },
  },
  {
    name: 'batchDelete removes every object; absent ones are a no-op',
    async body(store) {
      const users = [1, 2, 3].map((i) => makeUser(200 + i))
      await store.batchPut(users)
      await store.batchDelete([users[0] as ConformanceUser, users[2] as ConformanceUser, makeUser(299)])
      const got = await store.batchGet(ConformanceUser, [{ id: 201 }, { id: 202 }, { id: 203 }])
      assert.deepEqual(got, [undefined, users[1], undefined])
      await store.batchDelete([])
      await store.batchPut([])
    },
  },
]
