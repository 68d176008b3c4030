import type { LeaseCapable, LookupRequest, StoreEntry } from '../contracts/base-store.js'
import { detach } from '../core/detach.js'
import type { Model } from '../core/model.js'
import { Hit } from './backfill.js'
import type { LayerCalls } from './layer-calls.js'

/** Lookups still unanswered after the lease layer: those whose lease this process won, and the others. */
export interface LeaseOutcome {
  /** Slots whose lease this process holds: it reads them below and must release the leases. */
  readonly winners: number[]
  /** Slots it waited for in vain (the holder found nothing, failed, or the wait ran out). */
  readonly waited: number[]
}

/**
 * Cross-process single-flight at the lease layer (memcached `add`, Redis `SET NX`): one process takes a
 * lease on a missing lookup and reads the layers below; the others poll the lease layer for its
 * backfill for up to `wait` ms, then read below themselves. A failing lease layer never fails a read:
 * its errors are reported and the lookups go below as if every lease were won.
 */
export class Leases {
  readonly #calls: LayerCalls
  /** Index of the lease layer. */
  readonly layer: number
  readonly #wait: number
  readonly #ttl: number

  constructor(calls: LayerCalls, settings: { readonly layer: number; readonly wait: number; readonly ttl: number }) {
    this.#calls = calls
    this.layer = settings.layer
    this.#wait = settings.wait
    this.#ttl = settings.ttl
  }

  #api<T>(call: (leases: LeaseCapable) => Promise<T>): Promise<T> {
    return this.#calls.run(this.layer, 'lease', (l) => call(l as unknown as LeaseCapable))
  }

  /**
   * Takes leases on `lookups[slot]` for each slot of `still`; polls for the others. Copies found are put
   * in `out` and `hits`.
   */
  async take(
    model: Model,
    lookups: readonly object[],
    still: readonly number[],
    out: (StoreEntry | undefined)[],
    hits: Hit[],
  ): Promise<LeaseOutcome> {
    const of = (slots: readonly number[]) => slots.map((i) => lookups[i]) as never
    let won: boolean[]
    try {
      won = await this.#api((l) => l.acquireLeases(model, of(still), this.#ttl))
    } catch (err) {
      this.#calls.fail(this.layer, 'lease', err)
      return { winners: [...still], waited: [] }
    }
    let winners = still.filter((_, k) => won[k] === true)
    try {
      if (winners.length > 0) {
        // Another process may have backfilled and released its lease between our miss and our lease.
        const again = await this.#calls.read(this.layer, model, of(winners))
        const taken = winners
        winners = collect(this.layer, winners, again, out, hits)
        const found = taken.filter((i) => !winners.includes(i))
        if (found.length > 0) this.release(model, of(found))
      }
      let waiting = still.filter((_, k) => won[k] !== true)
      const gaveUp: number[] = []
      const deadline = performance.now() + this.#wait
      for (let delay = 5; waiting.length > 0 && performance.now() < deadline; delay = Math.min(delay * 2, 50)) {
        await new Promise((r) => setTimeout(r, delay))
        const found = await this.#calls.read(this.layer, model, of(waiting))
        const missed = collect(this.layer, waiting, found, out, hits)
        // A released lease with no copy means the holder found nothing (or failed): stop waiting for it.
        let held: boolean[]
        try {
          held = missed.length === 0 ? [] : await this.#api((l) => l.leasesHeld(model, of(missed)))
        } catch (err) {
          this.#calls.fail(this.layer, 'lease', err)
          held = missed.map(() => false)
        }
        waiting = missed.filter((_, k) => held[k] === true)
        let released = missed.filter((_, k) => held[k] !== true)
        if (released.length > 0) {
          // A holder backfills before it releases: a lease released after our read above may have left
          // its copy just after that read. Read once more before reading the layers below.
          released = collect(this.layer, released, await this.#calls.read(this.layer, model, of(released)), out, hits)
        }
        gaveUp.push(...released)
      }
      return { winners, waited: [...gaveUp, ...waiting] }
    } catch (err) {
      // (a read of the lease layer rejects under `onCacheError: 'throw'`) The leases this process still
      // holds go back now: every other process would otherwise wait for them in vain.
      if (winners.length > 0) this.release(model, of(winners))
      throw err
    }
  }

  /**
   * Gives leases back without waiting (fire-and-forget on purpose: the caller's answer does not depend
   * on it, and an unreleased lease expires after its ttl). A failure is reported, never unhandled.
   */
  release(model: Model, lookups: readonly object[]): void {
    detach(
      this.#api((l) => l.releaseLeases(model, lookups as never)),
      (err) => this.#calls.fail(this.layer, 'lease', err),
    )
  }
}

/** Puts each hit of `found` (answers for `slots`, in order) into `out` and `hits`; returns the slots that missed. */
export function collect(
  layer: number,
  slots: readonly number[],
  found: readonly (StoreEntry | undefined)[],
  out: (StoreEntry | undefined)[],
  hits: Hit[],
  requests?: readonly LookupRequest[],
): number[] {
  // (sized at the first miss and trimmed: an array grown by push reserves room for 16 more at each step)
  let missed: number[] | undefined
  let count = 0
  for (let k = 0; k < slots.length; k++) {
    const slot = slots[k] as number
    const entry = found[k]
    if (entry === undefined) (missed ??= new Array(slots.length - k))[count++] = slot
    else {
      out[slot] = entry
      hits.push(new Hit(layer, entry, requests?.[slot]))
    }
  }
  if (missed === undefined) return []
  missed.length = count
  return missed
}
