import Keyv from 'keyv'
import { afterEach, beforeEach, describe, it } from 'vitest'
import { KeyvStore } from '../../src/stores/keyv/index.js'
import { runStoreConformance } from '../../src/testing/index.js'

/** A Keyv over a Map with serialization switched off: the Map holds the values themselves. */
function unserialized(): Keyv {
  const keyv = new Keyv()
  keyv.serialize = undefined
  keyv.deserialize = undefined
  return keyv
}

const common = { describe, test: it, beforeEach, afterEach }
const shared = new Keyv({ namespace: 'shared' })

runStoreConformance({
  ...common,
  name: 'KeyvStore (new Keyv(): Map, JSON + base64 serializer)',
  createStore: (o) => new KeyvStore({ ...o, keyv: new Keyv() }),
})

runStoreConformance({
  ...common,
  name: 'KeyvStore (Map without serialization: holds Buffers)',
  createStore: (o) => new KeyvStore({ ...o, keyv: unserialized() }),
})

runStoreConformance({
  ...common,
  name: 'KeyvStore (one Keyv shared by every test, isolated by prefix)',
  createStore: (o) => new KeyvStore({ ...o, keyv: shared }),
})

// Keyv 5.6 skips its namespace on get/set for a key already starting with `<namespace>:`, but not on
// getMany/deleteMany (review: with the namespace equal to the prefix, deletes and clear() missed)
runStoreConformance({
  ...common,
  name: 'KeyvStore (Keyv namespace equal to the prefix)',
  createStore: (o) => new KeyvStore({ ...o, keyv: new Keyv({ namespace: o.prefix }) }),
})

// Keyv lists keys without their first part even without a namespace: clear() is refused here
const noNamespace = new Keyv({ namespace: '' })

runStoreConformance({
  ...common,
  name: 'KeyvStore (Keyv without a namespace)',
  createStore: (o) => new KeyvStore({ ...o, keyv: noNamespace }),
})
