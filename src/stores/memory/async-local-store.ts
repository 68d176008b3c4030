import { AsyncLocalStorage } from 'node:async_hooks'
import {
  BaseStore,
  capabilities,
  type GetEntriesOptions,
  type LookupRequest,
  readRequests,
  type StoreCapabilities,
  type StoreEntry,
  type WriteItem,
} from '../../contracts/base-store.js'
import { nameOption } from '../../core/option-values.js'
import { checkOptionNames } from '../../core/options.js'
import type { ModelInfo } from '../../core/registry.js'
import { PROCESS_MEMORY_STORE_OPTIONS, ProcessMemoryStore, type ProcessMemoryStoreOptions } from './process-memory-store.js'

/** Options of {@link AsyncLocalStore}: those of the per-scope {@link ProcessMemoryStore}. */
export interface AsyncLocalStoreOptions extends ProcessMemoryStoreOptions {}

/**
 * A per-request identity map (the original's ThreadLocalStore) on AsyncLocalStorage. Data lives only
 * inside `store.run(fn)`: each run gets its own empty map, visible to everything `fn` awaits and to
 * nothing else, and gone when the scope's promises settle. Outside a scope the store holds nothing:
 * puts and deletes are no-ops and gets miss. Objects are copies, as in every store.
 */
export class AsyncLocalStore extends BaseStore {
  readonly name: string
  override readonly capabilities: StoreCapabilities
  readonly #scope = new AsyncLocalStorage<ProcessMemoryStore>()
  readonly #options: AsyncLocalStoreOptions

  /** @throws InvalidOptionError naming a bad option (checked once, here). */
  constructor(options: AsyncLocalStoreOptions = {}) {
    super()
    checkOptionNames(typeof options?.name === 'string' ? options.name : 'async-local', options, PROCESS_MEMORY_STORE_OPTIONS)
    this.name = nameOption('async-local', options.name, 'async-local')
    const probe = new ProcessMemoryStore({ ...options, name: this.name })
    this.#options = { ...options, name: this.name }
    this.capabilities = capabilities({ ...probe.capabilities, scoped: true, inProcess: true, clearable: true })
  }

  /** Runs `fn` in a new scope with an empty map; returns what `fn` returns. Scopes nest: the inner one starts empty. */
  run<T>(fn: () => T): T {
    return this.#scope.run(new ProcessMemoryStore(this.#options), fn)
  }

  /** True when called inside a `run()` scope. */
  get inScope(): boolean {
    return this.#scope.getStore() !== undefined
  }

  /**
   * Empties the current scope's map, at once; outside a scope there is nothing to clear.
   * @throws StoreClosedError (as a rejection) after `close()`.
   */
  async clear(): Promise<void> {
    this.assertOpen('clear')
    await this.#scope.getStore()?.clear()
  }

  protected override async removeByLookups(info: ModelInfo, requests: readonly LookupRequest[]): Promise<(object | undefined)[]> {
    const inner = this.#scope.getStore()
    if (inner === undefined) return requests.map(() => undefined)
    return inner.batchDeleteByKey(info.model, requests.map((r) => r.lookup) as never)
  }

  protected async readMany(
    info: ModelInfo,
    requests: readonly LookupRequest[],
    options?: GetEntriesOptions,
  ): Promise<(StoreEntry | undefined)[]> {
    const inner = this.#scope.getStore()
    if (inner === undefined) return requests.map(() => undefined)
    return readRequests(inner, info, requests, options)
  }

  protected async writeMany(items: readonly WriteItem[]): Promise<void> {
    const inner = this.#scope.getStore()
    if (inner === undefined) return
    const backfills = items.filter((i) => i.backfill === true)
    const puts = items.filter((i) => i.backfill !== true)
    if (puts.length > 0) await inner.batchPutEntries(puts.map((i) => ({ value: i.obj, expiresAt: i.expiresAt })))
    if (backfills.length > 0)
      await inner.batchPutEntries(
        backfills.map((i) => ({ value: i.obj, expiresAt: i.expiresAt })),
        { backfill: true },
      )
  }

  protected async removeMany(items: readonly WriteItem[]): Promise<void> {
    await this.#scope.getStore()?.batchDelete(items.map((i) => i.obj))
  }

  protected override async invalidateMany(info: ModelInfo, requests: readonly LookupRequest[]): Promise<void> {
    await this.#scope.getStore()?.batchInvalidate(info.model, requests.map((r) => r.lookup) as never)
  }
}
