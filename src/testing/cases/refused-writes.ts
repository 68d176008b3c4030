import assert from 'node:assert/strict'
import { isStockpyleError, type Store } from '../../index.js'
import type { ConformanceCase } from '../case.js'
import { ConformanceUser } from '../models.js'
import { makeUser } from './fixtures.js'

/**
 * Asserts that `write` rejects with `UnsupportedOperationError` (`E_UNSUPPORTED`), naming the call.
 * @throws AssertionError when it resolves or rejects with anything else.
 */
async function refused(store: Store, call: string, write: () => Promise<unknown>): Promise<void> {
  const outcome = await write().then(
    () => 'resolved',
    (err: unknown) => err,
  )
  assert.ok(
    isStockpyleError(outcome, 'E_UNSUPPORTED'),
    `${store.name}: ${call} must reject with UnsupportedOperationError (E_UNSUPPORTED) when the store declares it refuses it, got ${outcome === 'resolved' ? 'a resolved promise' : String(outcome)}`,
  )
}

/** Every key of a user, each as a lookup. */
const lookupsOf = (u: ConformanceUser) => [{ id: u.id }, { email: u.email }, { orgId: u.orgId, slug: u.slug }] as const

/**
 * Writes a store declares it refuses (`capabilities.refusesPuts` / `refusesDeletes`: a LoaderStore
 * without `save` / `remove`, and a chain in front of one): every form of the write is refused with
 * `UnsupportedOperationError`, and nothing is written or removed. A chain relies on the declaration to
 * refuse them before touching any layer.
 */
export const refusedWriteCases: readonly ConformanceCase[] = [
  {
    name: 'a store declaring refusesPuts refuses put, batchPut and batchPutEntries with E_UNSUPPORTED, and writes nothing',
    unless: (c) => (c.refusesPuts ? undefined : 'the store takes puts (capabilities.refusesPuts is false)'),
    async body(store) {
      const users = [makeUser(900), makeUser(901)]
      await refused(store, 'put', () => store.put(users[0] as ConformanceUser))
      await refused(store, 'batchPut', () => store.batchPut(users))
      await refused(store, 'batchPutEntries', () => store.batchPutEntries(users.map((value) => ({ value, expiresAt: undefined }))))
      for (const u of users) {
        assert.deepEqual(
          await store.batchGet(ConformanceUser, [...lookupsOf(u)]),
          [undefined, undefined, undefined],
          `${store.name}: a refused put wrote ${u.id}`,
        )
      }
    },
  },
  {
    name: 'a store declaring refusesDeletes refuses delete and batchDelete, by object and by key, with E_UNSUPPORTED, and removes nothing',
    unless: (c) => (c.refusesDeletes ? undefined : 'the store takes deletes (capabilities.refusesDeletes is false)'),
    async body(store) {
      const user = makeUser(910)
      // a store that takes puts holds an object the refused deletes must leave in place
      const held = !store.capabilities.refusesPuts
      if (held) await store.put(user)
      await refused(store, 'delete(obj)', () => store.delete(user))
      await refused(store, 'batchDelete(objs)', () => store.batchDelete([user]))
      for (const lookup of lookupsOf(user)) {
        await refused(store, `delete(Model, ${JSON.stringify(lookup)})`, () => store.delete(ConformanceUser, lookup as { id: number }))
      }
      await refused(store, 'batchDelete(Model, lookups)', () =>
        store.batchDelete(ConformanceUser, [...lookupsOf(user)] as { id: number }[]),
      )
      if (!held) return
      assert.deepEqual(
        await store.batchGet(ConformanceUser, [...lookupsOf(user)]),
        [user, user, user],
        `${store.name}: a refused delete removed the object`,
      )
    },
  },
]
