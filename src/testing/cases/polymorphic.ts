import assert from 'node:assert/strict'
import type { ConformanceCase } from '../case.js'
import { ConformanceCar, ConformanceVehicle } from '../models.js'
import { makeCar } from './fixtures.js'

/** Polymorphic stores index objects under every ancestor model. */
export const polymorphicCases: readonly ConformanceCase[] = [
  {
    name: 'polymorphic: get(Base, baseKey) returns the stored subclass instance; delete removes it there too',
    options: { polymorphic: true },
    unless: (c) =>
      c.polymorphic ? undefined : 'the store does not index objects under ancestor models (capabilities.polymorphic is false)',
    async body(store) {
      const car = makeCar(7)
      await store.put(car)
      const got = await store.get(ConformanceVehicle, { plate: car.plate })
      assert.ok(got instanceof ConformanceCar)
      assert.deepEqual(got, car)
      assert.deepEqual(await store.batchGet(ConformanceVehicle, [{ plate: car.plate }, { plate: 'none' }]), [car, undefined])
      await store.delete(car)
      assert.equal(await store.get(ConformanceVehicle, { plate: car.plate }), undefined)
    },
  },
  {
    name: 'a plain base-class object is found by the base model only',
    async body(store) {
      const vehicle = new ConformanceVehicle('BASE-1')
      await store.put(vehicle)
      assert.deepEqual(await store.get(ConformanceVehicle, { plate: 'BASE-1' }), vehicle)
      assert.equal(await store.get(ConformanceCar, { plate: 'BASE-1' }), undefined)
    },
  },
]
