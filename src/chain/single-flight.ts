import type { StoreEntry } from '../contracts/base-store.js'

/** One batch read below the first layer, and its promise while it is in flight. */
class Batch {
  /** Dropped when the read settles (see {@link FlightBatch.start}). */
  entries: Promise<readonly (StoreEntry | undefined)[]> | undefined
  /** How many keys of the Map of keys in flight are this batch's (a later read may take one over). */
  owned = 0
  /** The positions other reads joined (see {@link FlightBatch.joined}); `undefined` while none did. */
  joined: number[] | undefined
  constructor(
    /** The chain's write clock when the read began. */
    readonly seq: number,
    /** The process's invalidation sequence when the read began (`invalidationSequence()`: the `since` of its backfills). */
    readonly since: number,
  ) {}
}

/** A key's read in flight (a class: see contracts/batch-records.ts). */
class Flight {
  constructor(
    readonly batch: Batch,
    /** The key's position in the batch's read. */
    readonly index: number,
  ) {}
}

/**
 * Reads of single keys going below a chain's first layer, so that concurrent misses of one key in
 * this process share one read. Only a read that no write has overtaken may be joined: one that began
 * before a write may answer with what the write replaced. A write is one of the chain's (its write
 * clock moved) or an invalidation any in-process layer applied (the process's invalidation sequence
 * moved): a delete through another chain over the same memory layer (or a put it cannot hold), a write
 * to an AsyncLocalStore, an invalidation made on such a store itself, a bus eviction — writes this
 * chain's clock never sees
 * (found by review: a read in a new scope, begun after such a write, joined a read begun before it and
 * got the old copy). Either moves for every key: a join is refused after a write of any key, a read
 * more, never a stale answer.
 *
 * A key's promise is made only when a caller joins it: most reads are never joined, and a promise per
 * key of every batch cost more than the rest of the batch's bookkeeping. Every promise it creates has
 * a handler: a failed shared read rejects each caller that joined it (the caller of
 * {@link FlightBatch.claim} awaits what it returns), and never surfaces as an unhandled rejection.
 */
export class SingleFlight {
  /**
   * The keys in flight. Replaced by a new Map whenever it empties: V8 allocates a Map's next hash table
   * where its current one lives, so a long-lived Map whose table reached the old generation puts every
   * later table there too, and each dead table then keeps the keys and flights it held alive through
   * young-generation GCs until a full GC (measured: ~0.3 MB promoted per scavenge in a loop of batch
   * reads). A Map made when the chain is idle grows and dies young.
   */
  #flights = new Map<string, Flight>()

  /**
   * Begins registering the keys of one read of at most `count` keys, at write-clock `seq` and
   * invalidation sequence `since` (see {@link FlightBatch}).
   */
  begin(seq: number, count: number, since: number): FlightBatch {
    return new FlightBatch(this, new Batch(seq, since), count)
  }

  /** The Map of keys in flight now. */
  get flights(): Map<string, Flight> {
    return this.#flights
  }

  /** Called when a read's keys are deleted: starts afresh once nothing is in flight. */
  settled(): void {
    if (this.#flights.size === 0) this.#flights = new Map()
  }

  /** Drops every key in flight at once (the caller checked they are all one settled read's). */
  reset(): void {
    this.#flights = new Map()
  }
}

/**
 * The keys of one read below the first layer, claimed one by one before the read is sent
 * ({@link claim}), then the read ({@link start}).
 */
export class FlightBatch {
  readonly #owner: SingleFlight
  readonly #batch: Batch
  /** The keys claimed, in claiming order: the first `#claimed` slots. */
  readonly #keys: string[]
  #claimed = 0

  constructor(owner: SingleFlight, batch: Batch, count: number) {
    this.#owner = owner
    this.#batch = batch
    this.#keys = new Array(count)
  }

  /**
   * Claims `key` for this read at position `index` (returns `undefined`: read it there); or returns the
   * position where this read already has it (the key repeats); or the promise of the entry that a read
   * in flight, begun at the same write clock and invalidation sequence, will find (the caller must await
   * it; that read's backfills carry the same `since` as this one's).
   */
  claim(key: string, index: number): number | Promise<StoreEntry | undefined> | undefined {
    const flights = this.#owner.flights
    const flight = flights.get(key)
    if (flight !== undefined) {
      if (flight.batch === this.#batch) return flight.index
      const entries = flight.batch.entries
      if (entries !== undefined && flight.batch.seq === this.#batch.seq && flight.batch.since === this.#batch.since) {
        const at = flight.index
        ;(flight.batch.joined ??= []).push(at)
        return entries.then((all) => all[at])
      }
    }
    // (a flight of another batch, begun before a write or an invalidation, is taken over: that batch owns one key fewer)
    if (flight !== undefined) flight.batch.owned--
    flights.set(key, new Flight(this.#batch, index))
    this.#batch.owned++
    this.#keys[this.#claimed++] = key
    return undefined
  }

  /**
   * The positions of this read that other reads joined (each joiner decodes its own copy of what was
   * found there), or `undefined` when none did. Complete once the read settled: no read joins it after.
   * Whoever hands out the read's own objects at these positions must hand out copies instead, or a
   * caller's change to its object would reach the joiners' copies, which are made from it later.
   */
  get joined(): readonly number[] | undefined {
    return this.#batch.joined
  }

  /** Starts the read of the claimed keys (in claiming order): from now on it can be joined until it settles. */
  start(entries: Promise<readonly (StoreEntry | undefined)[]>): void {
    const batch = this.#batch
    batch.entries = entries
    const keys = this.#keys
    const claimed = this.#claimed
    const owner = this.#owner
    const done = (): void => {
      // The Map is replaced only when empty, so the keys claimed are in the current one. When they are
      // all it holds (no other read in flight), a new Map replaces it: a hundred deletes shrink its table
      // again and again, each time into a new one.
      const flights = owner.flights
      if (batch.owned === flights.size) owner.reset()
      else {
        for (let i = 0; i < claimed; i++) {
          const key = keys[i] as string
          if (flights.get(key)?.batch === batch) flights.delete(key)
        }
        owner.settled()
      }
      batch.owned = 0
      // V8 keeps the entries of a Map's table after the Map shrinks into a new one, until a full GC: a
      // flight deleted from the Map may still be reachable from there, so it must not keep the batch's
      // objects alive (they would survive every young-generation GC, which then costs several times
      // as much).
      batch.entries = undefined
    }
    entries.then(done, done)
  }
}
