import { InvalidOptionError, show, UnsupportedOperationError } from '../core/errors.js'
import type { Instance, Lookup, Model } from '../core/model.js'
import { checkOptionNames } from '../core/options.js'
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

/**
 * Options of {@link StoreDecorator}. A subclass with options of its own extends this type and
 * {@link StoreDecorator.optionNames}.
 */
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

/** The refusal of StoreDecorator's forwarding of an optional method the wrapped store lacks (reached through `super`). */
function unsupported(decorator: StoreDecorator, method: (typeof OPTIONAL)[number]): UnsupportedOperationError {
  return new UnsupportedOperationError(
    `${decorator.name} store: ${method}() is not supported: the store it wraps (${decorator.inner.name}) has no ${method}()`,
  )
}

/**
 * The base of a store that wraps another (logging, metrics, fault injection, delays). It forwards the
 * whole contract a chain talks to its layers through — `batchGetEntries` (with `stale`),
 * `batchPutEntries` (with expiry caps and the `backfill` option), `batchDelete` (of objects or by
 * key), `batchDeleteByKey`, `batchInvalidate`, `clear`, leases, transactions and `close` — as well as
 * `get`/`put`/`delete`/`batchGet`/`batchPut`, each to the same method of the wrapped store, and it
 * declares the wrapped store's `capabilities`.
 *
 * Override one hook, {@link around}, which every forwarded call passes through. Optional methods
 * (`batchInvalidate`, `batchDeleteByKey`, `clear`, `clearCaches`, the lease methods, `transaction`,
 * `onRemoteChange`) exist on the decorator exactly when the wrapped store has them, so a chain sees the
 * same store it would see unwrapped — unless a subclass implements one itself (a decorator adding
 * `clear()` of a memo of its own, or leases, in front of a store without them): the subclass's method
 * is then kept whatever the wrapped store has (declare it in `capabilities` too, e.g. `leases`,
 * `clearable`). Calling StoreDecorator's forwarding of a method the wrapped store lacks (`super.clear()`)
 * rejects with `UnsupportedOperationError`. The transaction handle passed to a `transaction` callback is
 * the wrapped store's.
 *
 * Options are checked like every store's: unknown names are refused with `InvalidOptionError` (with the
 * intended name when one is close). A subclass with options of its own lists them in
 * {@link StoreDecorator.optionNames} (`static override readonly optionNames = [...StoreDecorator.optionNames, 'level']`)
 * and may pass its whole options object to `super`.
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
  /**
   * The option names the constructor accepts; any other is refused with `InvalidOptionError`. A
   * subclass with options of its own extends the list:
   * `static override readonly optionNames = [...StoreDecorator.optionNames, 'level']`.
   */
  static readonly optionNames: readonly string[] = Object.freeze(['name'])

  /**
   * The name of a decorator created without a `name` option: the wrapped store's name. A subclass may
   * name its instances after what it does (`FaultStore`: `fault(<the wrapped store's name>)`).
   */
  protected static defaultName(inner: Store): string {
    return inner.name
  }

  /** The wrapped store. */
  readonly inner: Store
  readonly name: string

  /**
   * @param options checked against the `optionNames` of the class being constructed (`new.target`).
   * @throws InvalidOptionError when `inner` is not a store, `options` is not an object, an option name
   *   is unknown or an option is invalid.
   */
  constructor(inner: Store, options: StoreDecoratorOptions = {}) {
    const owner = new.target.name || 'StoreDecorator'
    const store = inner as Partial<Store> | null
    if (
      typeof store?.batchGetEntries !== 'function' ||
      typeof store.batchPutEntries !== 'function' ||
      typeof store.batchDelete !== 'function' ||
      typeof store.close !== 'function'
    ) {
      throw new InvalidOptionError(`${owner}: the wrapped store must implement the Store contract, got ${show(inner)}`)
    }
    if (typeof options !== 'object' || options === null || Array.isArray(options)) {
      throw new InvalidOptionError(`${owner}: options must be an object, got ${show(options)}`)
    }
    checkOptionNames(owner, options, (new.target as typeof StoreDecorator).optionNames)
    if (options.name !== undefined && (typeof options.name !== 'string' || options.name === '')) {
      throw new InvalidOptionError(`${owner}: option \`name\` must be a non-empty string, got ${show(options.name)}`)
    }
    this.inner = inner
    this.name = options.name ?? (new.target as typeof StoreDecorator).defaultName(inner)
    const own = this as unknown as Record<string, unknown>
    const base = StoreDecorator.prototype as unknown as Record<string, unknown>
    for (const method of OPTIONAL) {
      // absent when the wrapped store lacks it, unless the subclass implements it itself
      if (typeof (inner as Wrapped)[method] !== 'function' && own[method] === base[method]) {
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
    return this.around('batchDeleteByKey', [model, lookups], () => {
      const inner = this.inner
      return typeof inner.batchDeleteByKey === 'function'
        ? inner.batchDeleteByKey(model, lookups)
        : Promise.reject(unsupported(this, 'batchDeleteByKey'))
    })
  }
  /** Present when the wrapped store has it (see {@link Store.clear}). */
  clear?(): Promise<void> {
    return this.around('clear', [], () => {
      const inner = this.inner
      return typeof inner.clear === 'function' ? inner.clear() : Promise.reject(unsupported(this, 'clear'))
    })
  }
  /** Present when the wrapped store has it: a nested `ChainedStore`'s `clearCaches()`, which a chain calls on its last layer. */
  clearCaches?(): Promise<void> {
    return this.around('clearCaches', [], () => {
      const inner = this.inner as Wrapped
      return typeof inner.clearCaches === 'function' ? inner.clearCaches() : Promise.reject(unsupported(this, 'clearCaches'))
    })
  }
  /** Present when the wrapped store has it (see {@link Store.batchInvalidate}). */
  batchInvalidate?<M extends Model>(model: M, lookups: readonly Lookup<M>[], options?: InvalidateOptions): Promise<void> {
    return this.around('batchInvalidate', [model, lookups, options], () => {
      const inner = this.inner
      return typeof inner.batchInvalidate === 'function'
        ? inner.batchInvalidate(model, lookups, options)
        : Promise.reject(unsupported(this, 'batchInvalidate'))
    })
  }
  /** Present when the wrapped store hands out leases (see {@link LeaseCapable}). */
  acquireLeases?<M extends Model>(model: M, lookups: readonly Lookup<M>[], ttlMs: number): Promise<boolean[]> {
    return this.around('acquireLeases', [model, lookups, ttlMs], () => {
      const inner = this.inner as Wrapped
      return typeof inner.acquireLeases === 'function'
        ? inner.acquireLeases(model, lookups, ttlMs)
        : Promise.reject(unsupported(this, 'acquireLeases'))
    })
  }
  /** Present when the wrapped store hands out leases (see {@link LeaseCapable}). */
  releaseLeases?<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<void> {
    return this.around('releaseLeases', [model, lookups], () => {
      const inner = this.inner as Wrapped
      return typeof inner.releaseLeases === 'function'
        ? inner.releaseLeases(model, lookups)
        : Promise.reject(unsupported(this, 'releaseLeases'))
    })
  }
  /** Present when the wrapped store has it (see {@link Store.onRemoteChange}): passed on as it is, not a call {@link around} sees. */
  onRemoteChange?(listener: (coherent: boolean) => void): () => void {
    const inner = this.inner
    if (typeof inner.onRemoteChange !== 'function') throw unsupported(this, 'onRemoteChange')
    return inner.onRemoteChange(listener)
  }
  /** Present when the wrapped store hands out leases (see {@link LeaseCapable}). */
  leasesHeld?<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<boolean[]> {
    return this.around('leasesHeld', [model, lookups], () => {
      const inner = this.inner as Wrapped
      return typeof inner.leasesHeld === 'function' ? inner.leasesHeld(model, lookups) : Promise.reject(unsupported(this, 'leasesHeld'))
    })
  }
  /** Present when the wrapped store runs transactions (see {@link TransactionCapable}); `fn` gets the wrapped store's handle. */
  transaction?<R>(fn: (tx: TransactionHandle) => Promise<R>): Promise<R> {
    return this.around('transaction', [fn], () => {
      const inner = this.inner as Wrapped
      return typeof inner.transaction === 'function' ? inner.transaction(fn) : Promise.reject(unsupported(this, 'transaction'))
    })
  }
  /** Closes the wrapped store (idempotent as it is). */
  close(): Promise<void> {
    return this.around('close', [], () => this.inner.close())
  }
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }
}
