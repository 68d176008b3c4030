import assert from 'node:assert/strict'
import { isStockpyleError } from '../../index.js'
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
  {
    name: 'batchPut of two objects claiming one alternate key (single or composite) is refused with E_KEY_CONFLICT, and nothing of the batch is written',
    async body(store) {
      const ids = [310, 311, 312, 313, 314].map((id) => ({ id }))
      const [bystander, first, second] = [makeUser(310), makeUser(311), makeUser(312)]
      second.email = first.email
      const sameEmail = await store.batchPut([bystander, first, second]).then(
        () => undefined,
        (err: unknown) => err,
      )
      assert.ok(isStockpyleError(sameEmail, 'E_KEY_CONFLICT'), `two objects with one email: expected E_KEY_CONFLICT, got ${sameEmail}`)
      const [third, fourth] = [makeUser(313), makeUser(314)]
      fourth.orgId = third.orgId
      fourth.slug = third.slug
      const sameSlug = await store.batchPut([third, fourth]).then(
        () => undefined,
        (err: unknown) => err,
      )
      assert.ok(
        isStockpyleError(sameSlug, 'E_KEY_CONFLICT'),
        `two objects with one (orgId, slug): expected E_KEY_CONFLICT, got ${sameSlug}`,
      )
      const none = ids.map(() => undefined)
      assert.deepEqual(await store.batchGet(ConformanceUser, ids), none, 'nothing of either batch is stored')
      assert.deepEqual(await store.batchGet(ConformanceUser, [{ email: first.email }, { orgId: third.orgId, slug: third.slug }]), [
        undefined,
        undefined,
      ])
      // one object twice in a batch claims its keys once: accepted
      await store.batchPut([first, bystander, first])
      assert.deepEqual(await store.batchGet(ConformanceUser, [{ email: first.email }, { id: 310 }]), [first, bystander])
    },
  },
  {
    name: 'batchPut of one object twice: its last copy wins, and another object of the batch may take the key its earlier copy had',
    async body(store) {
      const moved = makeUser(320)
      const email = 'first-320@example.com'
      const earlier = Object.assign(makeUser(320), { email })
      const taker = Object.assign(makeUser(321), { email })
      // the taker comes first, the object's earlier copy then claims the same email, its last copy another one
      // (a store may write the stored values back onto the earlier copy: the email is kept apart)
      await store.batchPut([taker, earlier, moved])
      assert.deepEqual(await store.batchGet(ConformanceUser, [{ email }, { email: moved.email }, { id: 320 }]), [taker, moved, moved])
    },
  },
  {
    name: 'batchPut of one object twice whose earlier copy holds a value that cannot be stored is refused with SerializationError, and nothing is written',
    async body(store) {
      const earlier = Object.assign(makeUser(330), { name: (() => 'x') as unknown as string })
      const refused = await store.batchPut([earlier, makeUser(331), makeUser(330)]).then(
        () => undefined,
        (err: unknown) => err,
      )
      assert.ok(isStockpyleError(refused, 'E_SERIALIZATION'), `expected E_SERIALIZATION, got ${refused}`)
      assert.deepEqual(await store.batchGet(ConformanceUser, [{ id: 330 }, { id: 331 }]), [undefined, undefined])
    },
  },
]
