/** The writes of one object (identity key) in flight at the authoritative layer, and when the last ended. */
class KeyWrites {
  inFlight = 0
  /** The {@link WriteOverlaps} sequence number at which the last write (or invalidation) of the key ended. */
  lastEnd = 0
}

/** One write's registration (see {@link WriteOverlaps.begin}). */
export class OverlapTicket {
  constructor(
    /** The sequence number at which the write began. */
    readonly start: number,
    /** Its objects' identity keys, one per object (`undefined` where the database is to fill the key). */
    readonly keys: readonly (string | undefined)[],
    /** The distinct keys of {@link keys}: each counted once, however often the batch names it. */
    readonly distinct: readonly string[],
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
 * read finds what the database kept. An invalidation (another client's write, told by the database
 * watcher, a bus or CacheSyncPlugin) counts as a write that ended when it arrived.
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
  /** The starts of the transactions running: keys whose writes ended after the oldest are kept for its {@link committed}. */
  readonly #transactions = new Set<number>()

  /** A transaction begins: returns its start for {@link committed} and {@link closeTransaction}. */
  openTransaction(): number {
    const start = ++this.#seq
    this.#transactions.add(start)
    return start
  }

  /** The transaction that began at `start` settled (committed or not): forgets what no running one needs. */
  closeTransaction(start: number): void {
    this.#transactions.delete(start)
    let oldest = Number.POSITIVE_INFINITY
    for (const s of this.#transactions) if (s < oldest) oldest = s
    for (const [key, state] of this.#writes) if (state.inFlight === 0 && state.lastEnd < oldest) this.#writes.delete(key)
  }

  /** Registers a database write of the objects with these identity keys (or of unknown objects: `unnamed`). */
  begin(keys: readonly (string | undefined)[], unnamed = false): OverlapTicket {
    const distinct = distinctKeys(keys)
    for (const key of distinct) {
      let state = this.#writes.get(key)
      if (state === undefined) this.#writes.set(key, (state = new KeyWrites()))
      state.inFlight++
    }
    if (unnamed) this.#unnamed.inFlight++
    return new OverlapTicket(++this.#seq, keys, distinct, unnamed)
  }

  /**
   * Ends the write `ticket` registered (its database call settled) and tells which of its objects
   * another write overlapped: one in flight now, or one (or an invalidation) that ended after this one
   * began.
   * @returns the positions in `ticket.keys` that overlapped, or `undefined` for none.
   */
  end(ticket: OverlapTicket): Set<number> | undefined {
    const end = ++this.#seq
    const unnamed = this.#unnamed
    if (ticket.unnamed) unnamed.inFlight--
    const others = unnamed.inFlight > 0 || unnamed.lastEnd > ticket.start
    let overlapped: Set<string> | undefined
    for (const key of ticket.distinct) {
      const state = this.#writes.get(key) as KeyWrites
      state.inFlight--
      if (others || ticket.unnamed || state.inFlight > 0 || state.lastEnd > ticket.start) (overlapped ??= new Set()).add(key)
      state.lastEnd = end
      // a write that begins later cannot overlap any that ended: nothing to keep, unless a running
      // transaction may still commit a write of the key (see closeTransaction)
      if (state.inFlight === 0 && this.#transactions.size === 0) this.#writes.delete(key)
    }
    if (ticket.unnamed) unnamed.lastEnd = end
    return overlapped === undefined ? undefined : positions(ticket.keys, overlapped)
  }

  /**
   * Objects (identity keys; `unnamed`: by alternate keys, objects unknown) were invalidated: a write of
   * them in flight, or a transaction running, may have been applied before the change the invalidation
   * tells of and answer after it — it must drop its copies rather than write them.
   */
  invalidated(keys: readonly string[], unnamed: boolean): void {
    const end = ++this.#seq
    if (unnamed) this.#unnamed.lastEnd = end
    for (const key of keys) this.#touch(key, end)
  }

  /**
   * A transaction that began at `start` (see {@link openTransaction}) has just committed writes of
   * objects with these identity keys: tells which another write overlapped — one in flight now, or one
   * (another transaction's commit, an invalidation) that ended since `start` — and marks the commit as
   * the end of a write of each key, so that the writes and transactions it overlapped see it too.
   * @returns the positions in `keys` that overlapped, or `undefined` for none. Unknown keys never do.
   */
  committed(start: number, keys: readonly (string | undefined)[]): Set<number> | undefined {
    const end = ++this.#seq
    const unnamed = this.#unnamed
    const others = unnamed.inFlight > 0 || unnamed.lastEnd > start
    let overlapped: Set<string> | undefined
    for (const key of distinctKeys(keys)) {
      const state = this.#writes.get(key)
      if (others || (state !== undefined && (state.inFlight > 0 || state.lastEnd > start))) (overlapped ??= new Set()).add(key)
      this.#touch(key, end)
    }
    return overlapped === undefined ? undefined : positions(keys, overlapped)
  }

  /** Marks `key` written at `end` where a write of it is in flight or a transaction runs (which may write it). */
  #touch(key: string, end: number): void {
    let state = this.#writes.get(key)
    if (state === undefined) {
      if (this.#transactions.size === 0) return
      this.#writes.set(key, (state = new KeyWrites()))
    }
    state.lastEnd = end
  }
}

function distinctKeys(keys: readonly (string | undefined)[]): string[] {
  if (keys.length === 1) return keys[0] === undefined ? [] : [keys[0]]
  return [...new Set(keys.filter((k): k is string => k !== undefined))]
}

function positions(keys: readonly (string | undefined)[], overlapped: ReadonlySet<string>): Set<number> {
  const out = new Set<number>()
  keys.forEach((key, i) => {
    if (key !== undefined && overlapped.has(key)) out.add(i)
  })
  return out
}
