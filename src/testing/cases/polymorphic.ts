import assert from 'node:assert/strict'
import { isStockpyleError, type Store } from '../../index.js'
import type { ConformanceCase } from '../case.js'
import { ConformanceCar, ConformanceVehicle } from '../models.js'
import { makeCar } from './fixtures.js'

const onlyPolymorphic = (c: { polymorphic: boolean }) =>
  c.polymorphic ? undefined : 'the store does not index objects under ancestor models (capabilities.polymorphic is false)'

/**
 * A base-model object and a subclass object whose ancestor key has the same value: one key, held by
 * the last write (as alternate keys are), on every polymorphic store.
 */
async function keyCollisions(store: Store): Promise<void> {
  const car = makeCar(41)
  const vehicle = new ConformanceVehicle(car.plate)
  const conflict = (err: unknown) => isStockpyleError(err, 'E_KEY_CONFLICT')
  // a batch claiming an ancestor model's key twice (a record's and an alias) is refused whole
  await assert.rejects(store.batchPut([vehicle, car]), conflict, 'a base record and a subclass alias at one key in one batch')
  await assert.rejects(store.batchPut([car, vehicle]), conflict, 'a subclass alias and a base record at one key in one batch')
  assert.equal(await store.get(ConformanceVehicle, { plate: car.plate }), undefined, 'nothing of the refused batch was written')
  assert.equal(await store.get(ConformanceCar, { vin: car.vin }), undefined, 'nothing of the refused batch was written')
  // the subclass put last: the key is its alias
  await store.put(vehicle)
  await store.put(car)
  const got = await store.get(ConformanceVehicle, { plate: car.plate })
  assert.ok(got instanceof ConformanceCar, 'a later subclass put takes the ancestor key from the base record')
  assert.deepEqual(await store.batchGet(ConformanceVehicle, [{ plate: car.plate }]), [car])
  await store.delete(car)
  assert.equal(await store.get(ConformanceVehicle, { plate: car.plate }), undefined, 'deleted with the object that held it')
  // the base record put last: the key is its record; the subclass keeps its own keys
  await store.put(car)
  await store.put(vehicle)
  const base = await store.get(ConformanceVehicle, { plate: car.plate })
  assert.ok(base !== undefined && !(base instanceof ConformanceCar), 'a later base put takes the key from the subclass alias')
  assert.deepEqual(base, vehicle)
  assert.deepEqual(await store.get(ConformanceCar, { vin: car.vin }), car)
  assert.deepEqual(await store.get(ConformanceCar, { plate: car.plate }), car)
  // an invalidation of the key leaves nothing under it, whichever object held it
  await store.put(car)
  if (typeof store.batchInvalidate === 'function' && !store.capabilities.authoritative) {
    await store.batchInvalidate(ConformanceVehicle, [{ plate: car.plate }])
    assert.equal(await store.get(ConformanceVehicle, { plate: car.plate }), undefined, 'invalidated by the ancestor key')
  }
}

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
    name: "polymorphic: a base-model object and a subclass's ancestor key at one value: the last write holds the key; one batch claiming it twice is refused",
    options: { polymorphic: true },
    unless: onlyPolymorphic,
    body: keyCollisions,
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
