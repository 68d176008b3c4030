import { describe, expectTypeOf, it } from 'vitest'
import { ChainedStore, keys, type Lookup, ProcessMemoryStore, type Store } from '../../src/index.js'

class User {
  static readonly stockpyleKeys = ['id', 'email', ['orgId', 'slug']] as const
  constructor(
    public id: number,
    public email: string,
    public orgId: number,
    public slug: string,
  ) {}
}

class Vehicle {
  static readonly stockpyleKeys = keys('plate')
  plate = ''
}
class Car extends Vehicle {
  static override readonly stockpyleKeys = keys('vin', 'plate')
  vin = 0
}

declare const store: Store

describe('lookup types', () => {
  it('accepts exactly one declared key per lookup', () => {
    expectTypeOf<{ id: number }>().toExtend<Lookup<typeof User>>()
    expectTypeOf<{ email: string }>().toExtend<Lookup<typeof User>>()
    expectTypeOf<{ orgId: number; slug: string }>().toExtend<Lookup<typeof User>>()
    expectTypeOf<{ id: number; email: string }>().not.toExtend<Lookup<typeof User>>()
    expectTypeOf<{ orgId: number }>().not.toExtend<Lookup<typeof User>>()
    expectTypeOf<{ id: string }>().not.toExtend<Lookup<typeof User>>()
    expectTypeOf<{ name: string }>().not.toExtend<Lookup<typeof User>>()
  })

  it('get and batchGet return the instance type or undefined', async () => {
    expectTypeOf(await store.get(User, { id: 1 })).toEqualTypeOf<User | undefined>()
    expectTypeOf(await store.batchGet(User, [{ id: 1 }, { email: 'x' }])).toEqualTypeOf<(User | undefined)[]>()
    const chain = new ChainedStore([new ProcessMemoryStore(), new ProcessMemoryStore()])
    expectTypeOf(await chain.get(Car, { vin: 1 })).toEqualTypeOf<Car | undefined>()
  })

  it('wrong lookups are compile errors at the call site', () => {
    // @ts-expect-error mixes fields of two keys
    void store.get(User, { id: 1, email: 'a@b' })
    // @ts-expect-error wrong value type
    void store.get(User, { id: '1' })
    // @ts-expect-error part of a composite key
    void store.get(User, { orgId: 1 })
    // @ts-expect-error not a key
    void store.get(User, { slug: 'x' })
    // @ts-expect-error not a model
    void store.get(Date, { id: 1 })
  })

  it('delete and batchDelete take an object or (Model, typed lookups)', async () => {
    const user = new User(1, 'a@b', 1, 's')
    expectTypeOf(store.delete(user)).toEqualTypeOf<Promise<void>>()
    expectTypeOf(store.delete(User, { email: 'a@b' })).toEqualTypeOf<Promise<void>>()
    expectTypeOf(store.batchDelete([user])).toEqualTypeOf<Promise<void>>()
    expectTypeOf(store.batchDelete(User, [{ id: 1 }, { orgId: 1, slug: 's' }])).toEqualTypeOf<Promise<void>>()
    const memory = new ProcessMemoryStore()
    expectTypeOf(await memory.batchDeleteByKey(User, [{ id: 1 }])).toEqualTypeOf<(User | undefined)[]>()
    await memory.delete(Car, { vin: 1 })
    // @ts-expect-error mixes fields of two keys
    void store.delete(User, { id: 1, email: 'a@b' })
    // @ts-expect-error wrong value type
    void store.delete(User, { id: '1' })
    // @ts-expect-error part of a composite key
    void store.batchDelete(User, [{ id: 1 }, { orgId: 1 }])
    // @ts-expect-error a Vehicle lookup has no vin
    void memory.delete(Vehicle, { vin: 1 })
  })

  it('subclasses declaring their own keys compile (keys() helper) and get their own lookups', () => {
    expectTypeOf<{ vin: number }>().toExtend<Lookup<typeof Car>>()
    expectTypeOf<{ plate: string }>().toExtend<Lookup<typeof Car>>()
    expectTypeOf<{ vin: number }>().not.toExtend<Lookup<typeof Vehicle>>()
  })
})
