import type { LookupRequest, Store } from '../contracts/base-store.js'
import { UnsupportedOperationError } from '../core/errors.js'
import { encodeLookup } from '../core/key-encoding.js'
import type { Instance, Lookup, Model } from '../core/model.js'
import type { ModelInfo } from '../core/registry.js'
import type { Backfill } from './backfill.js'
import type { CacheTurns } from './cache-turns.js'
import type { LayerCalls, LayerFailure } from './layer-calls.js'
import type { LayerGuard } from './layer-guard.js'
import type { MissCache } from './miss-cache.js'
import type { WriteOverlaps } from './write-overlaps.js'

/** What delete by key and clearing work with: the chain's parts. */
export interface MaintenanceParts {
  readonly name: string
  readonly calls: LayerCalls
  readonly backfill: Backfill
  readonly misses: MissCache | undefined
  readonly coherence: boolean
  /** Marks objects written (write clock, negative caching), as every write does before and after the database. */
  readonly marked: (objs: readonly object[]) => void
  /** The order of cache updates per object, shared with the chain's other writes. */
  readonly turns: CacheTurns
  /** Which database writes of one object overlapped, shared with the chain's other writes. */
  readonly overlaps: WriteOverlaps
}

/**
 * Delete by key on any store: its own `batchDeleteByKey` when it has one; otherwise (a custom store)
 * a read of the lookups, then a delete of what was found.
 */
export async function deleteByKeyIn<M extends Model>(
  layer: Store,
  model: M,
  lookups: readonly Lookup<M>[],
): Promise<(Instance<M> | undefined)[]> {
  if (layer.batchDeleteByKey !== undefined) return layer.batchDeleteByKey(model, lookups)
  const found = (await layer.batchGetEntries(model, lookups)).map((e) => e?.value)
  const objects = found.filter((v): v is Instance<M> => v !== undefined)
  if (objects.length > 0) await layer.batchDelete(objects)
  return found
}

/**
 * A chain's delete by key and `clearCaches()`.
 *
 * Delete by key: the authoritative layer deletes what the lookups find and returns it (SQL: `DELETE …
 * RETURNING`), then every cache layer, bottom-up, removes those objects under every key they have —
 * with tombstones, write-clock marks and waits for in-flight backfills exactly as `delete(obj)` — and
 * also removes, by key, copies of lookups the database did not find (a cache may hold what the database
 * no longer has). When the authoritative layer fails, the lookups are removed from every cache (or
 * remembered for repair) before the call rejects.
 */
export class CacheMaintenance {
  readonly #p: MaintenanceParts

  constructor(parts: MaintenanceParts) {
    this.#p = parts
  }

  /** Delete by key through the chain; resolves to the objects the authoritative layer removed, one slot per request. */
  async removeByKey(info: ModelInfo, requests: readonly LookupRequest[]): Promise<(object | undefined)[]> {
    const { calls, coherence, backfill, misses, name } = this.#p
    const model = info.model
    const lookups = requests.map((r) => r.lookup)
    const keys = requests.map((r) => encodeLookup(info, r.lookup, `${name} store delete`))
    const mark = () => {
      misses?.forget(keys)
      // A lookup by primary key names the object's identity already: reads in flight must not backfill it.
      backfill.clock.mark(coherence && backfill.clock.reading ? keys : [])
    }
    mark()
    let found: (object | undefined)[]
    // (a lookup by an alternate key names no object before the database answers: it overlaps every write)
    const primaryOnly = requests.every((r) => r.spec === info.primary)
    const ticket = this.#p.overlaps.begin(primaryOnly ? keys : [], !primaryOnly)
    try {
      try {
        found = await calls.direct(calls.last, 'delete', (layer) => deleteByKeyIn(layer, model, lookups as never))
      } finally {
        this.#p.overlaps.end(ticket)
      }
    } catch (err) {
      const failure = calls.lastFailed(err, 'delete')
      // The database may or may not have deleted them: no cache may keep a copy — also none an earlier
      // write's cache update lands later. A lookup by primary key names its object's turn; one by an
      // alternate key cannot, so every cache update in flight goes first (a rare path).
      const primary = keys.filter((_, i) => (requests[i] as LookupRequest).spec === info.primary)
      const unnamed = primary.length < keys.length ? this.#p.turns.pending() : undefined
      const turn = this.#p.turns.takeKeys(primary)
      try {
        const before = unnamed ?? turn.before
        if (before !== undefined) await Promise.all(before)
        for (let i = calls.last - 1; i >= 0; i--) await this.#dropLookups(i, model, lookups).catch(() => {})
      } finally {
        turn.end()
      }
      throw failure
    } finally {
      mark()
    }
    const objs = found.filter((o): o is object => o !== undefined)
    // (taken as the database answered: after an earlier write's cache updates of these objects, never before)
    const turn = this.#p.turns.take(objs)
    let failure: LayerFailure | undefined
    try {
      this.#p.marked(objs)
      if (coherence) await backfill.settle(objs)
      if (turn.before !== undefined) await Promise.all(turn.before)
      const missed = lookups.filter((_, i) => found[i] === undefined)
      for (let i = calls.last - 1; i >= 0; i--) {
        const failed = await calls.write(i, 'delete', async (layer) => {
          if (objs.length > 0) await layer.batchDelete(objs)
          if (missed.length > 0) await deleteByKeyIn(layer, model, missed as never)
        })
        if (failed === undefined) continue
        const guard = calls.guards[i] as LayerGuard
        guard.remember(objs)
        if (missed.length > 0) guard.rememberLookups(model, missed)
        if (!failed.skipped) failure ??= failed
      }
      this.#p.marked(objs)
    } finally {
      turn.end()
    }
    calls.raise(failure)
    return found
  }

  /** Removes the lookups' copies from cache layer `index` by key (a clean-up after a failed delete, reported as `invalidate`); if that fails, remembers them for repair. */
  async #dropLookups(index: number, model: Model, lookups: readonly object[]): Promise<void> {
    const { calls } = this.#p
    try {
      await calls.run(index, 'invalidate', (layer) => deleteByKeyIn(layer, model, lookups as never))
    } catch (err) {
      try {
        calls.fail(index, 'invalidate', err)
      } finally {
        ;(calls.guards[index] as LayerGuard).rememberLookups(model, lookups)
      }
    }
  }

  /**
   * Clears every cache layer (bottom-up, so an upper layer cannot be refilled from a lower one not yet
   * cleared), forgets remembered misses, and advances the write clock as a write of everything, so reads
   * in flight backfill nothing they read before. A nested chain as the last layer has its caches cleared
   * too. Every layer is tried; the first failure then rejects the call.
   * @throws UnsupportedOperationError (before clearing anything) when a cache layer has no `clear()`.
   */
  async clearCaches(): Promise<void> {
    const { calls, backfill, misses, name } = this.#p
    for (let i = 0; i < calls.last; i++) {
      const layer = calls.layers[i] as Store
      if (typeof layer.clear !== 'function' || layer.capabilities.clearable === false) {
        throw new UnsupportedOperationError(
          `${name} store cannot clearCaches(): its cache layer ${i} (${layer.name}) ${typeof layer.clear === 'function' ? 'cannot be cleared as configured (capabilities.clearable is false)' : 'has no clear()'}`,
        )
      }
    }
    const everything = () => {
      misses?.clear()
      backfill.clock.markAll()
    }
    everything()
    let failure: unknown
    const nested = calls.nestedTail
    if (nested !== undefined) {
      try {
        await nested.clearCaches()
      } catch (err) {
        failure ??= err
      }
    }
    for (let i = calls.last - 1; i >= 0; i--) {
      try {
        // Not through the guard: an explicit clear is tried even on a layer whose circuit is open.
        await calls.direct(i, 'clear', (layer) => (layer.clear as () => Promise<void>).call(layer))
      } catch (err) {
        calls.fail(i, 'clear', err)
        failure ??= err
      }
    }
    everything()
    if (failure !== undefined) throw failure
  }
}
