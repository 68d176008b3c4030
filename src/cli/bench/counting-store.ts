import type { Store, StoreCapabilities, StoreEntry } from '../../contracts/base-store.js'
import type { Instance, Lookup, Model } from '../../core/model.js'

/**
 * A store that forwards every call to another one and counts the reads that reach it: how S6 counts
 * database reads under a hot-miss storm.
 */
export class CountingStore implements Store {
  readonly name: string
  readonly capabilities: StoreCapabilities
  /** Read calls (batch calls included, each counted once) since the last {@link CountingStore.reset}. */
  reads = 0
  /** Lookups read since the last reset. */
  lookups = 0
  readonly #inner: Store

  constructor(inner: Store) {
    this.#inner = inner
    this.name = `counting(${inner.name})`
    this.capabilities = inner.capabilities
  }

  /** Zeroes the counters. */
  reset(): void {
    this.reads = 0
    this.lookups = 0
  }

  put(obj: object): Promise<void> {
    return this.#inner.put(obj)
  }

  get<M extends Model>(model: M, lookup: Lookup<M>): Promise<Instance<M> | undefined> {
    this.reads++
    this.lookups++
    return this.#inner.get(model, lookup)
  }

  delete(obj: object): Promise<void>
  delete<M extends Model>(model: M, lookup: Lookup<M>): Promise<void>
  delete(...args: [object] | [Model, object]): Promise<void> {
    return (this.#inner.delete as (...a: unknown[]) => Promise<void>).apply(this.#inner, args)
  }

  batchPut(objs: readonly object[]): Promise<void> {
    return this.#inner.batchPut(objs)
  }

  batchGet<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<(Instance<M> | undefined)[]> {
    this.reads++
    this.lookups += lookups.length
    return this.#inner.batchGet(model, lookups)
  }

  batchDelete(objs: readonly object[]): Promise<void>
  batchDelete<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<void>
  batchDelete(...args: [readonly object[]] | [Model, readonly object[]]): Promise<void> {
    return (this.#inner.batchDelete as (...a: unknown[]) => Promise<void>).apply(this.#inner, args)
  }

  batchGetEntries<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<(StoreEntry<Instance<M>> | undefined)[]> {
    this.reads++
    this.lookups += lookups.length
    return this.#inner.batchGetEntries(model, lookups)
  }

  batchPutEntries(entries: readonly StoreEntry[]): Promise<void> {
    return this.#inner.batchPutEntries(entries)
  }

  close(): Promise<void> {
    return this.#inner.close()
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }
}
