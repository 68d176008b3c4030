import { InvalidOptionError, show } from '../core/errors.js'
import type { Instance, Lookup, Model } from '../core/model.js'
import type {
  GetEntriesOptions,
  InvalidateOptions,
  LeaseCapable,
  PutEntriesOptions,
  Store,
  StoreCapabilities,
  StoreEntry,
  TransactionCapable,
  TransactionHandle,
} from './base-store.js'

/** Every call a {@link StoreDecorator} forwards, as its {@link StoreDecorator.around} hook sees it. */
export type DecoratedOperation =
  | 'get'
  | 'batchGet'
  | 'batchGetEntries'
  | 'put'
  | 'batchPut'
  | 'batchPutEntries'
  | 'delete'
  | 'batchDelete'
  | 'batchDeleteByKey'
  | 'batchInvalidate'
  | 'clear'
  | 'clearCaches'
  | 'acquireLeases'
  | 'releaseLeases'
  | 'leasesHeld'
  | 'transaction'
  | 'close'

/** Options of {@link StoreDecorator}. */
export interface StoreDecoratorOptions {
  /** Name in messages, events and stats. Default: the wrapped store's name. */
  name?: string | undefined
}

/** Methods a store may lack; a decorator has each exactly when the store it wraps has it. */
const OPTIONAL = [
  'batchInvalidate',
  'batchDeleteByKey',
  'clear',
  'clearCaches',
  'acquireLeases',
  'releaseLeases',
  'leasesHeld',
  'transaction',
  'onRemoteChange',
] as const

/** What a wrapped store may have beyond the contract: leases, transactions, a nested chain's `clearCaches`. */
type Wrapped = Store & Partial<LeaseCapable> & Partial<TransactionCapable> & { clearCaches?: () => Promise<void> }

/**
 * The base of a store that wraps another (logging, metrics, fault injection, delays). It forwards the
 * whole contract a chain talks to its layers through — `batchGetEntries` (with `stale`),
 * `batchPutEntries` (with expiry caps and the `backfill` option), `batchDelete` (of objects or by
 * key), `batchDeleteByKey`, `batchInvalidate`, `clear`, leases, transactions and `close` — as well as
 * `get`/`put`/`delete`/`batchGet`/`batchPut`, each to the same method of the wrapped store, and it
 * declares the wrapped store's `capabilities`.
 *
 * Override one hook, {@link around}, which every forwarded call passes through. Optional methods
 * (`batchInvalidate`, `batchDeleteByKey`, `clear`, the lease methods, `transaction`) exist on the
 * decorator exactly when the wrapped store has them, so a chain sees the same store it would see
 * unwrapped. The transaction handle passed to a `transaction` callback is the wrapped store's.
 *
 * Do not extend `BaseStore` to wrap a store: a chain reaches its layers through `batchGetEntries` and
 * `batchPutEntries`, which `BaseStore` maps onto primitives a wrapper does not have.
 *
 * @example
 * class LoggingStore extends StoreDecorator {
 *   protected override async around<T>(operation: DecoratedOperation, args: readonly unknown[], call: () => Promise<T>) {
 *     console.log(this.name, operation)
 *     return call()
 *   }
 * }
 * const chain = new ChainedStore([new LoggingStore(new ProcessMemoryStore()), sqlStore])
 */
export class StoreDecorator implements Store {
  /** The wrapped store. */
  readonly inner: Store
  readonly name: string

  /** @throws InvalidOptionError when `inner` is not a store or an option is invalid. */
  constructor(inner: Store, options: StoreDecoratorOptions = {}) {
    const store = inner as Partial<Store> | null
    if (
      typeof store?.batchGetEntries !== 'function' ||
      typeof store.batchPutEntries !== 'function' ||
      typeof store.batchDelete !== 'function' ||
      typeof store.close !== 'function'
    ) {
      throw new InvalidOptionError(`${new.target.name}: the wrapped store must implement the Store contract, got ${show(inner)}`)
    }
    if (options.name !== undefined && (typeof options.name !== 'string' || options.name === '')) {
      throw new InvalidOptionError(`${new.target.name}: option \`name\` must be a non-empty string, got ${show(options.name)}`)
    }
    this.inner = inner
    this.name = options.name ?? inner.name
    for (const method of OPTIONAL) {
      if (typeof (inner as Wrapped)[method] !== 'function') {
        Object.defineProperty(this, method, { value: undefined, writable: true, configurable: true, enumerable: false })
      }
    }
  }

  /** The wrapped store's capabilities. Override the getter to declare otherwise. */
  get capabilities(): StoreCapabilities {
    return this.inner.capabilities
  }

  /**
   * Every forwarded call runs through here: `call()` makes it on the wrapped store; `args` are the
   * arguments it was given (read them, do not change them). Resolve with what `call()` resolves to,
   * or reject. The default just calls.
   */
  protected around<T>(_operation: DecoratedOperation, _args: readonly unknown[], call: () => Promise<T>): Promise<T> {
    return call()
  }

  get<M extends Model>(model: M, lookup: Lookup<M>): Promise<Instance<M> | undefined> {
    return this.around('get', [model, lookup], () => this.inner.get(model, lookup))
  }
  batchGet<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<(Instance<M> | undefined)[]> {
    return this.around('batchGet', [model, lookups], () => this.inner.batchGet(model, lookups))
  }
  batchGetEntries<M extends Model>(
    model: M,
    lookups: readonly Lookup<M>[],
    options?: GetEntriesOptions,
  ): Promise<(StoreEntry<Instance<M>> | undefined)[]> {
    return this.around('batchGetEntries', [model, lookups, options], () => this.inner.batchGetEntries(model, lookups, options))
  }
  put(obj: object): Promise<void> {
    return this.around('put', [obj], () => this.inner.put(obj))
  }
  batchPut(objs: readonly object[]): Promise<void> {
    return this.around('batchPut', [objs], () => this.inner.batchPut(objs))
  }
  batchPutEntries(entries: readonly StoreEntry[], options?: PutEntriesOptions): Promise<void> {
    return this.around('batchPutEntries', [entries, options], () => this.inner.batchPutEntries(entries, options))
  }
  delete(obj: object): Promise<void>
  delete<M extends Model>(model: M, lookup: Lookup<M>): Promise<void>
  delete(...args: [object] | [Model, object]): Promise<void> {
    return this.around('delete', args, () => (this.inner.delete as (...a: unknown[]) => Promise<void>).apply(this.inner, args))
  }
  batchDelete(objs: readonly object[]): Promise<void>
  batchDelete<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<void>
  batchDelete(...args: [readonly object[]] | [Model, readonly object[]]): Promise<void> {
    return this.around('batchDelete', args, () => (this.inner.batchDelete as (...a: unknown[]) => Promise<void>).apply(this.inner, args))
  }
  /** Present when the wrapped store has it (see {@link Store.batchDeleteByKey}). */
  batchDeleteByKey?<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<(Instance<M> | undefined)[]> {
    return this.around('batchDeleteByKey', [model, lookups], () =>
      (this.inner as Required<Pick<Store, 'batchDeleteByKey'>>).batchDeleteByKey(model, lookups),
    )
  }
  /** Present when the wrapped store has it (see {@link Store.clear}). */
  clear?(): Promise<void> {
    return this.around('clear', [], () => (this.inner.clear as NonNullable<Store['clear']>).call(this.inner))
  }
  /** Present when the wrapped store has it: a nested `ChainedStore`'s `clearCaches()`, which a chain calls on its last layer. */
  clearCaches?(): Promise<void> {
    return this.around('clearCaches', [], () => (this.inner as Wrapped as Required<Pick<Wrapped, 'clearCaches'>>).clearCaches())
  }
  /** Present when the wrapped store has it (see {@link Store.batchInvalidate}). */
  batchInvalidate?<M extends Model>(model: M, lookups: readonly Lookup<M>[], options?: InvalidateOptions): Promise<void> {
    return this.around('batchInvalidate', [model, lookups, options], () =>
      (this.inner.batchInvalidate as NonNullable<Store['batchInvalidate']>).call(this.inner, model, lookups, options),
    )
  }
  /** Present when the wrapped store hands out leases (see {@link LeaseCapable}). */
  acquireLeases?<M extends Model>(model: M, lookups: readonly Lookup<M>[], ttlMs: number): Promise<boolean[]> {
    return this.around('acquireLeases', [model, lookups, ttlMs], () =>
      (this.inner as Wrapped as LeaseCapable).acquireLeases(model, lookups, ttlMs),
    )
  }
  /** Present when the wrapped store hands out leases (see {@link LeaseCapable}). */
  releaseLeases?<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<void> {
    return this.around('releaseLeases', [model, lookups], () => (this.inner as Wrapped as LeaseCapable).releaseLeases(model, lookups))
  }
  /** Present when the wrapped store has it (see {@link Store.onRemoteChange}): passed on as it is, not a call {@link around} sees. */
  onRemoteChange?(listener: (coherent: boolean) => void): () => void {
    return (this.inner.onRemoteChange as NonNullable<Store['onRemoteChange']>).call(this.inner, listener)
  }
  /** Present when the wrapped store hands out leases (see {@link LeaseCapable}). */
  leasesHeld?<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<boolean[]> {
    return this.around('leasesHeld', [model, lookups], () => (this.inner as Wrapped as LeaseCapable).leasesHeld(model, lookups))
  }
  /** Present when the wrapped store runs transactions (see {@link TransactionCapable}); `fn` gets the wrapped store's handle. */
  transaction?<R>(fn: (tx: TransactionHandle) => Promise<R>): Promise<R> {
    return this.around('transaction', [fn], () => (this.inner as Wrapped as TransactionCapable).transaction(fn))
  }
  /** Closes the wrapped store (idempotent as it is). */
  close(): Promise<void> {
    return this.around('close', [], () => this.inner.close())
  }
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }
}
