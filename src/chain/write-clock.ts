/**
 * The chain's write clock: a sequence number advanced by every write, and the number of the last write
 * that touched each canonical key while reads were in flight. A read notes the clock when it starts;
 * what it read may be backfilled only if none of the object's keys was written since. Stamps are
 * dropped when no read is in flight (no read can need them), or pruned when they pile up.
 */
export class WriteClock {
  #seq = 0
  /** The write that touched every key (a clear of the caches): no read that began before it may backfill. */
  #everything = -1
  readonly #lastWrite = new Map<string, number>()
  /**
   * Reads in flight that began at `#openSeq`, the newest start stamp, are only counted: most reads
   * begin and end with no write between, and a Map entry added and deleted per read costs a new hash
   * table each time. They move into {@link #readsInFlight} when a read begins at a newer stamp.
   */
  #openSeq = -1
  #openReads = 0
  /** Reads in flight by start stamp, for the stamps older than `#openSeq`. */
  readonly #readsInFlight = new Map<number, number>()

  /** Starts a read; returns its start stamp for {@link endRead} and {@link writtenSince}. */
  beginRead(): number {
    const started = this.#seq
    if (started !== this.#openSeq) {
      if (this.#openReads > 0) this.#readsInFlight.set(this.#openSeq, this.#openReads)
      this.#openSeq = started
      this.#openReads = 0
    }
    this.#openReads++
    return started
  }

  /** Ends a read started at `started`. */
  endRead(started: number): void {
    if (started === this.#openSeq) this.#openReads--
    else {
      const left = (this.#readsInFlight.get(started) ?? 1) - 1
      if (left > 0) this.#readsInFlight.set(started, left)
      else this.#readsInFlight.delete(started)
    }
    if (!this.reading) {
      // Map#clear allocates a new table even when empty, and this runs after every read
      if (this.#lastWrite.size !== 0) this.#lastWrite.clear()
    } else if (this.#lastWrite.size > 10_000) {
      const oldest = this.#readsInFlight.size === 0 ? this.#openSeq : Math.min(...this.#readsInFlight.keys())
      for (const [key, seq] of this.#lastWrite) if (seq <= oldest) this.#lastWrite.delete(key)
    }
  }

  /** The current sequence number: it moves with every write. */
  get seq(): number {
    return this.#seq
  }

  /** True when reads are in flight (only then do writes need their keys stamped). */
  get reading(): boolean {
    return this.#openReads > 0 || this.#readsInFlight.size > 0
  }

  /** Advances the clock, stamping `keys` when reads are in flight. */
  mark(keys: readonly string[]): void {
    const seq = ++this.#seq
    if (!this.reading) return
    for (const key of keys) this.#lastWrite.set(key, seq)
  }

  /** Advances the clock as a write of every key (the caches were cleared): reads in flight backfill nothing. */
  markAll(): void {
    this.#everything = ++this.#seq
  }

  /** Whether anything was written after a read that started at `started` (no key needs checking otherwise). */
  anyWrittenSince(started: number): boolean {
    return this.#seq > started
  }

  /** Whether `key` was written after a read that started at `started`. */
  keyWrittenSince(key: string, started: number): boolean {
    if (this.#everything > started) return true
    return this.#lastWrite.size !== 0 && (this.#lastWrite.get(key) ?? -1) > started
  }

  /** Whether any of `keys` was written after a read that started at `started`. */
  writtenSince(keys: readonly string[], started: number): boolean {
    if (this.#everything > started) return true
    if (this.#lastWrite.size === 0) return false
    for (const key of keys) if ((this.#lastWrite.get(key) ?? -1) > started) return true
    return false
  }
}
