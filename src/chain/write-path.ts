import type { LookupRequest, Store, StoreEntry, TransactionWrite, WriteItem } from '../contracts/base-store.js'
import { Entry } from '../contracts/batch-records.js'
import { encodeRecord } from '../core/codec.js'
import { StockpyleError } from '../core/errors.js'
import { encodeLookup } from '../core/key-encoding.js'
import type { Model } from '../core/model.js'
import { isPartialFailure } from '../core/partial-failure.js'
import type { ModelInfo } from '../core/registry.js'
import { type Backfill, identityKey } from './backfill.js'
import type { CacheTurn, CacheTurns } from './cache-turns.js'
import { checkWritable } from './check-writable.js'
import { dropStubs, splitStubs } from './delete-stubs.js'
import { finalWrites } from './final-writes.js'
import type { LayerCalls, LayerFailure } from './layer-calls.js'
import type { LayerGuard } from './layer-guard.js'
import { lineageKeys } from './lineage-keys.js'
import type { MissCache } from './miss-cache.js'
import { abandonPut, type EarlyPut, finishPut, putAtOnce } from './put-at-once.js'
import { putEntries } from './put-entries.js'
import type { WriteOverlaps } from './write-overlaps.js'

/** What the write path works with: the chain's parts. */
export interface WriteParts {
  readonly name: string
  readonly calls: LayerCalls
  readonly backfill: Backfill
  readonly misses: MissCache | undefined
  readonly coherence: boolean
  /** The authoritative layer fills missing primary keys. */
  readonly generatesKeys: boolean
  /** A cache layer is polymorphic: a put's objects need their ancestor models' keys too. */
  readonly polymorphicCaches: boolean
  /** The order of cache updates per object, shared with delete by key. */
  readonly turns: CacheTurns
  /** Which database writes of one object overlapped, shared with delete by key. */
  readonly overlaps: WriteOverlaps
}

/**
 * A chain's writes: the authoritative layer first, then the cache layers bottom-up. A cache layer that
 * fails a write is cleaned up — the objects are invalidated there at once or, if the layer is
 * unreachable, remembered for repair before the layer is read again — so it never serves what the
 * database no longer holds.
 */
export class WritePath {
  readonly #p: WriteParts

  constructor(parts: WriteParts) {
    this.#p = parts
    parts.calls.guards.forEach((guard, i) => {
      guard.onRepaired = (model, lookups) => this.#invalidateAbove(i, model, lookups)
      guard.onOverflow = (dropped) => {
        parts.calls.fail(
          i,
          'repair',
          new StockpyleError(
            `${guard.layer.name} store: ${dropped} pending repairs passed the bound; the layer is skipped until it is cleared`,
          ),
        )
      }
    })
  }

  /** Puts: checks every item, the authoritative layer, then every cache layer. */
  async put(items: readonly WriteItem[]): Promise<void> {
    const objs = items.map((i) => i.obj)
    checkWritable(items, this.#p.name, this.#p.calls.last, this.#p.generatesKeys, this.#p.polymorphicCaches)
    const { turn, overlapped } = await this.#authoritative(objs, 'put', (layer) =>
      layer.batchPutEntries(items.map((i) => new Entry(i.obj, i.expiresAt))),
    )
    try {
      if (turn.before !== undefined) await Promise.all(turn.before)
      const written = overlapped === undefined ? items : items.filter((_, k) => !overlapped.has(k))
      if (overlapped !== undefined) await this.#dropOverlapped(objs.filter((_, k) => overlapped.has(k)))
      if (written.length === 0) return
      const encoded = this.#sharedEnvelopes(written.map((i) => i.obj))
      await this.#caches(
        'put',
        written.map((i) => i.obj),
        written.map((i, k) => new Entry(i.obj, i.expiresAt, encoded?.[k])),
      )
    } finally {
      turn.end()
    }
  }

  /**
   * Objects whose database write overlapped another write of them in this process: the database
   * ordered the two, but the order of their replies here — which orders the cache updates — may be the
   * other: no copy is written, every cache layer drops its copy (as after a failed write).
   */
  async #dropOverlapped(objs: readonly object[]): Promise<void> {
    const { calls } = this.#p
    try {
      for (let i = calls.last - 1; i >= 0; i--) await this.invalidateIn(i, objs).catch(() => {})
    } finally {
      this.#p.backfill.markWritten(objs)
    }
  }

  /** A chain transaction begins: see {@link committed}; call {@link transactionEnded} once it settled. */
  transactionStarted(): number {
    return this.#p.overlaps.openTransaction()
  }

  /** The chain transaction that began at `started` settled (committed, rolled back or failed). */
  transactionEnded(started: number): void {
    this.#p.overlaps.closeTransaction(started)
  }

  /**
   * With two cache layers or more, each object's record envelope, encoded once for all of them (each
   * copies it with its own expiry instead of encoding the object again). Encoded after the
   * authoritative write, which may have changed the objects (values read back from the database). An
   * object that does not encode gets none: each layer then encodes, and fails, on its own.
   */
  #sharedEnvelopes(objs: readonly object[]): (Uint8Array | undefined)[] | undefined {
    if (this.#p.calls.last < 2) return undefined
    return objs.map((obj) => {
      try {
        return encodeRecord(obj, undefined)
      } catch {
        return undefined
      }
    })
  }

  /** Deletes: the authoritative layer, then every cache layer. */
  async remove(items: readonly WriteItem[]): Promise<void> {
    const objs = items.map((i) => i.obj)
    // (a delete's copies go whichever reply comes first: an overlap changes nothing for it)
    const { turn } = await this.#authoritative(objs, 'delete', (layer) => layer.batchDelete(objs))
    try {
      if (turn.before !== undefined) await Promise.all(turn.before)
      await this.#caches('delete', objs)
    } finally {
      turn.end()
    }
  }

  /**
   * Applies the writes of a transaction that began at `started` (see {@link transactionStarted}) and
   * has committed to the cache layers, in order, each object's last write only ({@link finalWrites});
   * objects that another write overlapped are dropped from the caches instead (see {@link WriteOverlaps}).
   */
  async committed(writes: readonly TransactionWrite[], started: number): Promise<void> {
    // (runs as the commit resolved: the turn is taken, and overlaps told, before anything is awaited)
    const all = writes.flatMap((w) => w.objects)
    const turn = this.#p.turns.take(all)
    const overlapped = this.#p.overlaps.committed(started, all.map(identityKey))
    const dropped = overlapped === undefined ? undefined : new Set(all.filter((_, k) => overlapped.has(k)))
    try {
      if (turn.before !== undefined) await Promise.all(turn.before)
      // Every object written is marked, also those whose earlier writes the caches skip.
      this.#marked(all)
      if (this.#p.coherence) await this.#p.backfill.settle(all)
      for (const { operation, objects } of finalWrites(writes)) {
        if (operation === 'put') {
          const written = dropped === undefined ? objects : objects.filter((o) => !dropped.has(o))
          if (written.length < objects.length) await this.#dropOverlapped(objects.filter((o) => dropped?.has(o)))
          if (written.length === 0) continue
          await this.#caches(
            'put',
            written,
            written.map((value) => new Entry(value, undefined)),
          )
        } else {
          // Stubs (objects with only their primary key) are dropped by it: a cache cannot delete them
          const split = splitStubs(objects)
          const whole = split?.whole ?? objects
          if (whole.length > 0) await this.#caches('delete', whole)
          if (split !== undefined) for (let i = this.#p.calls.last - 1; i >= 0; i--) await dropStubs(this.#p.calls, i, split.stubs)
        }
      }
    } finally {
      turn.end()
    }
  }

  /**
   * After a transaction whose COMMIT failed: its outcome is unknown (the database may have committed
   * and lost the reply), so, as after a failed write, every object it wrote is dropped from every cache
   * layer (remembered for repair where that fails) and reads in flight do not backfill them.
   */
  async commitFailed(writes: readonly TransactionWrite[]): Promise<void> {
    const objs = writes.flatMap((w) => w.objects)
    if (objs.length === 0) return
    const { calls } = this.#p
    // (after the cache updates of earlier writes of these objects: one landing later would undo this)
    const turn = this.#p.turns.take(objs)
    this.#marked(objs)
    try {
      if (turn.before !== undefined) await Promise.all(turn.before)
      for (let i = calls.last - 1; i >= 0; i--) await this.invalidateIn(i, objs).catch(() => {})
    } finally {
      this.#marked(objs)
      turn.end()
    }
  }

  /**
   * Drops cached copies in every cache layer, and forgets every remembered miss (negative caching). The
   * last layer keeps its data when it owns the truth; a chain of caches only (its last layer not
   * authoritative) is itself a cache and drops them there too, first, failing the call if that fails.
   */
  async invalidate(info: ModelInfo, requests: readonly LookupRequest[]): Promise<void> {
    const { calls, misses, coherence, name } = this.#p
    const lookups = requests.map((r) => r.lookup)
    const keys = requests.map((r) => encodeLookup(info, r.lookup, `${name} store invalidate`))
    // The objects changed somewhere else (an INSERT another client made, told by its primary key): the
    // lookups that missed them under their other keys are not among these keys, so every miss goes.
    misses?.clear()
    this.#p.backfill.clock.mark(coherence ? keys : [])
    const tail = calls.layers[calls.last] as Store
    // A cache drops them; an authoritative layer is left alone (its data is the truth), but a nested
    // chain there drops its caches' copies.
    const invalidateTail = !tail.capabilities.authoritative || calls.nestedTail !== undefined ? tail.batchInvalidate : undefined
    let failure: LayerFailure | undefined
    let tailFailed: { error: unknown } | undefined
    // After the cache updates of earlier writes of these objects, which could otherwise land after this
    // and bring back what it drops. A lookup by primary key names its object's turn; one by an
    // alternate key cannot, so every cache update in flight goes first.
    const primary = keys.filter((_, i) => (requests[i] as LookupRequest).spec === info.primary)
    // a write of these objects in flight may answer after the change this tells of: it drops its copies
    this.#p.overlaps.invalidated(primary, primary.length < keys.length)
    const unnamed = primary.length < keys.length ? this.#p.turns.pending() : undefined
    const turn = this.#p.turns.takeKeys(primary)
    try {
      const before = unnamed ?? turn.before
      if (before !== undefined) await Promise.all(before)
      if (invalidateTail !== undefined) {
        // Its failure fails the call, after the cache layers above were invalidated all the same.
        try {
          await calls.direct(calls.last, 'invalidate', (layer) => invalidateTail.call(layer, info.model, lookups as never))
        } catch (error) {
          tailFailed = { error }
        }
      }
      for (let i = calls.last - 1; i >= 0; i--) {
        const guard = calls.guards[i] as LayerGuard
        const invalidate = guard.layer.batchInvalidate
        if (invalidate === undefined) continue
        try {
          await calls.run(i, 'invalidate', (layer) => invalidate.call(layer, info.model, lookups as never))
        } catch (err) {
          failure ??= calls.fail(i, 'invalidate', err)
          guard.rememberLookups(info.model, only(lookups, err))
        }
      }
    } finally {
      turn.end()
      // as after a write (see #caches): reads begun while the caches were invalidated are not joined
      this.#p.backfill.clock.mark(coherence ? keys : [])
    }
    if (tailFailed !== undefined) throw calls.lastFailed(tailFailed.error, 'invalidate')
    calls.raise(failure)
  }

  /**
   * Deletes the objects from cache layer `index` (stubs, objects with only their primary key, are
   * dropped by it); if that fails too, remembers them for repair. A clean-up after another failure:
   * reported (events, metrics) as operation `invalidate`, never as a caller's `delete`.
   */
  readonly invalidateIn = async (index: number, given: readonly object[]): Promise<void> => {
    const { calls } = this.#p
    if (given.length === 0) return
    const split = splitStubs(given)
    const objs = split?.whole ?? given
    if (objs.length > 0) {
      try {
        await calls.run(index, 'invalidate', (layer) => layer.batchDelete(objs))
      } catch (err) {
        try {
          calls.fail(index, 'invalidate', err)
        } finally {
          ;(calls.guards[index] as LayerGuard).remember(only(objs, err))
        }
      }
    }
    if (split !== undefined) await dropStubs(calls, index, split.stubs)
  }

  /** Marks the objects written (write clock, negative caching) before and after the authoritative write. */
  readonly marked = (objs: readonly object[]): void => this.#marked(objs)

  #marked(objs: readonly object[]): void {
    const { misses, backfill } = this.#p
    if (misses !== undefined) for (const obj of objs) misses.forget(lineageKeys(obj))
    backfill.markWritten(objs)
  }

  /**
   * The database write; resolves to this write's turn at the caches (taken as the database write
   * resolved) and the positions of `objs` whose write another overlapped (see {@link WriteOverlaps}).
   */
  async #authoritative(
    objs: readonly object[],
    operation: 'put' | 'delete',
    write: (layer: Store) => Promise<void>,
  ): Promise<{ turn: CacheTurn; overlapped: Set<number> | undefined }> {
    const { calls, coherence, backfill, overlaps } = this.#p
    this.#marked(objs)
    const ticket = overlaps.begin(objs.map(identityKey))
    let overlapped: Set<number> | undefined
    try {
      try {
        await calls.direct(calls.last, operation, write)
      } finally {
        overlapped = overlaps.end(ticket)
      }
    } catch (err) {
      const failure = calls.lastFailed(err, operation)
      // Whatever the database holds now (a write that timed out may still land), no cache may hold
      // something else: after the cache updates of earlier writes of these objects, which could land later.
      const turn = this.#p.turns.take(objs)
      try {
        if (turn.before !== undefined) await Promise.all(turn.before)
        for (let i = calls.last - 1; i >= 0; i--) await this.invalidateIn(i, objs).catch(() => {})
      } finally {
        turn.end()
      }
      throw failure
    } finally {
      this.#marked(objs)
    }
    const turn = this.#p.turns.take(objs)
    try {
      if (coherence) await backfill.settle(objs)
    } catch (err) {
      turn.end()
      throw err
    }
    return { turn, overlapped }
  }

  /**
   * Runs a put (of `entries`, one per object) or a delete of `objs` on every cache layer, bottom-up;
   * failures are cleaned up, then raised per policy. The write clock moves again once the caches are
   * written: a read that began while they were (it may have read a copy the write replaces) is
   * neither joined by reads that begin after the write returned nor allowed to backfill what it read.
   */
  async #caches(operation: 'put' | 'delete', objs: readonly object[], entries?: readonly StoreEntry[]): Promise<void> {
    const { calls } = this.#p
    let failure: LayerFailure | undefined
    const remove = (layer: Store) => layer.batchDelete(objs)
    let early: EarlyPut | undefined
    try {
      for (let i = calls.last - 1; i >= 0; i--) {
        let failed: LayerFailure | undefined
        if (entries === undefined) failed = await calls.write(i, operation, remove)
        else if (i === 0) failed = await finishPut(calls, 0, entries, early)
        else {
          const written = putEntries(calls, i, 'put', entries)
          // The first layer (in this process) takes its copy while the lowest takes theirs (Store.putNow).
          if (i === calls.last - 1) early = putAtOnce(calls, 0, entries)
          failed = await written
        }
        if (failed === undefined) continue
        // Only the objects a failed node owns (or the layer refused) may be stale when the others were written.
        const stale = failed.failed === undefined ? objs : failed.failed.map((k) => objs[k] as object)
        if (operation === 'put') await this.invalidateIn(i, stale)
        else (calls.guards[i] as LayerGuard).remember(stale)
        if (!failed.skipped) failure ??= failed
      }
    } finally {
      abandonPut(calls, 0, early, objs)
      // the clock alone: a read begun before this point remembers no miss (see ReadPath.readBelowFirst)
      this.#p.backfill.markWritten(objs)
    }
    calls.raise(failure)
  }

  /**
   * After layer `index` was repaired, other processes may have copied its stale entries into their
   * upper layers meanwhile: invalidate the objects in this process's upper layers, whose memory
   * layers publish the invalidation to every other process.
   */
  async #invalidateAbove(index: number, model: Model, lookups: readonly object[]): Promise<void> {
    const { calls } = this.#p
    for (let i = index - 1; i >= 0; i--) {
      const guard = calls.guards[i] as LayerGuard
      const invalidate = guard.layer.batchInvalidate
      if (invalidate === undefined) continue
      try {
        await calls.run(i, 'invalidate', (layer) => invalidate.call(layer, model, lookups as never))
      } catch (err) {
        try {
          calls.fail(i, 'invalidate', err)
        } finally {
          guard.rememberLookups(model, only(lookups, err))
        }
      }
    }
  }
}

/** The items of `items` a partial failure names (all of them for any other error). */
function only<T>(items: readonly T[], err: unknown): readonly T[] {
  return isPartialFailure(err) ? err.failed.map((k) => items[k] as T) : items
}
