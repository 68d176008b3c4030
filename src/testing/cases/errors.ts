import assert from 'node:assert/strict'
import { isStockpyleError } from '../../index.js'
import type { ConformanceCase } from '../case.js'
import { ConformanceUser } from '../models.js'
import { makeUser } from './fixtures.js'

const code = (c: string) => (err: unknown) => {
  assert.ok(isStockpyleError(err, c as never), `expected ${c}, got ${String(err)}`)
  assert.match((err as Error).message, /ConformanceUser/)
  return true
}

/** Bad input fails with a typed error before anything is read or written. */
export const errorCases: readonly ConformanceCase[] = [
  {
    name: 'a lookup that is not exactly one declared key rejects with UnknownKeyError',
    async body(store) {
      const bad = [{}, { id: 1, email: 'a@b' }, { orgId: 1 }, { name: 'x' }, { id: 1, extra: 2 }]
      for (const lookup of bad) await assert.rejects(store.get(ConformanceUser, lookup as never), code('E_UNKNOWN_KEY'))
      await assert.rejects(store.batchGet(ConformanceUser, [{ id: 1 }, {} as never]), code('E_UNKNOWN_KEY'))
    },
  },
  {
    name: 'invalid key values reject with InvalidKeyError',
    async body(store) {
      for (const value of [Number.NaN, Number.POSITIVE_INFINITY, null, undefined, { a: 1 }, [1], '\uD800']) {
        await assert.rejects(store.get(ConformanceUser, { id: value } as never), code('E_INVALID_KEY'))
      }
    },
  },
  {
    name: 'an object missing a key attribute rejects with MissingKeyAttributeError and nothing is written',
    async body(store) {
      const ok = makeUser(400)
      const missing = makeUser(401)
      ;(missing as unknown as { email: undefined }).email = undefined
      await assert.rejects(store.batchPut([ok, missing]), code('E_MISSING_KEY_ATTRIBUTE'))
      assert.equal(await store.get(ConformanceUser, { id: 400 }), undefined)
      assert.equal(await store.get(ConformanceUser, { id: 401 }), undefined)
    },
  },
  {
    name: 'a key attribute that is not an own enumerable attribute (a getter of the class, a non-enumerable property) rejects with MissingKeyAttributeError and nothing is written',
    async body(store) {
      // Stores keep an object's own enumerable attributes: such a key would not be stored with it.
      const hidden = makeUser(403)
      Object.defineProperty(hidden, 'email', { value: hidden.email, enumerable: false })
      const getter = makeUser(404)
      delete (getter as { id?: number }).id
      Object.setPrototypeOf(getter, Object.create(ConformanceUser.prototype, { id: { get: () => 404 } }))
      for (const obj of [hidden, getter]) {
        await assert.rejects(store.put(obj), code('E_MISSING_KEY_ATTRIBUTE'))
        await assert.rejects(store.batchPut([makeUser(405), obj]), code('E_MISSING_KEY_ATTRIBUTE'))
      }
      for (const id of [403, 404, 405]) assert.equal(await store.get(ConformanceUser, { id }), undefined)
    },
  },
  {
    name: 'values that cannot be stored reject with SerializationError and leave the stored object intact',
    async body(store) {
      const user = makeUser(402)
      await store.put(user)
      const broken = makeUser(402)
      broken.meta = { fn: () => 1 }
      await assert.rejects(store.put(broken), code('E_SERIALIZATION'))
      const sym = makeUser(402)
      sym.meta = { s: Symbol('x') }
      await assert.rejects(store.put(sym), code('E_SERIALIZATION'))
      assert.deepEqual(await store.get(ConformanceUser, { id: 402 }), user)
    },
  },
  {
    name: 'a non-model object rejects with UnknownModelError',
    async body(store) {
      await assert.rejects(store.put({ id: 1 }), (err: unknown) => isStockpyleError(err, 'E_UNKNOWN_MODEL'))
      await assert.rejects(store.get(class NotAModel {} as never, { id: 1 } as never), (err: unknown) =>
        isStockpyleError(err, 'E_UNKNOWN_MODEL'),
      )
    },
  },
]
