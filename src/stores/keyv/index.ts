/**
 * `stockpyle/keyv`: a cache layer over any Keyv 5 storage adapter (Keyv is an optional peer
 * dependency; this entry point only uses its types).
 */
export type { KeyvAdapterTraits } from './keyv-adapter-traits.js'
export { KeyvBackend, type KeyvBackendOptions } from './keyv-backend.js'
export { KeyvStore, type KeyvStoreOptions } from './keyv-store.js'
