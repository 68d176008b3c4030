import assert from 'node:assert/strict'
import type { ConformanceCase } from '../case.js'
import { ConformanceCar, ConformanceUser } from '../models.js'
import { fidelityPropertyCases } from './fidelity-properties.js'
import { makeCar, makeUser } from './fixtures.js'

/** Values come back with their types. */
export const fidelityCases: readonly ConformanceCase[] = [
  {
    name: 'Date, bigint, Map, Set, Buffer, arrays and nested plain objects keep their types',
    async body(store) {
      const user = makeUser(300)
      await store.put(user)
      const got = (await store.get(ConformanceUser, { id: 300 })) as ConformanceUser
      assert.ok(got instanceof ConformanceUser)
      assert.ok(got.createdAt instanceof Date)
      assert.equal(got.createdAt.getTime(), user.createdAt.getTime())
      assert.equal(typeof got.balance, 'bigint')
      assert.equal(got.balance, user.balance)
      assert.ok(got.prefs instanceof Map)
      assert.ok(got.roles instanceof Set)
      assert.ok(Buffer.isBuffer(got.avatar))
      assert.ok(Array.isArray(got.tags))
      const nested = got.meta.nested as { when: Date; big: bigint; list: unknown[] }
      assert.ok(nested.when instanceof Date)
      assert.equal(nested.big, 12345678901234567890n)
      assert.deepEqual(nested.list, [1, [2, 3], 'x'])
      assert.deepEqual(got, user)
    },
  },
  {
    name: 'a subclass with its own keys comes back as the subclass, with inherited attributes',
    async body(store) {
      const car = makeCar(1)
      await store.put(car)
      const byVin = await store.get(ConformanceCar, { vin: car.vin })
      assert.ok(byVin instanceof ConformanceCar)
      assert.deepEqual(byVin, car)
      assert.deepEqual(await store.get(ConformanceCar, { plate: car.plate }), car)
    },
  },
  ...fidelityPropertyCases,
]
