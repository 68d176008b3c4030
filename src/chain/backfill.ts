import type { LookupRequest, StoreEntry } from '../contracts/base-store.js'
import { Entry } from '../contracts/batch-records.js'
import { encodeRecord } from '../core/codec.js'
import { keyOfObjectFor, keysOfObject } from '../core/key-encoding.js'
import type { Model } from '../core/model.js'
import { describeModel } from '../core/registry.js'
import type { LayerCalls, LayerFailure } from './layer-calls.js'
import { putEntries } from './put-entries.js'
import { WriteClock } from './write-clock.js'

/**
 * A backfill in flight: what it copies, the identity keys of those objects once asked for, and the
 * copy. A class rather than an object literal, which V8 may allocate in the old generation once most
 * of its objects outlive a young GC: a dead one there would keep its hits alive until a full GC.
 */
class InFlight {
  keys: Set<string> | undefined = undefined
  constructor(
    readonly hits: readonly Hit[],
    readonly work: Promise<void>,
  ) {}
}

/** A copy found in layer `layer` during a read, to be copied into the layers above it (a class: see batch-records.ts). */
export class Hit {
  constructor(
    readonly layer: number,
    readonly entry: StoreEntry,
    /** The request that found it, when known: its canonical key may serve as the copy's record key (Store.backfillNow). */
    readonly request: LookupRequest | undefined = undefined,
  ) {}
}

/**
 * Copies what a read found below into the layers above (backfill), without ever writing an older
 * value over a newer one: the write clock tells which objects were written since the read began (their
 * copies are dropped), backfills are add-only where the store can (`backfill: true`), and a write of
 * an object waits for a backfill of it in flight before it updates the caches ({@link Backfill.settle}).
 */
export class Backfill {
  readonly clock = new WriteClock()
  readonly #calls: LayerCalls
  readonly #coherence: boolean
  /**
   * Backfills in flight (the objects they copy, and the copy itself). Replaced when it empties, as
   * SingleFlight's Map is: a long-lived Set's dead tables keep what they held alive through young GCs.
   */
  #inFlight = new Set<InFlight>()
  /** Called to clean up an upper layer whose backfill failed (its copies may be partial). */
  readonly #invalidate: (index: number, objs: readonly object[]) => Promise<void>

  constructor(calls: LayerCalls, coherence: boolean, invalidate: (index: number, objs: readonly object[]) => Promise<void>) {
    this.#calls = calls
    this.#coherence = coherence
    this.#invalidate = invalidate
  }

  /**
   * Copies `hits` (found by a read that began at write-clock `started` and at invalidation sequence
   * `since`) into the layers above where
   * each was found: one batch per upper layer, bottom-up, whichever layers the hits came from.
   * Rejects only under `onCacheError: 'throw'` (after clean-up). Returns `undefined` instead of a
   * promise when every copy landed at once (hits of the second layer copied into an in-process first
   * layer that takes backfills at once, `Store.backfillNow`).
   */
  copy(hits: readonly Hit[], started: number, since: number): Promise<void> | undefined {
    let fresh = hits
    // Identity keys are computed only when a write may have overtaken the read (rare): a read with no
    // write since it began drops nothing.
    if (this.#coherence && this.clock.anyWrittenSince(started)) {
      fresh = hits.filter((hit) => !this.clock.writtenSince(stampedKeys(hit.entry.value), started))
    }
    if (fresh.length === 0) return undefined
    if (this.#coherence && fresh.every((hit) => hit.layer === 1)) {
      // Copies that land at once leave no time for a write to come between the write clock's check
      // above and the copy: there is nothing for a write to wait on.
      const entries = fresh.map((hit) => hit.entry)
      const failed = this.#calls.backfillNow(
        0,
        entries,
        since,
        fresh.map((hit) => hit.request),
      )
      if (failed === undefined) {
        this.#calls.observer.backfilled(0, entries.length)
        return undefined
      }
      if (failed !== false) return this.#failed(0, entries, failed).then((f) => this.#calls.raise(f))
    }
    const work = this.#write(fresh, since)
    if (!this.#coherence) return work
    return this.#tracked(fresh, work)
  }

  /** Awaits `work`, a backfill of `hits`, registered so that a write of these objects waits for it first. */
  async #tracked(hits: readonly Hit[], work: Promise<void>): Promise<void> {
    // A write of these objects waits for this backfill to land before it updates the caches, so the
    // backfill can never land after (and over) the write.
    const flight = new InFlight(hits, work)
    this.#inFlight.add(flight)
    try {
      await work
    } finally {
      this.#inFlight.delete(flight)
      if (this.#inFlight.size === 0) this.#inFlight = new Set()
    }
  }

  async #write(found: readonly Hit[], since: number): Promise<void> {
    let top = 0
    for (const hit of found) if (hit.layer > top) top = hit.layer
    // Copied into two layers or more: encode each copy once here, so that every layer restamps the
    // same envelope instead of encoding the object again.
    const hits = top >= 2 ? found.map(withEnvelope) : found
    let failure: LayerFailure | undefined
    for (let i = top - 1; i >= 0; i--) {
      const copied = hits.every((h) => h.layer > i) ? hits : hits.filter((h) => h.layer > i)
      const entries = copied.map((h) => h.entry)
      const guarded = this.#coherence
      let failed = guarded
        ? this.#calls.backfillNow(
            i,
            entries,
            since,
            copied.map((h) => h.request),
          )
        : false
      if (failed === false) {
        failed = await putEntries(this.#calls, i, 'backfill', entries, guarded ? { backfill: true, since } : {})
      }
      if (failed === undefined) this.#calls.observer.backfilled(i, entries.length)
      else failure ??= await this.#failed(i, entries, failed)
    }
    this.#calls.raise(failure)
  }

  /**
   * A backfill of layer `i` that did not land: the layer is cleaned up when its copies may have landed
   * in part. Resolves to the failure to report with {@link LayerCalls.raise} (none for a skipped layer).
   */
  async #failed(i: number, entries: readonly StoreEntry[], failed: LayerFailure): Promise<LayerFailure | undefined> {
    if (failed.skipped) return undefined
    if (failed.failed !== undefined) {
      // Only some copies failed: refused ones (too large) never landed; those of failed nodes were
      // fresh and add-only, and each node's connection keeps its order, so they can land only where no
      // newer write did — nothing to repair. The others landed.
      this.#calls.observer.backfilled(i, entries.length - failed.failed.length)
    } else if (!failed.refused) {
      await this.#invalidate(
        i,
        entries.map((e) => e.value),
      )
    }
    return failed
  }

  /** Waits for backfills in flight of any of these objects. */
  async settle(objs: readonly object[]): Promise<void> {
    if (this.#inFlight.size === 0) return
    const written = objs.flatMap((obj) => identityKey(obj) ?? [])
    const pending: Promise<void>[] = []
    for (const flight of this.#inFlight) {
      // Each backfill's identity keys are computed once, by the first write that has to check it.
      const keys = (flight.keys ??= new Set(flight.hits.flatMap((hit) => identityKey(hit.entry.value) ?? [])))
      if (written.some((key) => keys.has(key))) pending.push(flight.work)
    }
    await Promise.allSettled(pending)
  }

  /** Advances the write clock for a write of these objects, so reads in flight do not backfill what it replaces. */
  markWritten(objs: readonly object[]): void {
    // Without coherence no key is stamped, but the clock still moves: negative caching asks whether
    // any write landed during a read.
    this.clock.mark(this.#coherence && this.clock.reading ? objs.flatMap((obj) => identityKey(obj) ?? []) : [])
  }
}

/** The hit with the record envelope of its copy, encoded now when the layer did not give one. */
function withEnvelope(hit: Hit): Hit {
  const { entry } = hit
  if (entry.encoded !== undefined) return hit
  let encoded: Uint8Array
  try {
    encoded = encodeRecord(entry.value, entry.expiresAt)
  } catch {
    // Left to each layer, which reports what it cannot store in its own name.
    return hit
  }
  return new Hit(hit.layer, new Entry(entry.value, entry.expiresAt, encoded), hit.request)
}

/**
 * Every key of `obj` a write or an invalidation may have stamped on the write clock: its record key
 * and its alternate keys (its ancestors' keys too). Writes stamp an object's record key; invalidations
 * and deletes by key stamp the key they were given, which may be an alternate one.
 */
function stampedKeys(obj: object): string[] {
  try {
    const keys = keysOfObject(
      describeModel((Object.getPrototypeOf(obj) as { constructor: Model }).constructor),
      obj,
      true,
      'backfill',
      true,
    )
    return [keys.record, ...keys.aliases]
  } catch {
    const key = identityKey(obj)
    return key === undefined ? [] : [key]
  }
}

/**
 * What identifies an object for the write clock and in-flight backfills: its record key (its own
 * model's primary key), the same whatever key it was read by and whatever its alternate keys became.
 * `undefined` while the database has not filled the primary key yet.
 */
export function identityKey(obj: object): string | undefined {
  try {
    return keyOfObjectFor(describeModel((Object.getPrototypeOf(obj) as { constructor: Model }).constructor).primary, obj)
  } catch {
    return undefined
  }
}
