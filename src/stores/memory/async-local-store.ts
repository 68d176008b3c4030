import { AsyncLocalStorage } from 'node:async_hooks'
import {
  BaseStore,
  capabilities,
  type GetEntriesOptions,
  type InvalidateOptions,
  type LookupRequest,
  readRequests,
  type StoreCapabilities,
  type StoreEntry,
  type WriteItem,
} from '../../contracts/base-store.js'
import { Entry } from '../../contracts/batch-records.js'
import { InvalidOptionError } from '../../core/errors.js'
import { nameOption } from '../../core/option-values.js'
import { checkOptionNames } from '../../core/options.js'
import type { ModelInfo } from '../../core/registry.js'
import { PROCESS_MEMORY_STORE_OPTIONS, ProcessMemoryStore, type ProcessMemoryStoreOptions } from './process-memory-store.js'

/**
 * Options of {@link AsyncLocalStore}: those of the per-scope {@link ProcessMemoryStore}, but `bus`: a
 * scope's map lives for one request, so there is nothing to keep coherent with other processes.
 */
export interface AsyncLocalStoreOptions extends Omit<ProcessMemoryStoreOptions, 'bus'> {}

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
    if ((options as ProcessMemoryStoreOptions).bus !== undefined) {
      throw new InvalidOptionError(
        `${this.name}: option \`bus\` is not for a per-scope store (each scope's map lives for one request; put a bus on a ProcessMemoryStore)`,
      )
    }
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
    const puts = items.filter((i) => i.backfill !== true)
    if (puts.length > 0) await inner.batchPutEntries(puts.map((i) => new Entry(i.obj, i.expiresAt, i.encoded)))
    // Backfills keep what they were read at (`since`): the scope's map refuses copies of keys invalidated after it.
    const bySince = new Map<number | undefined, StoreEntry[]>()
    for (const i of items) {
      if (i.backfill !== true) continue
      const group = bySince.get(i.since)
      const entry = new Entry(i.obj, i.expiresAt, i.encoded)
      if (group === undefined) bySince.set(i.since, [entry])
      else group.push(entry)
    }
    for (const [since, entries] of bySince)
      await inner.batchPutEntries(entries, since === undefined ? { backfill: true } : { backfill: true, since })
  }

  protected async removeMany(items: readonly WriteItem[]): Promise<void> {
    await this.#scope.getStore()?.batchDelete(items.map((i) => i.obj))
  }

  protected override async invalidateMany(info: ModelInfo, requests: readonly LookupRequest[], options?: InvalidateOptions): Promise<void> {
    await this.#scope.getStore()?.batchInvalidate(info.model, requests.map((r) => r.lookup) as never, options)
  }
}
