import { InvalidArgumentError, InvalidOptionError, StoreClosedError, show, UnknownKeyError } from '../core/errors.js'
import { keyForLookup } from '../core/key-encoding.js'
import type { Instance, Lookup, Model } from '../core/model.js'
import { describeModelIn, describeObject, type ModelInfo, modelErrorIn } from '../core/registry.js'
import { Item, KeyRequest } from './batch-records.js'
import {
  defaultCapabilities,
  type GetEntriesOptions,
  type InvalidateOptions,
  type LookupRequest,
  type PutEntriesOptions,
  type Store,
  type StoreCapabilities,
  type StoreEntry,
  type WriteItem,
} from './store.js'

export {
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
} from './store.js'

/** The key of {@link BaseStore}'s entry point for requests validated elsewhere (see {@link readRequests}); not exported by the package. */
const READ_REQUESTS = Symbol('stockpyle.readRequests')

/** The methods a {@link BaseStore} subclass must implement. */
const PRIMITIVES = ['readMany', 'writeMany', 'removeMany'] as const

/**
 * The base of every store: validates arguments, guards the lifecycle, and maps the public API onto
 * three batch primitives a subclass implements — {@link BaseStore.readMany}, {@link BaseStore.writeMany}
 * and {@link BaseStore.removeMany} — plus {@link BaseStore.release} for `close()`.
 *
 * Every lookup of a batch is validated before anything is read (`UnknownKeyError`); every object
 * before anything is written (`UnknownModelError`, and the subclass's own checks).
 */
export abstract class BaseStore implements Store {
  #closed = false
  #closing: Promise<void> | undefined
  abstract readonly name: string
  readonly capabilities: StoreCapabilities = defaultCapabilities

  /**
   * @throws InvalidOptionError when the subclass lacks any of the primitives `readMany`, `writeMany`
   *   and `removeMany` — e.g. a wrapper that overrides `get`/`put`/… and delegates them: a chain calls
   *   `batchGetEntries`/`batchPutEntries`, which reach the primitives. Wrap a store with `StoreDecorator`.
   *   The primitives must be methods: a class field (`readMany = async (…) => …`) is not set yet when
   *   this constructor runs, and the error then says so.
   */
  constructor() {
    const missing = PRIMITIVES.filter((m) => typeof (this as unknown as Record<string, unknown>)[m] !== 'function')
    if (missing.length > 0) throw missingPrimitives(new.target, missing)
  }

  /**
   * Reads one entry per request (same order); `undefined` at a miss. Requests may repeat: each slot
   * must hold its own copy. Lifetimes are the subclass's to enforce.
   */
  protected abstract readMany(
    info: ModelInfo,
    requests: readonly LookupRequest[],
    options?: GetEntriesOptions,
  ): Promise<(StoreEntry | undefined)[]>
  /** Stores every item (insert or replace), validating all of them before writing any. */
  protected abstract writeMany(items: readonly WriteItem[]): Promise<void>
  /** Removes every item under every key it was stored under. Absent items are a no-op. */
  protected abstract removeMany(items: readonly WriteItem[]): Promise<void>
  /**
   * Removes the objects the requests find and returns them, one slot per request (`undefined` where
   * nothing was found). Default: {@link BaseStore.readMany}, then {@link BaseStore.removeMany} of what
   * was found and {@link BaseStore.invalidateMany} of the requests that found nothing and
   * {@link BaseStore.invalidatesMiss} says to — a cache that does not hold the object still records the
   * delete (a tombstone, a log of invalidations), so that a copy read before it cannot land after it.
   * Stores that can do both at once (SQL `DELETE … RETURNING`) override it.
   */
  protected async removeByLookups(info: ModelInfo, requests: readonly LookupRequest[]): Promise<(object | undefined)[]> {
    const found = await this.readMany(info, requests)
    const values = found.map((entry) => entry?.value)
    const objects = values.filter((v): v is object => v !== undefined)
    if (objects.length > 0) await this.removeMany(this.items(objects, 'delete'))
    const missed = requests.filter((r, i) => values[i] === undefined && this.invalidatesMiss(info, r))
    if (missed.length > 0) await this.invalidateMany(info, missed)
    return values
  }
  /**
   * Whether a delete by key whose `request` found nothing still invalidates it ({@link removeByLookups}).
   * Default: by the primary key only — a miss by an alternate key names no object (a key-value store's
   * alias may point to an object whose key has changed since, which must stay).
   */
  protected invalidatesMiss(info: ModelInfo, request: LookupRequest): boolean {
    return request.spec === info.primary
  }
  /** Releases resources; called once by `close()`. */
  protected async release(): Promise<void> {}
  /** Drops cached copies for these requests (see {@link Store.batchInvalidate}). Default: nothing to drop. */
  protected async invalidateMany(_info: ModelInfo, _requests: readonly LookupRequest[], _options?: InvalidateOptions): Promise<void> {}

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closed
  }

  /** @throws StoreClosedError after `close()`. */
  protected assertOpen(operation: string): void {
    if (this.#closed) throw new StoreClosedError(`${this.name} store is closed: ${operation} was called after close()`)
  }

  /**
   * Validates a batch of lookups for `model`. `operation` names the call in key and model errors
   * (`get`), `method` the method that was given something else than an array (`batchGet`).
   * @throws InvalidArgumentError when `lookups` is not an array; UnknownModelError for a class that is
   *   not a model; UnknownKeyError / InvalidKeyError for a bad lookup — each naming this store and `operation`.
   */
  protected requests(
    model: Model,
    lookups: readonly unknown[],
    operation: string,
    method = operation,
  ): { info: ModelInfo; requests: LookupRequest[] } {
    if (!Array.isArray(lookups)) {
      throw new InvalidArgumentError(`${this.name} store: ${method} takes an array of lookups, got ${show(lookups)}`)
    }
    const where = `${this.name} store ${operation}`
    const info = describeModelIn(model, where)
    const requests: LookupRequest[] = new Array(lookups.length)
    for (let i = 0; i < lookups.length; i++) {
      const lookup = lookups[i]
      requests[i] = new KeyRequest(keyForLookup(info, lookup, where), lookup as Record<string, unknown>)
    }
    return { info, requests }
  }

  /**
   * Validates a batch of objects to write or delete. `operation` names the call in model errors
   * (`put`), `method` the method that was given something else than an array (`batchPut`).
   * @throws InvalidArgumentError when `objs` is not an array; UnknownModelError for a non-model object.
   */
  protected items(
    objs: readonly unknown[],
    operation: string,
    method = operation,
    entries?: readonly StoreEntry[],
    backfill = false,
    since: number | undefined = undefined,
  ): WriteItem[] {
    if (!Array.isArray(objs)) {
      throw new InvalidArgumentError(`${this.name} store: ${method} takes an array of objects, got ${show(objs)}`)
    }
    return objs.map(
      (obj, i) =>
        new Item(
          obj as object,
          this.describeItem(obj as object, operation),
          entries?.[i]?.expiresAt,
          backfill,
          since,
          entries?.[i]?.encoded,
        ),
    )
  }

  /** The model of an object to write or delete. @throws UnknownModelError / DuplicateModelError naming this store and `operation`. */
  protected describeItem(obj: object, operation: string): ModelInfo {
    try {
      return describeObject(obj)
    } catch (err) {
      throw modelErrorIn(err, `${this.name} store ${operation}`)
    }
  }

  async get<M extends Model>(model: M, lookup: Lookup<M>): Promise<Instance<M> | undefined> {
    this.assertOpen('get')
    const [entry] = await this.batchGetEntries(model, [lookup])
    return entry?.value
  }

  async batchGet<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<(Instance<M> | undefined)[]> {
    const entries = await this.batchGetEntries(model, lookups)
    return entries.map((e) => e?.value)
  }

  async batchGetEntries<M extends Model>(
    model: M,
    lookups: readonly Lookup<M>[],
    options?: GetEntriesOptions,
  ): Promise<(StoreEntry<Instance<M>> | undefined)[]> {
    this.assertOpen('batchGet')
    const { info, requests } = this.requests(model, lookups, 'get', 'batchGet')
    if (requests.length === 0) return []
    return (await this.readMany(info, requests, options)) as (StoreEntry<Instance<M>> | undefined)[]
  }

  /** `batchGetEntries` of requests already validated for `info`'s model (see {@link readRequests}). */
  async [READ_REQUESTS](
    info: ModelInfo,
    requests: readonly LookupRequest[],
    options?: GetEntriesOptions,
  ): Promise<(StoreEntry | undefined)[]> {
    this.assertOpen('batchGet')
    return requests.length === 0 ? [] : this.readMany(info, requests, options)
  }

  async batchInvalidate<M extends Model>(model: M, lookups: readonly Lookup<M>[], options?: InvalidateOptions): Promise<void> {
    this.assertOpen('invalidate')
    const { info, requests } = this.requests(model, lookups, 'invalidate', 'batchInvalidate')
    if (requests.length > 0) await this.invalidateMany(info, requests, options)
  }

  async put(obj: object): Promise<void> {
    await this.batchPut([obj])
  }

  async batchPut(objs: readonly object[]): Promise<void> {
    this.assertOpen('put')
    const items = this.items(objs, 'put', 'batchPut')
    if (items.length > 0) await this.writeMany(items)
  }

  async batchPutEntries(entries: readonly StoreEntry[], options: PutEntriesOptions = {}): Promise<void> {
    this.assertOpen('put')
    if (!Array.isArray(entries)) {
      throw new InvalidArgumentError(`${this.name} store: batchPutEntries takes an array of entries, got ${show(entries)}`)
    }
    const items = this.items(
      entries.map((e) => e.value),
      'put',
      'batchPutEntries',
      entries,
      options.backfill === true,
      options.since,
    )
    if (items.length > 0) await this.writeMany(items)
  }

  delete(obj: object): Promise<void>
  delete<M extends Model>(model: M, lookup: Lookup<M>): Promise<void>
  async delete(target: object, ...lookup: [object?]): Promise<void> {
    if (typeof target === 'function') {
      if (lookup.length === 0) {
        throw new UnknownKeyError(`${this.name} store delete of model \`${modelName(target)}\`: delete(Model, lookup) needs a lookup`)
      }
      await this.batchDeleteByKey(target as unknown as Model, lookup as never)
      return
    }
    await this.batchDelete([target])
  }

  batchDelete(objs: readonly object[]): Promise<void>
  batchDelete<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<void>
  async batchDelete(target: readonly object[] | Model, lookups?: readonly object[]): Promise<void> {
    if (typeof target === 'function') {
      await this.batchDeleteByKey(target, (lookups ?? (undefined as unknown)) as never)
      return
    }
    this.assertOpen('delete')
    const items = this.items(target as readonly object[], 'delete', 'batchDelete')
    if (items.length > 0) await this.removeMany(items)
  }

  async batchDeleteByKey<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<(Instance<M> | undefined)[]> {
    this.assertOpen('delete')
    const { info, requests } = this.requests(model, lookups, 'delete', 'batchDelete')
    if (requests.length === 0) return []
    return (await this.removeByLookups(info, requests)) as (Instance<M> | undefined)[]
  }

  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#closed = true
      this.#closing = this.release()
    }
    return this.#closing
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }
}

/**
 * The error for a subclass lacking primitives. A primitive written as a class field (its class's source
 * assigns it: `readMany = …`, or `this.readMany = …` once compiled to an older target) is not set yet
 * when BaseStore's constructor runs: the message then says to write it as a method.
 */
function missingPrimitives(target: abstract new () => BaseStore, missing: readonly string[]): InvalidOptionError {
  const sources: string[] = []
  for (let c: unknown = target; typeof c === 'function' && c !== BaseStore; c = Object.getPrototypeOf(c)) {
    sources.push(Function.prototype.toString.call(c))
  }
  const fields = missing.filter((m) => sources.some((source) => new RegExp(`(?<![\\w$#])${m}\\s*=(?!=)`).test(source)))
  const name = target.name
  if (fields.length === 0) {
    return new InvalidOptionError(
      `${name} extends BaseStore but does not implement ${missing.join(', ')}: a BaseStore subclass must implement the batch primitives readMany, writeMany and removeMany (a chain reaches them through batchGetEntries, batchPutEntries and batchDelete); to wrap another store, extend StoreDecorator instead`,
    )
  }
  const absent = missing.filter((m) => !fields.includes(m))
  const [first] = fields as [string]
  return new InvalidOptionError(
    `${name} extends BaseStore but defines ${fields.join(', ')} as ${fields.length === 1 ? 'a class field' : 'class fields'} (\`${first} = async (…) => …\`), which are not set yet when BaseStore's constructor checks them: write them as methods (\`protected async ${first}(…) { … }\`)${absent.length > 0 ? `; it does not implement ${absent.join(', ')} at all` : ''}`,
  )
}

function modelName(model: object): string {
  const named = model as { stockpyleName?: unknown; name?: unknown }
  return String(named.stockpyleName ?? named.name ?? 'anonymous')
}

/**
 * `store.batchGetEntries` of `requests`, validated already for `info`'s model (by a chain, once for all
 * its layers). A {@link BaseStore} that keeps BaseStore's own `batchGetEntries` gets them as they are:
 * it does not validate them again, and reuses the keys another layer computed (`LookupRequest.key`).
 * Any other store (a decorator, a subclass overriding `batchGetEntries`) is asked through
 * `batchGetEntries` with the lookups. Rejects as `batchGetEntries` does.
 */
export function readRequests(
  store: Store,
  info: ModelInfo,
  requests: readonly LookupRequest[],
  options?: GetEntriesOptions,
): Promise<(StoreEntry | undefined)[]> {
  if (store instanceof BaseStore && store.batchGetEntries === BaseStore.prototype.batchGetEntries) {
    return store[READ_REQUESTS](info, requests, options)
  }
  const lookups: object[] = new Array(requests.length)
  for (let i = 0; i < requests.length; i++) lookups[i] = (requests[i] as LookupRequest).lookup
  return store.batchGetEntries(info.model, lookups as never, options)
}
