import { describe, expect, it } from 'vitest'
import {
  ChainedStore,
  DuplicateModelError,
  describeModel,
  KeyValueStore,
  keys,
  ProcessMemoryStore,
  UnknownKeyError,
  UnknownModelError,
} from '../../src/index.js'
import { MapBackend } from '../../src/testing/index.js'

describe('model registry', () => {
  it('subclasses inherit keys unless they declare their own', () => {
    class Animal {
      static readonly stockpyleName: string = 'RegAnimal'
      static readonly stockpyleKeys = keys('tag')
      tag = ''
    }
    class Dog extends Animal {
      static override readonly stockpyleName: string = 'RegDog'
    }
    class Cat extends Animal {
      static override readonly stockpyleName: string = 'RegCat'
      static override readonly stockpyleKeys = keys('chip', 'tag')
    }
    expect(describeModel(Dog).keys.map((k) => k.signature)).toEqual(['tag'])
    expect(describeModel(Cat).keys.map((k) => k.signature)).toEqual(['chip', 'tag'])
    expect(describeModel(Cat).lineage.map((m) => m.name)).toEqual(['RegCat', 'RegAnimal'])
  })

  it('a key attribute named with a comma is its own key, never a composite key of the names around it', async () => {
    class Odd {
      static readonly stockpyleName = 'RegOddComma'
      static readonly stockpyleKeys = [['a', 'b'], 'a,b'] as const
      'a,b': string
      constructor(
        public a: number,
        public b: number,
        ab: string,
      ) {
        this['a,b'] = ab
      }
    }
    expect(describeModel(Odd).keys).toHaveLength(2)
    const store = new ProcessMemoryStore()
    await store.put(new Odd(1, 2, 'x'))
    expect(await store.get(Odd, { 'a,b': 'x' } as never)).toEqual(new Odd(1, 2, 'x'))
    expect(await store.get(Odd, { a: 1, b: 2 })).toEqual(new Odd(1, 2, 'x'))
    // one field named like the composite key's signature is no key of the model
    await expect(store.get(Odd, { 'a\u0000b': 1 } as never)).rejects.toBeInstanceOf(UnknownKeyError)
    expect(() =>
      describeModel(
        class {
          static readonly stockpyleName = 'RegOddNul'
          static readonly stockpyleKeys = ['a\u0000b']
        } as never,
      ),
    ).toThrow(UnknownModelError)
  })

  it('a type tag or key attribute name that is not well-formed UTF-16 is an UnknownModelError naming the model and the name', async () => {
    class LoneTag {
      static readonly stockpyleName = 'T\uD800'
      static readonly stockpyleKeys = ['id']
    }
    class LoneField {
      static readonly stockpyleName = 'RegLoneField'
      static readonly stockpyleKeys = ['id', ['org', 'x\uDC00']]
    }
    for (const [model, message] of [
      [LoneTag, /type tag `"T\\ud800"` is not well-formed UTF-16/],
      [LoneField, /Model `RegLoneField` declares the key attribute `"x\\udc00"`, which is not well-formed UTF-16/],
    ] as const) {
      let thrown: unknown
      try {
        describeModel(model as never)
      } catch (err) {
        thrown = err
      }
      expect(thrown).toBeInstanceOf(UnknownModelError)
      expect((thrown as Error).message).toMatch(message)
    }
    // a well-formed name outside ASCII is fine
    class Wide {
      static readonly stockpyleName = 'Règle\u{1F600}'
      static readonly stockpyleKeys = keys('clé')
      constructor(public clé: number) {}
    }
    const store = new ProcessMemoryStore()
    await store.put(new Wide(1))
    expect(await store.get(Wide, { clé: 1 })).toEqual(new Wide(1))
    await store.close()
  })

  it('a name used by two classes is a DuplicateModelError', () => {
    const make = () =>
      class Twin {
        static readonly stockpyleName = 'RegTwin'
        static readonly stockpyleKeys = ['id'] as const
      }
    describeModel(make())
    expect(() => describeModel(make())).toThrow(DuplicateModelError)
  })

  it('a DuplicateModelError tells the two classes apart (parent and keys) and names the store and operation', async () => {
    class RegBaseA {
      static readonly stockpyleKeys = keys('id')
    }
    class RegBaseB {
      static readonly stockpyleKeys = keys('id')
    }
    const first = class RegDupDog extends RegBaseA {
      static override readonly stockpyleKeys = keys('id', 'tag')
    }
    const second = class RegDupDog extends RegBaseB {}
    describeModel(first)
    expect(() => describeModel(second)).toThrow(/`RegDupDog`.*extends `RegBaseA`.*\["id","tag"\].*extends `RegBaseB`.*\["id"\]/)
    const store = new ProcessMemoryStore()
    const obj = Object.assign(Object.create(second.prototype), { id: 1 })
    await expect(store.put(obj)).rejects.toThrow(/^memory store put: .*`RegDupDog`/)
    await expect(store.put(obj)).rejects.toThrow(DuplicateModelError)
    await store.close()
  })

  it('rejects classes that are not models', () => {
    expect(() => describeModel(class {} as never)).toThrow(UnknownModelError)
    expect(() =>
      describeModel(
        class X {
          static stockpyleKeys = []
        } as never,
      ),
    ).toThrow(/no keys/)
    expect(() =>
      describeModel(
        class Y {
          static stockpyleKeys = [['a', 'a']]
        } as never,
      ),
    ).toThrow(/invalid key/)
  })

  it('an own attribute named `constructor` is data: the object is still of its model, and comes back with it', async () => {
    class Recipe {
      static readonly stockpyleName = 'RegistryRecipe'
      static readonly stockpyleKeys = keys('id')
      readonly id: number
      constructor(id: number, maker: string) {
        this.id = id
        Object.defineProperty(this, 'constructor', { value: maker, enumerable: true, writable: true, configurable: true })
      }
    }
    const recipe = new Recipe(1, 'a builder of cakes')
    for (const store of [
      new ProcessMemoryStore(),
      new KeyValueStore(new MapBackend()),
      new ChainedStore([new ProcessMemoryStore(), new KeyValueStore(new MapBackend())]),
    ]) {
      await store.put(recipe)
      const back = await store.get(Recipe, { id: 1 })
      expect(back).toBeInstanceOf(Recipe)
      expect(Object.getOwnPropertyDescriptor(back, 'constructor')?.value).toBe('a builder of cakes')
      await store.close()
    }
  })
})
