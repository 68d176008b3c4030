import type { EventEmitter } from 'node:events'
import {
  BaseStore,
  capabilities,
  type GetEntriesOptions,
  type LookupRequest,
  type Store,
  type StoreCapabilities,
  type StoreEntry,
  type TransactionCapable,
  type TransactionHandle,
  type WriteItem,
} from '../contracts/base-store.js'
import { InvalidArgumentError, StockpyleError, show } from '../core/errors.js'
import type { Instance, Lookup, Model } from '../core/model.js'
import { checkOptionNames } from '../core/options.js'
import type { ModelInfo } from '../core/registry.js'
import { Backfill } from './backfill.js'
import { CacheMaintenance } from './cache-maintenance.js'
import { CacheTurns } from './cache-turns.js'
import { type ChainedStoreOptions, resolveChainOptions } from './chain-options.js'
import { runTransaction } from './chain-transaction.js'
import { checkDeletable } from './delete-stubs.js'
import { LayerCalls } from './layer-calls.js'
import { type ChainEvents, LayerObserver, type LayerStats } from './layer-observer.js'
import { Leases } from './leases.js'
import { MissCache } from './miss-cache.js'
import { ReadPath } from './read-path.js'
import { refusedWrite } from './refused-write.js'
import { SingleFlight } from './single-flight.js'
import { TransactionScope } from './transaction-scope.js'
import { WriteOverlaps } from './write-overlaps.js'
import { WritePath } from './write-path.js'

export type { ChainedStoreOptions } from './chain-options.js'

const CHAINED_STORE_OPTIONS = [
  'onCacheError',
  'timeout',
  'breaker',
  'maxPendingRepairs',
  'missLifetime',
  'serveStale',
  'coherence',
  'leases',
  'meter',
  'clock',
  'name',
]

export type { CacheErrorEvent, ChainEvents, LayerOperation, LayerStats } from './layer-observer.js'

/**
 * A write-through chain of stores, fastest first and authoritative (the database) last. It is itself a
 * Store, so chains nest. See docs/chaining.md; in short:
 *
 * - get / batchGet: layers are asked in order, each only for the lookups still missing, in one batch
 *   call; a hit at layer j is copied (backfilled) into layers 0..j−1 in one batch per layer, never
 *   outliving its source and never over a write that happened since the read began.
 * - put / batchPut: the last layer first (it may fill ids and defaults), then the caches bottom-up.
 * - delete / batchDelete: the last layer first, then the caches bottom-up, so no read can bring the
 *   object back from below.
 * - A write the authoritative layer declares it refuses (`capabilities.refusesPuts` / `refusesDeletes`:
 *   a LoaderStore without `save` / `remove`) rejects with `UnsupportedOperationError` before any layer
 *   is touched: no cache copy is dropped and no error counted.
 * - A failing authoritative layer rejects the call and leaves no cache entry newer than the database
 *   (the objects are invalidated in every cache). A failing cache layer is skipped on reads and
 *   reported (see {@link ChainedStoreOptions.onCacheError}); a copy it may still hold after a failed
 *   write is invalidated, at once or — if the layer is unreachable — before the layer is read again.
 * - Concurrent misses of one key in this process cause one read of the layers below the first
 *   (single-flight); each caller still gets its own copy.
 *
 * The parts: {@link LayerCalls} (the one failure policy, over each layer's guard), {@link LayerObserver}
 * (stats, events, metrics), {@link ReadPath} (fast path, single-flight, negative caching, leases, stale
 * reads), {@link Backfill} (write clock, add-only copies upward) and {@link WritePath} (writes, repairs,
 * invalidation).
 */
export class ChainedStore extends BaseStore {
  readonly name: string
  override readonly capabilities: StoreCapabilities
  /** Emits `cacheError` ({@link CacheErrorEvent}) when a cache layer fails. */
  readonly events: EventEmitter<ChainEvents>
  readonly #calls: LayerCalls
  readonly #reads: ReadPath
  readonly #writes: WritePath
  readonly #maintenance: CacheMaintenance
  /** Stop the layers' calls of {@link Store.onRemoteChange}. */
  readonly #unlisten: (() => void)[]
  /** Writes, deletes, invalidations and transactions in flight: `close()` waits for them before it closes the layers. */
  #busy = 0
  #idle: (() => void) | undefined
  /** Where transactions run their callbacks: the chain's calls made there are refused. */
  readonly #scope: TransactionScope

  /** @throws InvalidOptionError for an empty list, a non-store or a bad option. */
  constructor(layers: readonly Store[], options: ChainedStoreOptions = {}) {
    super()
    checkOptionNames(typeof options?.name === 'string' ? options.name : 'chain', options, CHAINED_STORE_OPTIONS)
    const resolved = resolveChainOptions(layers, options)
    this.name = resolved.name
    const observer = new LayerObserver(layers, resolved.meter, resolved.name)
    this.events = observer.events
    const calls = new LayerCalls([...layers], resolved, observer)
    this.#calls = calls
    this.#scope = new TransactionScope(this, layers)
    const tail = layers[calls.last] as Store
    this.capabilities = capabilities({
      authoritative: tail.capabilities.authoritative,
      generatesKeys: tail.capabilities.generatesKeys,
      expires: layers.every((l) => l.capabilities.expires),
      polymorphic: layers.every((l) => l.capabilities.polymorphic),
      secondResolution: layers.some((l) => l.capabilities.secondResolution),
      scoped: layers.every((l) => l.capabilities.scoped),
      inProcess: layers.every((l) => l.capabilities.inProcess),
      // Stale copies come from the cache layers above the last (see readStale).
      staleReads: layers.slice(0, -1).some((l) => l.capabilities.staleReads),
      // The writes the last layer refuses are refused before any layer is touched (see refusedWrite).
      refusesPuts: tail.capabilities.refusesPuts === true,
      refusesDeletes: tail.capabilities.refusesDeletes === true,
    })
    const misses = resolved.missMs > 0 ? new MissCache(resolved.missMs, resolved.clock) : undefined
    // The backfill cleans up an upper layer it failed to fill the same way a failed write is cleaned up.
    let writes: WritePath | undefined
    const backfill = new Backfill(calls, resolved.coherence, (i, objs) => (writes as WritePath).invalidateIn(i, objs))
    // A miss may be what another process has since written: layers that hear of such changes say so.
    // The clock moves too, so a miss read before the news is not remembered after it.
    this.#unlisten =
      misses === undefined
        ? []
        : listenToLayers(layers, (i, coherent) => {
            misses.remoteChange(i, coherent)
            backfill.clock.mark([])
          })
    const turns = new CacheTurns()
    const overlaps = new WriteOverlaps()
    writes = new WritePath({
      turns,
      overlaps,
      name: this.name,
      calls,
      backfill,
      misses,
      coherence: resolved.coherence,
      generatesKeys: this.capabilities.generatesKeys,
      polymorphicCaches: layers.some((l, i) => i < calls.last && l.capabilities.polymorphic),
    })
    this.#writes = writes
    this.#maintenance = new CacheMaintenance({
      turns,
      overlaps,
      name: this.name,
      calls,
      backfill,
      misses,
      coherence: resolved.coherence,
      marked: writes.marked,
    })
    this.#reads = new ReadPath({
      name: this.name,
      calls,
      backfill,
      flights: new SingleFlight(),
      misses,
      leases: resolved.leases === undefined ? undefined : new Leases(calls, resolved.leases),
      serveStale: resolved.serveStale,
      clock: resolved.clock,
      // Without the coherence protections a backfill is a plain put, which in a scoped store drops the
      // object from every other scope: joiners would drop each other's copies.
      scopedFirst: calls.last > 0 && (layers[0] as Store).capabilities.scoped && resolved.coherence,
    })
  }

  /**
   * Calls `listener` when one of the layers heard of changes made in other processes (see
   * `Store.onRemoteChange`): `coherent` is false while any layer's bus is down. For a chain nested in
   * another, whose negative caching must hear them too. Returns the function that stops the calls.
   */
  onRemoteChange(listener: (coherent: boolean) => void): () => void {
    const deaf = new Set<number>()
    const stops = listenToLayers(this.#calls.layers, (i, coherent) => {
      if (coherent) deaf.delete(i)
      else deaf.add(i)
      listener(deaf.size === 0)
    })
    return () => {
      for (const stop of stops) stop()
    }
  }

  /** The layers, fastest first. */
  get layers(): readonly Store[] {
    return this.#calls.layers
  }

  /** A snapshot of each layer's counters, fastest first. */
  stats(): LayerStats[] {
    return this.#calls.observer.snapshot((i) => this.#calls.guards[i]?.pendingRepairs ?? 0)
  }

  override get<M extends Model>(model: M, lookup: Lookup<M>): Promise<Instance<M> | undefined> {
    if (!this.#reads.fast) return super.get(model, lookup)
    // Not an async function: a hit of an in-process first layer costs one promise, not three.
    if (this.closed) return super.get(model, lookup)
    const refused = this.#scope.refusal('get')
    if (refused !== undefined) return Promise.reject(refused)
    return this.#reads.fastGet(model, lookup)
  }

  protected readMany(
    info: ModelInfo,
    requests: readonly LookupRequest[],
    options?: GetEntriesOptions,
  ): Promise<(StoreEntry | undefined)[]> {
    // refused before single-flight: a read others could join must not fail for being in a transaction
    const refused = this.#scope.refusal('get')
    if (refused !== undefined) return Promise.reject(refused)
    return this.#reads.readMany(info, requests, options)
  }

  protected writeMany(items: readonly WriteItem[]): Promise<void> {
    return this.#counted('put', () => (this.capabilities.refusesPuts ? this.#refused('put') : this.#writes.put(items)))
  }

  protected removeMany(items: readonly WriteItem[]): Promise<void> {
    return this.#counted('delete', () => (this.capabilities.refusesDeletes ? this.#refused('delete') : this.#remove(items)))
  }

  /** A write the authoritative layer declares it refuses: rejected before any layer is touched. */
  #refused(operation: 'put' | 'delete'): Promise<never> {
    return Promise.reject(refusedWrite(this.name, this.#calls.layers[this.#calls.last] as Store, operation))
  }

  /**
   * Deletes: objects with every key attribute through the write path; stubs (only the primary key) as
   * a delete by that key, so the caches learn every key of what the database removed.
   */
  async #remove(items: readonly WriteItem[]): Promise<void> {
    const split = checkDeletable(items, this.name)
    if (split === undefined) return this.#writes.remove(items)
    if (split.whole.length > 0) await this.#writes.remove(split.whole)
    for (const [info, requests] of split.stubs) await this.#maintenance.removeByKey(info, requests)
  }

  /** Delete by key: the authoritative layer removes what the lookups find (SQL: `DELETE … RETURNING`), then every cache removes those objects under all their keys. */
  protected override removeByLookups(info: ModelInfo, requests: readonly LookupRequest[]): Promise<(object | undefined)[]> {
    return this.#counted('delete', () =>
      this.capabilities.refusesDeletes ? this.#refused('delete') : this.#maintenance.removeByKey(info, requests),
    )
  }

  /**
   * Empties every cache layer (each removes what is under its prefix; see each store's `clear()`),
   * forgets remembered misses, and stops reads in flight from backfilling what they read before. The
   * authoritative layer keeps its data; a nested chain there has its caches cleared too. Memory layers
   * of other processes are not reached: call it in each process (or rely on their lifetimes).
   * @throws UnsupportedOperationError before clearing anything when a cache layer has no `clear()` (a
   *   memcached store without `ownsServers`, a custom store); otherwise the first layer's failure, after
   *   every layer was tried.
   */
  async clearCaches(): Promise<void> {
    this.assertOpen('clearCaches')
    await this.#counted(undefined, () => this.#maintenance.clearCaches())
  }

  /**
   * Drops cached copies in every cache layer (the authoritative layer keeps its data), and forgets every
   * miss remembered by negative caching: the objects may have been created elsewhere, and a lookup of
   * them by another key may have missed.
   */
  protected override invalidateMany(info: ModelInfo, requests: readonly LookupRequest[]): Promise<void> {
    return this.#counted(undefined, () => this.#writes.invalidate(info, requests))
  }

  /**
   * Runs `fn` in one transaction of the authoritative layer (SqlStore). `tx` is that layer's
   * transaction handle: its writes join the transaction and its reads see them, and it never touches
   * the caches. After COMMIT the cache layers are updated bottom-up with every write, in order
   * (puts stored, deletes removed); after a rollback they are left alone. Reads of other callers that
   * raced the transaction cannot backfill what it replaced.
   *
   * Inside `fn`, use `tx`: the chain's own reads and writes made there (in `fn`'s async context) are
   * refused with `UnsupportedOperationError` before they reach any layer — they would not see the
   * transaction, and on SQLite would wait forever for its connection. So are the calls of a chain this
   * one is nested in (as a layer, or behind a decorator). `batchInvalidate` and `clearCaches` are not
   * refused. The same calls from outside `fn` (other requests) run as usual.
   * The transaction is one call of the authoritative layer for metrics and `stats()`: timed as operation
   * `transaction`, and a failure the layer raised (its BEGIN or COMMIT, or a call on `tx` that `fn` let
   * through) is counted in its `errors` (unless it is a caller error, like a key conflict) and named
   * after the chain and the layer, as a failed put's is.
   * @throws InvalidArgumentError when `fn` is not a function; StockpyleError when the authoritative layer
   *   has no transactions; UnsupportedOperationError inside another transaction of this chain or of a
   *   chain nested in it; whatever `fn` throws (after rollback) — an error of the caller's own unchanged.
   */
  async transaction<R>(fn: (tx: TransactionHandle) => Promise<R>): Promise<R> {
    this.assertOpen('transaction')
    const refused = this.#scope.refusal('transaction')
    if (refused !== undefined) throw refused
    const last = this.#calls.layers[this.#calls.last] as Store & Partial<TransactionCapable>
    if (typeof last.transaction !== 'function') {
      throw new StockpyleError(`${this.name} store: its authoritative layer ${last.name} does not run transactions`)
    }
    if (typeof fn !== 'function') throw new InvalidArgumentError(`${this.name} store: transaction() takes a function, got ${show(fn)}`)
    this.#busy++
    try {
      return await runTransaction({ calls: this.#calls, scope: this.#scope, writes: this.#writes }, fn)
    } finally {
      this.#settled()
    }
  }

  /**
   * Closes the chain: later calls reject with `StoreClosedError`; the writes, deletes, invalidations and
   * transactions in flight complete first — their cache updates (a transaction's after COMMIT) reach
   * every layer — then the repairs still pending get one last try, every layer at once, for at most the
   * chain's `timeout` ms (1000 without one; no wait when none is pending), then every layer is closed.
   * Repairs a layer still could not take are reported as a `cacheError` of operation `repair` naming
   * how many: the copies they were to remove stay in that layer until their lifetime ends. Reads in
   * flight are not waited for (one that meets a closed layer treats it as a failed layer).
   * @throws UnsupportedOperationError, closing nothing, when called inside one of this chain's
   *   transactions (it would wait for that transaction forever); a layer's failure to close; under
   *   `onCacheError: 'throw'`, the abandoned repairs' error (StoreUnavailableError), once every layer is closed.
   */
  override close(): Promise<void> {
    const refused = this.closed ? undefined : this.#scope.refusal('close')
    if (refused !== undefined) return Promise.reject(refused)
    return super.close()
  }

  /**
   * Runs `work` counted in `#busy` (what `close()` waits for); an `operation` is refused first inside
   * one of this chain's transactions (`batchInvalidate` and `clearCaches` pass none: they are allowed).
   */
  async #counted<T>(operation: string | undefined, work: () => Promise<T>): Promise<T> {
    const refused = operation === undefined ? undefined : this.#scope.refusal(operation)
    if (refused !== undefined) throw refused
    this.#busy++
    try {
      return await work()
    } finally {
      this.#settled()
    }
  }

  /** One of the calls counted in `#busy` settled. */
  #settled(): void {
    if (--this.#busy === 0) this.#idle?.()
  }

  protected override async release(): Promise<void> {
    if (this.#busy > 0) await new Promise<void>((resolve) => (this.#idle = resolve))
    for (const unlisten of this.#unlisten) unlisten()
    // A shared cache must not keep what pending repairs were to remove: one last bounded try, and what
    // is left is reported (cacheError), never dropped silently.
    const abandoned = await this.#calls.drainBeforeClose()
    this.#calls.stop()
    const results = await Promise.allSettled(this.#calls.layers.map((l) => l.close()))
    const failed = results.find((r) => r.status === 'rejected')
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason
    // under onCacheError 'throw', after every layer was closed
    this.#calls.raise(abandoned)
  }
}

/** Subscribes `listener` to every layer that tells of other processes' changes; returns the functions that stop it. */
function listenToLayers(layers: readonly Store[], listener: (index: number, coherent: boolean) => void): (() => void)[] {
  return layers.flatMap((layer, i) =>
    layer.onRemoteChange === undefined ? [] : [layer.onRemoteChange((coherent) => listener(i, coherent))],
  )
}
