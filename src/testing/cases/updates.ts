import assert from 'node:assert/strict'
import type { Lookup, Store } from '../../index.js'
import type { ConformanceCase } from '../case.js'
import { ConformanceUser } from '../models.js'
import { makeUser } from './fixtures.js'

/** A newer version of `user`: another attribute value and other alternate and composite key values. */
function updated(user: ConformanceUser, tag: string): ConformanceUser {
  const next = makeUser(user.id)
  next.name = `${tag} ${user.id}`
  next.email = `${tag}${user.id}@example.com`
  next.slug = `${tag}-slug ${user.id}`
  next.tags.push(tag)
  return next
}

type UserLookup = Lookup<typeof ConformanceUser>

/** Every lookup of `user`, one per key kind: primary, alternate, composite. */
function lookupsOf(user: ConformanceUser): [UserLookup, UserLookup, UserLookup] {
  return [{ id: user.id }, { email: user.email }, { orgId: user.orgId, slug: user.slug }]
}

/**
 * After an update, every read answers the new version: by each key with `get`, all at once with
 * `batchGet`; the lookups of the old alternate and composite key values (`before`, taken before the
 * write: an authoritative store may write what it stored back into every object of the batch) miss.
 */
async function assertUpdated(store: Store, before: UserLookup[], after: ConformanceUser, how: string): Promise<void> {
  const [byId, byEmail, bySlug] = lookupsOf(after)
  const [, oldEmail, oldSlug] = before as [UserLookup, UserLookup, UserLookup]
  assert.deepEqual(await store.get(ConformanceUser, byId), after, `${how}: get by primary key answers the new version`)
  assert.deepEqual(await store.get(ConformanceUser, byEmail), after, `${how}: get by the new alternate key`)
  assert.deepEqual(await store.get(ConformanceUser, bySlug), after, `${how}: get by the new composite key`)
  assert.equal(await store.get(ConformanceUser, oldEmail), undefined, `${how}: the old alternate key misses`)
  assert.equal(await store.get(ConformanceUser, oldSlug), undefined, `${how}: the old composite key misses`)
  assert.deepEqual(
    await store.batchGet(ConformanceUser, [byId, oldEmail, byEmail, oldSlug, bySlug]),
    [after, undefined, after, undefined, after],
    `${how}: batchGet answers the new version and misses the old keys`,
  )
}

/**
 * Reads around writes of the same object: what a store read before a put (a hit or a miss) never
 * answers after it — the cases a store that keeps what it read (a read-through memo, a negative
 * cache) must pass.
 */
export const updateCases: readonly ConformanceCase[] = [
  {
    name: 'after get by every key, a put of a changed object: every read answers the new version, the old keys miss',
    async body(store) {
      const user = makeUser(40)
      await store.put(user)
      for (const lookup of lookupsOf(user)) assert.deepEqual(await store.get(ConformanceUser, lookup), user, 'read before the update')
      const next = updated(user, 'put')
      await store.put(next)
      await assertUpdated(store, lookupsOf(user), next, 'after put')
    },
  },
  {
    name: 'after batchGet by every key, a batchPut of a changed object: every read answers the new version, the old keys miss',
    async body(store) {
      const user = makeUser(41)
      const other = makeUser(42)
      await store.batchPut([user, other])
      assert.deepEqual(await store.batchGet(ConformanceUser, [...lookupsOf(user), ...lookupsOf(other)]), [
        user,
        user,
        user,
        other,
        other,
        other,
      ])
      const next = updated(user, 'batch')
      await store.batchPut([next])
      await assertUpdated(store, lookupsOf(user), next, 'after batchPut')
      assert.deepEqual(await store.batchGet(ConformanceUser, lookupsOf(other)), [other, other, other], 'the other object is untouched')
    },
  },
  {
    name: 'a get that missed does not answer after a put: get and batchGet miss by every key, put, then both hit',
    async body(store) {
      const user = makeUser(43)
      const batched = makeUser(44)
      for (const lookup of lookupsOf(user)) assert.equal(await store.get(ConformanceUser, lookup), undefined, 'a miss before the put')
      assert.deepEqual(
        await store.batchGet(ConformanceUser, lookupsOf(batched)),
        [undefined, undefined, undefined],
        'misses before the put',
      )
      await store.put(user)
      await store.batchPut([batched])
      for (const lookup of lookupsOf(user)) {
        assert.deepEqual(await store.get(ConformanceUser, lookup), user, `get ${JSON.stringify(lookup)} hits after the put`)
      }
      assert.deepEqual(await store.batchGet(ConformanceUser, [...lookupsOf(batched), ...lookupsOf(user)]), [
        batched,
        batched,
        batched,
        user,
        user,
        user,
      ])
    },
  },
  {
    name: 'batchPut of two versions of one object: the later one wins, under every key',
    async body(store) {
      const first = makeUser(45)
      const later = updated(first, 'later')
      const firstLookups = lookupsOf(first)
      await store.batchPut([first, later])
      await assertUpdated(store, firstLookups, later, 'batchPut([first, later])')
      // the same over a stored version that was read before
      const third = updated(later, 'third')
      const fourth = updated(third, 'fourth')
      const [, laterEmail] = lookupsOf(later)
      const thirdLookups = lookupsOf(third)
      await store.batchPut([third, fourth])
      await assertUpdated(store, thirdLookups, fourth, 'batchPut([third, fourth])')
      assert.equal(await store.get(ConformanceUser, laterEmail), undefined, 'the version read before misses by its alternate key')
    },
  },
]
