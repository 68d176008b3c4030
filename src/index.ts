export {
  type CacheErrorEvent,
  type ChainEvents,
  ChainedStore,
  type ChainedStoreOptions,
  type LayerOperation,
  type LayerStats,
} from './chain/chained-store.js'
export type { BreakerOptions } from './chain/layer-guard.js'
export type { MeterLike, MetricAttributes } from './chain/metrics.js'
export {
  BaseStore,
  capabilities,
  type GetEntriesOptions,
  type InvalidateOptions,
  type LeaseCapable,
  type LookupRequest,
  type PutEntriesOptions,
  type Store,
  type StoreCapabilities,
  type StoreEntry,
  type TransactionCapable,
  type TransactionHandle,
  type TransactionWrite,
  type WriteItem,
} from './contracts/base-store.js'
export { Entry } from './contracts/batch-records.js'
export type { InvalidationBus, InvalidationListener } from './contracts/invalidation-bus.js'
export type {
  BackendReadOptions,
  BackendRouteOptions,
  KeyValueBackend,
  KeyValueBackfill,
  KeyValueEntry,
} from './contracts/key-value-backend.js'
export { type CacheStoreOptions, KeyValueStore, type KeyValueStoreOptions, requestKey } from './contracts/key-value-store.js'
export { type DecoratedOperation, StoreDecorator, type StoreDecoratorOptions } from './contracts/store-decorator.js'
export { canonicalKey } from './core/canonical-key.js'
export {
  ConstraintViolationError,
  CorruptEntryError,
  type CorruptEntryErrorOptions,
  DuplicateModelError,
  errors,
  InvalidArgumentError,
  InvalidKeyError,
  InvalidOptionError,
  isCallerError,
  isStockpyleError,
  KeyConflictError,
  LayerSkippedError,
  MissingKeyAttributeError,
  NonUniqueKeyError,
  SchemaError,
  SerializationError,
  type SkipReason,
  StockpyleError,
  type StockpyleErrorCode,
  type StockpyleErrorOptions,
  StoreClosedError,
  StoreUnavailableError,
  UnknownKeyError,
  UnknownModelError,
  UnsupportedOperationError,
  ValueTooLargeError,
  type ValueTooLargeErrorOptions,
} from './core/errors.js'
export { MAX_KEY_LENGTH } from './core/key-encoding.js'
export { type Clock, type Lifetime, systemClock } from './core/lifetime.js'
export {
  type Instance,
  type KeyList,
  type KeySpec,
  type KeySpecsOf,
  type KeyValue,
  keys,
  type Lookup,
  type Model,
  type ModelClass,
} from './core/model.js'
export { isPartialFailure, type PartialFailureDetails, PartialFailureError } from './core/partial-failure.js'
export { describeModel, type KeyInfo, type ModelInfo, registerModel } from './core/registry.js'
export { LoaderStore, type LoaderStoreOptions } from './stores/loader/loader-store.js'
export { AsyncLocalStore, type AsyncLocalStoreOptions } from './stores/memory/async-local-store.js'
export {
  DEFAULT_MAX_SIZE,
  ProcessMemoryStore,
  type ProcessMemoryStoreOptions,
} from './stores/memory/process-memory-store.js'
