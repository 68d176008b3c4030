import { afterEach, beforeEach, describe, it } from 'vitest'
import { ChainedStore, LoaderStore, ProcessMemoryStore } from '../../src/index.js'
import { ConformanceUser, runStoreConformance } from '../../src/testing/index.js'

const common = { describe, test: it, beforeEach, afterEach }

/** A LoaderStore whose source is a store of its own (any async source would do). */
function loader(): LoaderStore<typeof ConformanceUser> {
  const source = new ProcessMemoryStore({ unbounded: true })
  return new LoaderStore({
    model: ConformanceUser,
    load: (lookups) => source.batchGet(ConformanceUser, lookups),
    save: (users) => source.batchPut(users),
    remove: (users) => source.batchDelete(users),
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
