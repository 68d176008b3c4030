import {
  BaseStore,
  capabilities,
  type LookupRequest,
  type StoreCapabilities,
  type StoreEntry,
  type WriteItem,
} from '../../contracts/base-store.js'
import { decodeRecord, encodeRecord } from '../../core/codec.js'
import {
  InvalidOptionError,
  StockpyleError,
  StoreUnavailableError,
  show,
  UnknownModelError,
  UnsupportedOperationError,
} from '../../core/errors.js'
import { encodeLookup, keyOfObjectFor, keysOfObject } from '../../core/key-encoding.js'
import type { Instance, Lookup, Model } from '../../core/model.js'
import { msOption } from '../../core/option-values.js'
import { checkOptionNames } from '../../core/options.js'
import { describeModel, describeModelIn, type ModelInfo } from '../../core/registry.js'
import { messageOf, unavailableUnlessOurs } from '../../core/unavailable-unless-ours.js'
import { withTimeout } from '../../core/with-timeout.js'

/** Options of {@link LoaderStore}. */
export interface LoaderStoreOptions<M extends Model> {
  /** The one model this store serves; a get of another model rejects with `UnknownModelError`. */
  model: M
  /**
   * Resolves one object (an instance of `model`) or `undefined` per lookup, in the same order. Called
   * with distinct lookups only (duplicates are answered from one load), and with the model the caller
   * asked for: `model` or one of its subclasses (`get(Admin, …)` on a store of `User` passes `Admin`).
   * An object that is an instance of `model` but not of the subclass asked for is a miss of that
   * subclass (`undefined`); anything else that is not an instance of `model` rejects the call. Whatever
   * it throws rejects the call (as `StoreUnavailableError` with the error as `cause`), so a chain's
   * `serveStale` applies.
   */
  load: (lookups: readonly Lookup<M>[], model: M) => Promise<readonly (Instance<M> | undefined)[]> | readonly (Instance<M> | undefined)[]
  /** Stores the objects (insert or replace). Without it, puts reject with `UnsupportedOperationError`. */
  save?: ((objs: readonly Instance<M>[]) => Promise<void> | void) | undefined
  /** Removes the objects (absent ones are a no-op). Without it, deletes reject with `UnsupportedOperationError`. */
  remove?: ((objs: readonly Instance<M>[]) => Promise<void> | void) | undefined
  /** Name in messages and stats. Default `loader(<model name>)`. */
  name?: string | undefined
  /**
   * Most ms one call of `load`, `save` or `remove` may take (< 2^31): past it the store's call rejects
   * with `StoreUnavailableError` (a chain's `serveStale` applies) and the late result is ignored — a
   * late `save` or `remove` may still take effect in the source. Default: none; a `load` that never
   * settles then keeps every read of its keys waiting, as reads in flight are joined.
   */
  timeout?: number | undefined
}

const KNOWN = ['model', 'load', 'save', 'remove', 'name', 'timeout']
/** The capabilities of a loader, by whether it refuses puts (no `save`) and deletes (no `remove`). */
const loaderCapabilities = (refusesPuts: boolean, refusesDeletes: boolean): StoreCapabilities =>
  capabilities({ authoritative: true, expires: false, generatesKeys: false, polymorphic: false, refusesPuts, refusesDeletes })

/**
 * An authoritative layer built from functions: put it last in a chain to cache any source — a REST API,
 * another service, a computed value — with every protection a database gets (single-flight, leases,
 * backfill caps, negative caching, stale serving):
 *
 * ```ts
 * const weather = new ChainedStore([new ProcessMemoryStore({ lifetime: 60 }),
 *   new LoaderStore({ model: Weather, load: (lookups) => Promise.all(lookups.map(fetchWeather)) })])
 * await weather.get(Weather, { city: 'Oslo' })   // a typed getOrSet
 * ```
 *
 * `load` results are checked (one per lookup, an instance of `model` holding the looked-up key; one of
 * `model` that is not an instance of the subclass asked for is a miss of it) and copied, so what a
 * caller gets is its own. Without `save`/`remove`, writes are refused with `UnsupportedOperationError`
 * before anything is written, and declared (`capabilities.refusesPuts` / `refusesDeletes`) so that a
 * chain in front refuses them before touching any layer. See docs/stores/loader.md.
 */
export class LoaderStore<M extends Model = Model> extends BaseStore {
  readonly name: string
  /**
   * `authoritative`, never expiring; `refusesPuts` without `save` and `refusesDeletes` without `remove`
   * (a chain in front then refuses those writes before touching any layer).
   */
  override readonly capabilities: StoreCapabilities
  /** The model this store serves. */
  readonly model: M
  readonly #info: ModelInfo
  readonly #load: LoaderStoreOptions<M>['load']
  readonly #timeout: number | undefined
  readonly #save: LoaderStoreOptions<M>['save']
  readonly #remove: LoaderStoreOptions<M>['remove']

  /** @throws InvalidOptionError naming a missing or invalid option. */
  constructor(options: LoaderStoreOptions<M>) {
    super()
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError(`LoaderStore: options must be an object with \`model\` and \`load\`, got ${show(options)}`)
    }
    checkOptionNames('LoaderStore', options, KNOWN)
    let info: ModelInfo
    try {
      info = describeModel(options.model)
    } catch (err) {
      throw new InvalidOptionError(`LoaderStore: option \`model\` must be a model class, got ${show(options.model)}`, { cause: err })
    }
    const name = options.name ?? `loader(${info.name})`
    if (typeof name !== 'string' || name === '')
      throw new InvalidOptionError(`LoaderStore: option \`name\` must be a non-empty string, got ${show(name)}`)
    for (const fn of ['load', 'save', 'remove'] as const) {
      const value = options[fn]
      if ((fn === 'load' || value !== undefined) && typeof value !== 'function') {
        throw new InvalidOptionError(`${name}: option \`${fn}\` must be a function, got ${show(value)}`)
      }
    }
    this.name = name
    this.model = options.model
    this.#info = info
    this.#load = options.load
    this.#timeout = options.timeout === undefined ? undefined : msOption(name, 'timeout', options.timeout, 0)
    this.#save = options.save
    this.#remove = options.remove
    this.capabilities = loaderCapabilities(options.save === undefined, options.remove === undefined)
  }

  /** True when the store has `save` and `remove` (it accepts writes). */
  get writable(): boolean {
    return this.#save !== undefined && this.#remove !== undefined
  }

  protected async readMany(info: ModelInfo, requests: readonly LookupRequest[]): Promise<(StoreEntry | undefined)[]> {
    this.#checkModel(info, 'get')
    const keys = requests.map((r) => encodeLookup(info, r.lookup, `${this.name} store get`))
    const first = new Map<string, number>()
    const distinct: LookupRequest[] = []
    keys.forEach((key, i) => {
      if (first.has(key)) return
      first.set(key, distinct.length)
      distinct.push(requests[i] as LookupRequest)
    })
    const lookups = distinct.map((r) => r.lookup) as unknown as Lookup<M>[]
    const loaded: readonly unknown[] = await this.#source('load', () => this.#load(lookups, info.model as M))
    if (!Array.isArray(loaded) || loaded.length !== distinct.length) {
      throw new StockpyleError(
        `${this.name} store load of model \`${info.name}\` must resolve one result per lookup (${distinct.length}), got ${Array.isArray(loaded) ? loaded.length : show(loaded)}`,
      )
    }
    const encoded = loaded.map((obj, d) => (obj === undefined ? undefined : this.#checked(info, obj, distinct[d] as LookupRequest)))
    // Each slot gets its own copy, decoded from the bytes of the one loaded object.
    return keys.map((key) => {
      const bytes = encoded[first.get(key) as number]
      return bytes === undefined ? undefined : { value: decodeRecord(bytes) as object, expiresAt: undefined }
    })
  }

  /**
   * Encodes a loaded object after checking it is an instance of the model asked for (`info`: the store's
   * or a subclass), holds every key attribute and answers the lookup. An instance of the store's model
   * that is not one of the subclass asked for is a miss of that subclass: `undefined`.
   * @throws StockpyleError for an object that is not an instance of the store's model, or that lacks a
   *   key attribute (naming it) or does not answer the lookup.
   */
  #checked(info: ModelInfo, obj: unknown, request: LookupRequest): Uint8Array | undefined {
    const where = `${this.name} store load of model \`${info.name}\``
    if (typeof obj !== 'object' || obj === null || !(obj instanceof (info.model as unknown as new () => object))) {
      if (info !== this.#info && obj instanceof (this.model as unknown as new () => object)) return undefined
      throw new StockpyleError(`${where} returned ${show(obj)} for ${show(request.lookup)}: not an instance of the model or undefined`)
    }
    // Every key, not only the looked-up one: an object without its primary key can be neither cached nor
    // deleted. The source's fault, not the caller's: a failure of the source (a chain may serve stale).
    try {
      // the operation alone: keysOfObject names the model itself
      keysOfObject(
        describeModelIn((obj as { constructor: Model }).constructor, `${this.name} store load`),
        obj,
        false,
        `${this.name} store load`,
      )
    } catch (err) {
      throw new StockpyleError(`${messageOf(err)} (for ${show(request.lookup)})`, { cause: err })
    }
    if (keyOfObjectFor(request.spec, obj) !== keyOfObjectFor(request.spec, request.lookup)) {
      throw new StockpyleError(
        `${where} returned an object whose ${show(request.spec.fields)} does not match the lookup ${show(request.lookup)}`,
      )
    }
    return encodeRecord(obj, undefined, `${this.name} store load`)
  }

  /**
   * Calls the application's `load`, `save` or `remove`: what it throws reaches the caller as a
   * StoreUnavailableError naming this store, the call and the model, with the error as `cause`
   * (stockpyle errors pass through).
   */
  async #source<T>(call: 'load' | 'save' | 'remove', run: () => Promise<T> | T): Promise<T> {
    const timeout = this.#timeout
    try {
      const result = run()
      if (timeout === undefined) return await result
      return await withTimeout(
        Promise.resolve(result),
        timeout,
        () =>
          new StoreUnavailableError(
            `${this.name} store ${call} of model \`${this.#info.name}\` did not settle within ${timeout} ms (option \`timeout\`); its late result is ignored`,
          ),
      )
    } catch (err) {
      throw unavailableUnlessOurs(err, `${this.name} store ${call} of model \`${this.#info.name}\``)
    }
  }

  protected async writeMany(items: readonly WriteItem[]): Promise<void> {
    const save = this.#writer(this.#save, 'put', 'save')
    const objs = this.#objects(items, 'put')
    await this.#source('save', () => save(objs))
  }

  protected async removeMany(items: readonly WriteItem[]): Promise<void> {
    const remove = this.#writer(this.#remove, 'delete', 'remove')
    const objs = this.#objects(items, 'delete')
    await this.#source('remove', () => remove(objs))
  }

  protected override async removeByLookups(info: ModelInfo, requests: readonly LookupRequest[]): Promise<(object | undefined)[]> {
    this.#writer(this.#remove, 'delete', 'remove')
    return super.removeByLookups(info, requests)
  }

  /** The write function, or `UnsupportedOperationError` (before anything is loaded or written). */
  #writer<F>(fn: F | undefined, operation: string, option: string): F {
    if (fn === undefined) {
      throw new UnsupportedOperationError(`${this.name} store is read-only: ${operation} needs the \`${option}\` option`)
    }
    return fn
  }

  /** Checks every object (model, keys, encodable) before any is written; returns them. */
  #objects(items: readonly WriteItem[], operation: 'put' | 'delete'): Instance<M>[] {
    const context = `${this.name} store ${operation}`
    for (const { obj, info } of items) {
      this.#checkModel(info, operation)
      keysOfObject(info, obj, false, context)
      if (operation === 'put') encodeRecord(obj, undefined, context)
    }
    return items.map((i) => i.obj as Instance<M>)
  }

  /** The store serves its model and the model's subclasses. @throws UnknownModelError for any other. */
  #checkModel(info: ModelInfo, operation: string): void {
    if (info !== this.#info && !info.lineage.includes(this.#info)) {
      throw new UnknownModelError(`${this.name} store ${operation}: it serves model \`${this.#info.name}\`, not \`${info.name}\``)
    }
  }
}
