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
