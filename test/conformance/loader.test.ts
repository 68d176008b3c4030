import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ChainedStore, LoaderStore, ProcessMemoryStore } from '../../src/index.js'
import { ConformanceUser, conformanceGroups, runConformanceCase, runStoreConformance } from '../../src/testing/index.js'

const common = { describe, test: it, beforeEach, afterEach }

/** A LoaderStore whose source is a store of its own (any async source would do); `writes` picks the write functions it has. */
function loader(writes: { save?: boolean; remove?: boolean } = { save: true, remove: true }): LoaderStore<typeof ConformanceUser> {
  const source = new ProcessMemoryStore({ unbounded: true })
  return new LoaderStore({
    model: ConformanceUser,
    load: (lookups) => source.batchGet(ConformanceUser, lookups),
    save: writes.save === true ? (users) => source.batchPut(users) : undefined,
    remove: writes.remove === true ? (users) => source.batchDelete(users) : undefined,
  })
}

const oneModel = 'a LoaderStore serves one model (ConformanceUser); this case stores other models'
const skip = [
  { test: 'a subclass with its own keys comes back as the subclass, with inherited attributes', reason: oneModel },
  { test: 'a plain base-class object is found by the base model only', reason: oneModel },
  {
    test: 'string primary keys are exact: keys differing only in case, or only after a 240-character start, each read back their own object',
    reason: oneModel,
  },
  {
    test: 'property: any nested value (-0, NaN, lone surrogates, U+0000, holes, __proto__/constructor keys, null prototypes, typed arrays) and keys of every type come back exactly',
    reason: oneModel,
  },
  {
    test: 'property: a value that cannot be stored is refused with SerializationError naming its path, and nothing is written',
    reason: oneModel,
  },
]

runStoreConformance({ ...common, name: 'LoaderStore (load, save, remove)', createStore: () => loader(), skip })

runStoreConformance({
  ...common,
  name: 'ChainedStore([ProcessMemoryStore, LoaderStore])',
  createStore: (o) => new ChainedStore([new ProcessMemoryStore(o), loader()]),
  skip,
})

// A loader without `save` or `remove` refuses those writes (capabilities.refusesPuts / refusesDeletes):
// the cases about refused writes hold it, and a chain in front of it, to that. (The other cases write.)
describe('conformance: refused writes of a LoaderStore without save or remove', () => {
  const cases = conformanceGroups.find(([group]) => group === 'refused writes')?.[1] ?? []
  it('has cases for refused puts and refused deletes', () => expect(cases.length).toBe(2))
  const variants = [
    ['load only', {}],
    ['load and save', { save: true }],
    ['load and remove', { remove: true }],
  ] as const
  for (const [label, writes] of variants) {
    for (const chained of [false, true]) {
      const name = chained ? `ChainedStore([ProcessMemoryStore, LoaderStore (${label})])` : `LoaderStore (${label})`
      const target = {
        name,
        createStore: () => (chained ? new ChainedStore([new ProcessMemoryStore(), loader(writes)]) : loader(writes)),
      }
      for (const c of cases) it(`${name}: ${c.name}`, (context) => runConformanceCase(target, c, context).then(() => {}))
    }
  }
})
