/**
 * Every optional field of a public options type takes `undefined` (meaning the default, as at
 * runtime: test/unit/undefined-options.test.ts), also under `exactOptionalPropertyTypes`, which this
 * repository's tsconfig.json sets: `new RedisStore({ url: process.env.REDIS_URL })` compiles.
 */
import { describe, expectTypeOf, it } from 'vitest'
import {
  type AsyncLocalStoreOptions,
  type BackendReadOptions,
  type BackendRouteOptions,
  type BreakerOptions,
  type CacheStoreOptions,
  ChainedStore,
  type ChainedStoreOptions,
  type GetEntriesOptions,
  type InvalidateOptions,
  type KeyValueStoreOptions,
  type LoaderStoreOptions,
  type Model,
  ProcessMemoryStore,
  type ProcessMemoryStoreOptions,
  type PutEntriesOptions,
  type StoreDecoratorOptions,
} from '../../src/index.js'
import type {
  InvalidationTriggerOptions,
  ListenConnectionOptions,
  PostgresBusOptions,
  RedisBusOptions,
  WatchDatabaseOptions,
} from '../../src/invalidation/index.js'
import type { KeyvBackendOptions, KeyvStoreOptions } from '../../src/stores/keyv/index.js'
import type {
  MemcacheBackendOptions,
  MemcacheConnectionOptions,
  MemcacheStoreOptions,
  MemcacheWeightedServer,
} from '../../src/stores/memcache/index.js'
import { type RedisBackendOptions, RedisStore, type RedisStoreOptions } from '../../src/stores/redis/index.js'
import type { CacheSyncOptions, CreateTableOptions, SqlStoreOptions } from '../../src/stores/sql/index.js'
import type { BusConformanceOptions, BusOutage, ConformanceOptions, ConformanceTarget } from '../../src/testing/index.js'

/** The optional fields of `T`. */
type OptionalKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? K : never }[keyof T]
/** The optional fields of `T` that refuse `undefined` (`never` when all take it). */
type RefusingUndefined<T> = { [K in OptionalKeys<T>]-?: { [P in K]: undefined } extends Pick<T, K> ? never : K }[OptionalKeys<T>]

class Weather {
  static readonly stockpyleKeys = ['city'] as const
  constructor(public city: string) {}
}

describe('options take undefined for every optional field (exactOptionalPropertyTypes)', () => {
  it('chain', () => {
    expectTypeOf<RefusingUndefined<ChainedStoreOptions>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<BreakerOptions>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<Exclude<ChainedStoreOptions['leases'], boolean | undefined>>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<StoreDecoratorOptions>>().toEqualTypeOf<never>()
  })

  it('stores of the main entry point', () => {
    expectTypeOf<RefusingUndefined<CacheStoreOptions>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<KeyValueStoreOptions>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<ProcessMemoryStoreOptions>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<AsyncLocalStoreOptions>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<LoaderStoreOptions<Model>>>().toEqualTypeOf<never>()
  })

  it('the Store contract', () => {
    expectTypeOf<RefusingUndefined<GetEntriesOptions>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<PutEntriesOptions>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<InvalidateOptions>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<BackendReadOptions>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<BackendRouteOptions>>().toEqualTypeOf<never>()
  })

  it('stockpyle/redis, stockpyle/memcache, stockpyle/keyv, stockpyle/sql', () => {
    expectTypeOf<RefusingUndefined<RedisStoreOptions>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<RedisBackendOptions>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<MemcacheConnectionOptions>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<MemcacheStoreOptions>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<MemcacheBackendOptions>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<MemcacheWeightedServer>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<KeyvStoreOptions>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<KeyvBackendOptions>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<SqlStoreOptions>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<CreateTableOptions>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<CacheSyncOptions>>().toEqualTypeOf<never>()
  })

  it('stockpyle/invalidation', () => {
    expectTypeOf<RefusingUndefined<RedisBusOptions>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<PostgresBusOptions>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<ListenConnectionOptions>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<WatchDatabaseOptions>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<InvalidationTriggerOptions>>().toEqualTypeOf<never>()
  })

  it('stockpyle/testing (what a user passes in)', () => {
    expectTypeOf<RefusingUndefined<ConformanceTarget>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<ConformanceOptions>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<BusConformanceOptions>>().toEqualTypeOf<never>()
    expectTypeOf<RefusingUndefined<BusOutage>>().toEqualTypeOf<never>()
  })

  it('an environment variable that may be unset passes as an option (docs/stores/loader.md)', () => {
    const env: Record<string, string | undefined> = {}
    void new RedisStore({ url: env.REDIS_URL, lifetime: 300, grace: 3600 })
    void new ProcessMemoryStore({ max: undefined, lifetime: undefined, name: env.NAME })
    void new ChainedStore([new ProcessMemoryStore()], { timeout: undefined, onCacheError: undefined, breaker: { failures: undefined } })
    expectTypeOf(Weather).toExtend<Model>()
  })

  it('a misspelt or mistyped option is still an error', () => {
    // @ts-expect-error a misspelt name
    void new RedisStore({ urll: 'redis://h:1' })
    // @ts-expect-error null is not undefined
    void new RedisStore({ url: null })
    // @ts-expect-error the wrong type
    void new ChainedStore([new ProcessMemoryStore()], { timeout: '1' })
  })
})
