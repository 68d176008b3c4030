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
  {
    name: 'a RegExp whose source holds lone surrogates or U+0000, a sparse array of the greatest length and shared objects come back exactly (shared ones as equal copies)',
    async body(store) {
      // sources in variables: a literal would be rewritten by the linter into /[\uD800-\uDBFF]/, whose source is well-formed
      const nul = '\0'
      const highs = '[\uD800-\uDBFF]'
      const sparse: unknown[] = []
      sparse.length = 2 ** 32 - 1
      sparse[7] = 'x'
      sparse[2 ** 32 - 2] = -0
      const shared = { n: 1, list: ['y'] }
      const data = { patterns: [new RegExp(highs, 'g'), new RegExp(`a${nul}\uDC00`, 'u')], sparse, a: shared, b: shared }
      const user = makeUser(310)
      user.meta = data
      await store.put(user)
      const got = (await store.get(ConformanceUser, { id: 310 })) as ConformanceUser
      assert.ok(got instanceof ConformanceUser)
      assert.deepStrictEqual(got, user)
      const back = got.meta as typeof data
      assert.equal(back.patterns[0]?.source, data.patterns[0]?.source)
      assert.equal(back.patterns[1]?.source, data.patterns[1]?.source)
      assert.equal(back.sparse.length, 2 ** 32 - 1)
      assert.notEqual(back.a, back.b)
    },
  },
  {
    name: 'a value whose expanded tree passes the bound (a shared object counted each time it is reached) is refused with SerializationError, and nothing is written',
    async body(store) {
      let dag: unknown = { leaf: 1 }
      for (let i = 0; i < 40; i++) dag = { a: dag, b: dag }
      const user = makeUser(311)
      user.meta = { dag }
      await assert.rejects(store.put(user), (err: Error) => {
        assert.equal((err as { code?: string }).code, 'E_SERIALIZATION', String(err))
        assert.match(err.message, /more than 1,000,000 objects, arrays, Maps and Sets/)
        return true
      })
      assert.equal(await store.get(ConformanceUser, { id: 311 }), undefined)
    },
  },
  ...fidelityPropertyCases,
]
