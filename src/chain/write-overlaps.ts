/** The writes of one object (identity key) in flight at the authoritative layer, and when the last ended. */
class KeyWrites {
  inFlight = 0
  /** The {@link WriteOverlaps} sequence number at which the last write of the key ended. */
  lastEnd = 0
}

/** One write's registration (see {@link WriteOverlaps.begin}). */
export class OverlapTicket {
  constructor(
    /** The sequence number at which the write began. */
    readonly start: number,
    /** Its objects' identity keys (`undefined` where the database is to fill the key). */
    readonly keys: readonly (string | undefined)[],
    /** Whether it names no object (a delete by an alternate key): it overlaps every write. */
    readonly unnamed: boolean,
  ) {}
}

/**
 * Which database writes of one object in this process overlapped. Two writes of an object whose
 * database calls overlap (on two connections of a pool, say) are ordered by the database — the later
 * one waits for the first's row lock — but their replies can reach this process in either order, and
 * a chain orders its cache updates by reply ({@link CacheTurns}). Where writes overlapped, the order
 * of their cache updates tells nothing: their copies are dropped instead of written, and the next
 * read finds what the database kept.
 *
 * A write that cannot name its objects before the database answers (a delete by an alternate key)
 * overlaps every write in flight with it. Writes that do not overlap — nearly all — cost two Map
 * operations per object.
 */
export class WriteOverlaps {
  #seq = 0
  readonly #writes = new Map<string, KeyWrites>()
  /** Unnamed writes in flight, and when the last one ended. */
  readonly #unnamed = new KeyWrites()
  /** Transactions running: while any does, keys whose writes ended are kept for its {@link committed}. */
  #transactions = 0

  /** A transaction begins: returns its start for {@link committed}; call {@link closeTransaction} after it settled. */
  openTransaction(): number {
    this.#transactions++
    return ++this.#seq
  }

  /** A transaction settled (committed or not). */
  closeTransaction(): void {
    if (--this.#transactions > 0) return
    for (const [key, state] of this.#writes) if (state.inFlight === 0) this.#writes.delete(key)
  }

  /** Registers a database write of the objects with these identity keys (or of unknown objects: `unnamed`). */
  begin(keys: readonly (string | undefined)[], unnamed = false): OverlapTicket {
    for (const key of keys) {
      if (key === undefined) continue
      let state = this.#writes.get(key)
      if (state === undefined) this.#writes.set(key, (state = new KeyWrites()))
      state.inFlight++
    }
    if (unnamed) this.#unnamed.inFlight++
    return new OverlapTicket(++this.#seq, keys, unnamed)
  }

  /**
   * Ends the write `ticket` registered (its database call settled) and tells which of its keys another
   * write overlapped: one in flight now, or one that ended after this one began.
   * @returns the positions in `ticket.keys` that overlapped, or `undefined` for none.
   */
  end(ticket: OverlapTicket): Set<number> | undefined {
    const end = ++this.#seq
    const unnamed = this.#unnamed
    if (ticket.unnamed) unnamed.inFlight--
    const others = unnamed.inFlight > 0 || unnamed.lastEnd > ticket.start
    let overlapped: Set<number> | undefined
    ticket.keys.forEach((key, i) => {
      if (key === undefined) return
      const state = this.#writes.get(key) as KeyWrites
      state.inFlight--
      if (others || ticket.unnamed || state.inFlight > 0 || state.lastEnd > ticket.start) (overlapped ??= new Set()).add(i)
      state.lastEnd = end
      // a write that begins later cannot overlap any that ended: nothing to keep, unless a transaction
      // that began before may still commit a write of the key
      if (state.inFlight === 0 && this.#transactions === 0) this.#writes.delete(key)
    })
    if (ticket.unnamed) unnamed.lastEnd = end
    return overlapped
  }

  /**
   * A transaction that began at `start` (see {@link openTransaction}) has just committed writes of
   * objects with these identity keys: tells which another write overlapped — one in flight now, or one
   * that ended since `start` — and marks the commit as the end of a write of each key in flight, so
   * that those writes see the overlap too.
   * @returns the positions in `keys` that overlapped, or `undefined` for none. Unknown keys never do.
   */
  committed(start: number, keys: readonly (string | undefined)[]): Set<number> | undefined {
    const end = ++this.#seq
    const unnamed = this.#unnamed
    const others = unnamed.inFlight > 0 || unnamed.lastEnd > start
    let overlapped: Set<number> | undefined
    keys.forEach((key, i) => {
      if (key === undefined) return
      const state = this.#writes.get(key)
      if (others || (state !== undefined && (state.inFlight > 0 || state.lastEnd > start))) (overlapped ??= new Set()).add(i)
      if (state !== undefined) state.lastEnd = end
    })
    return overlapped
  }
}
