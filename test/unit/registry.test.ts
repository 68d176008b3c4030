import { describe, expect, it } from 'vitest'
import { DuplicateModelError, describeModel, keys, UnknownModelError } from '../../src/index.js'

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

  it('a name used by two classes is a DuplicateModelError', () => {
    const make = () =>
      class Twin {
        static readonly stockpyleName = 'RegTwin'
        static readonly stockpyleKeys = ['id'] as const
      }
    describeModel(make())
    expect(() => describeModel(make())).toThrow(DuplicateModelError)
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
})
