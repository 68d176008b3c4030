import assert from 'node:assert/strict'
import { isStockpyleError } from '../../index.js'
import type { ConformanceCase } from '../case.js'
import { ConformanceUser } from '../models.js'
import { makeUser } from './fixtures.js'

/**
 * `clear()` of cache stores (DESIGN §7.15), held to `capabilities.clearable` (a chain's `clearCaches()`
 * checks it on every cache layer before clearing any, so a store that declares it and then refuses
 * leaves the layers above it cleared and the call failed). Another prefix surviving is tested per
 * store, on its server: the suite has one store per case.
 */
export const clearCases: readonly ConformanceCase[] = [
  {
    name: 'clear() removes every object under every key, or refuses with E_UNSUPPORTED and removes nothing, as capabilities.clearable declares',
    unless: (c) => (c.authoritative ? 'an authoritative store owns its data: it has no clear()' : undefined),
    async body(store) {
      const { clearable } = store.capabilities
      if (typeof store.clear !== 'function') {
        assert.ok(clearable !== true, `${store.name}: declares clearable but has no clear()`)
        console.info(`[stockpyle conformance] ${store.name}: has no clear() (optional for custom stores)`)
        return
      }
      const users = [makeUser(800), makeUser(801), makeUser(802)]
      await store.batchPut(users)
      try {
        await store.clear()
      } catch (err) {
        assert.ok(isStockpyleError(err, 'E_UNSUPPORTED'), `clear() failed with ${String(err)}`)
        assert.equal(
          clearable,
          false,
          `${store.name}: declares clearable but clear() refuses with E_UNSUPPORTED: declare capabilities.clearable false (a chain's clearCaches() relies on it to refuse before clearing any layer)`,
        )
        assert.deepEqual(await store.batchGet(ConformanceUser, [{ id: 800 }, { id: 801 }, { id: 802 }]), users)
        return
      }
      assert.ok(
        clearable !== false,
        `${store.name}: declares clearable false but clear() resolves: declare capabilities.clearable true (or leave it unset), or refuse with E_UNSUPPORTED`,
      )
      for (const u of users) {
        assert.equal(await store.get(ConformanceUser, { id: u.id }), undefined)
        assert.equal(await store.get(ConformanceUser, { email: u.email }), undefined)
      }
      // The store works as before afterwards.
      await store.put(users[0] as ConformanceUser)
      assert.deepEqual(await store.get(ConformanceUser, { email: (users[0] as ConformanceUser).email }), users[0])
      await store.clear()
      await store.clear()
      assert.equal(await store.get(ConformanceUser, { id: 800 }), undefined)
    },
  },
]
