import type {
  GetEntriesOptions,
  Instance,
  LeaseCapable,
  Lookup,
  Model,
  PutEntriesOptions,
  Store,
  StoreCapabilities,
  StoreEntry,
} from '../index.js'
import { StoreUnavailableError, UnsupportedOperationError } from '../index.js'

/** Operations a {@link FaultStore} can fail or delay. */
export type FaultOperation = 'get' | 'put' | 'delete'

/**
 * Wraps a store and injects failures and delays, for testing chain policy without a network:
 * `fail('get')` makes reads reject with StoreUnavailableError until `recover()`; `delay(ms)` holds
 * every call for `ms` first; `jitter(maxMs)` holds each call for a random 0–`maxMs` ms; `gate()` holds
 * calls until the returned release function is called.
 */
export class FaultStore implements Store {
  readonly #inner: Store
  readonly #failing = new Set<FaultOperation>()
  #delay = 0
  #jitter = 0
  #random: () => number = Math.random
  readonly #gates = new Map<FaultOperation, Promise<void>>()
  /** How many calls are held by a gate now, per operation. */
  readonly waiting: Record<FaultOperation, number> = { get: 0, put: 0, delete: 0 }
  /** How many calls were made to this wrapper, failed or not, per operation. */
  readonly attempts: Record<FaultOperation, number> = { get: 0, put: 0, delete: 0 }
  /** How many calls reached the wrapped store, per operation. */
  readonly calls: Record<FaultOperation, number> = { get: 0, put: 0, delete: 0 }

  constructor(inner: Store) {
    this.#inner = inner
  }

  get name(): string {
    return `fault(${this.#inner.name})`
  }
  get capabilities(): StoreCapabilities {
    // It fails on purpose, so it is never an in-process layer a chain may call unguarded.
    const inner = this.#inner
    return { ...inner.capabilities, inProcess: false, clearable: inner.capabilities.clearable ?? typeof inner.clear === 'function' }
  }

  /** Makes the given operations (default: all) reject until {@link recover}. */
  fail(...operations: FaultOperation[]): void {
    for (const op of operations.length > 0 ? operations : (['get', 'put', 'delete'] as const)) this.#failing.add(op)
  }
  /** Ends every injected failure, delay and jitter. */
  recover(): void {
    this.#failing.clear()
    this.#delay = 0
    this.#jitter = 0
  }
  /** Delays every later call by `ms` milliseconds. */
  delay(ms: number): void {
    this.#delay = ms
  }
  /**
   * Delays each later call by a random whole number of milliseconds from 0 to `maxMs` (on top of
   * {@link delay}), drawn from `random` (default `Math.random`; pass a seeded generator for
   * reproducible delays). `0` turns it off.
   */
  jitter(maxMs: number, random: () => number = Math.random): void {
    if (!(Number.isFinite(maxMs) && maxMs >= 0)) throw new RangeError(`FaultStore.jitter: maxMs must be a number >= 0, got ${maxMs}`)
    this.#jitter = maxMs
    this.#random = random
  }
  /** Holds later calls of the given operations (default: all) until the returned function is called. */
  gate(...operations: FaultOperation[]): () => void {
    let open!: () => void
    const gate = new Promise<void>((resolve) => {
      open = resolve
    })
    const ops = operations.length > 0 ? operations : (['get', 'put', 'delete'] as const)
    for (const op of ops) this.#gates.set(op, gate)
    return () => {
      for (const op of ops) if (this.#gates.get(op) === gate) this.#gates.delete(op)
      open()
    }
  }

  async #enter(op: FaultOperation): Promise<void> {
    this.attempts[op]++
    const gate = this.#gates.get(op)
    if (gate !== undefined) {
      this.waiting[op]++
      await gate
      this.waiting[op]--
    }
    const ms = this.#delay + (this.#jitter > 0 ? Math.floor(this.#random() * (this.#jitter + 1)) : 0)
    if (ms > 0) await new Promise((r) => setTimeout(r, ms))
    if (this.#failing.has(op)) throw new StoreUnavailableError(`${this.name} store is failing ${op} (injected)`)
    this.calls[op]++
  }

  async get<M extends Model>(model: M, lookup: Lookup<M>): Promise<Instance<M> | undefined> {
    await this.#enter('get')
    return this.#inner.get(model, lookup)
  }
  async batchGet<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<(Instance<M> | undefined)[]> {
    await this.#enter('get')
    return this.#inner.batchGet(model, lookups)
  }
  async batchGetEntries<M extends Model>(
    model: M,
    lookups: readonly Lookup<M>[],
    options?: GetEntriesOptions,
  ): Promise<(StoreEntry<Instance<M>> | undefined)[]> {
    await this.#enter('get')
    return this.#inner.batchGetEntries(model, lookups, options)
  }
  async put(obj: object): Promise<void> {
    await this.#enter('put')
    return this.#inner.put(obj)
  }
  async batchPut(objs: readonly object[]): Promise<void> {
    await this.#enter('put')
    return this.#inner.batchPut(objs)
  }
  async batchPutEntries(entries: readonly StoreEntry[], options?: PutEntriesOptions): Promise<void> {
    await this.#enter('put')
    return this.#inner.batchPutEntries(entries, options)
  }
  async batchInvalidate<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<void> {
    await this.#enter('delete')
    await this.#inner.batchInvalidate?.(model, lookups)
  }
  delete(obj: object): Promise<void>
  delete<M extends Model>(model: M, lookup: Lookup<M>): Promise<void>
  async delete(...args: [object] | [Model, object]): Promise<void> {
    await this.#enter('delete')
    return (this.#inner.delete as (...a: unknown[]) => Promise<void>).apply(this.#inner, args)
  }
  batchDelete(objs: readonly object[]): Promise<void>
  batchDelete<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<void>
  async batchDelete(...args: [readonly object[]] | [Model, readonly object[]]): Promise<void> {
    await this.#enter('delete')
    return (this.#inner.batchDelete as (...a: unknown[]) => Promise<void>).apply(this.#inner, args)
  }
  async batchDeleteByKey<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<(Instance<M> | undefined)[]> {
    await this.#enter('delete')
    const inner = this.#inner
    if (inner.batchDeleteByKey !== undefined) return inner.batchDeleteByKey(model, lookups)
    // A custom inner store without the primitive: find the objects, then delete them.
    const found = (await inner.batchGetEntries(model, lookups)).map((e) => e?.value)
    const objects = found.filter((v): v is Instance<M> => v !== undefined)
    if (objects.length > 0) await inner.batchDelete(objects)
    return found
  }
  /** Forwards `clear()` (counted as a delete). @throws UnsupportedOperationError when the inner store has none. */
  async clear(): Promise<void> {
    const inner = this.#inner
    if (inner.clear === undefined) throw new UnsupportedOperationError(`${this.name} store: the wrapped store has no clear()`)
    await this.#enter('delete')
    await inner.clear()
  }
  async acquireLeases<M extends Model>(model: M, lookups: readonly Lookup<M>[], ttlMs: number): Promise<boolean[]> {
    await this.#enter('get')
    return this.#leases().acquireLeases(model, lookups, ttlMs)
  }
  async releaseLeases<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<void> {
    await this.#enter('delete')
    return this.#leases().releaseLeases(model, lookups)
  }
  async leasesHeld<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<boolean[]> {
    await this.#enter('get')
    return this.#leases().leasesHeld(model, lookups)
  }
  #leases(): LeaseCapable {
    const inner = this.#inner as Store & Partial<LeaseCapable>
    if (typeof inner.acquireLeases !== 'function') throw new StoreUnavailableError(`${this.name} store hands out no leases`)
    return inner as unknown as LeaseCapable
  }
  close(): Promise<void> {
    return this.#inner.close()
  }
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }
}
