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
  readonly #readsInFlight = new Map<number, number>()

  /** Starts a read; returns its start stamp for {@link endRead} and {@link writtenSince}. */
  beginRead(): number {
    const started = this.#seq
    this.#readsInFlight.set(started, (this.#readsInFlight.get(started) ?? 0) + 1)
    return started
  }

  /** Ends a read started at `started`. */
  endRead(started: number): void {
    const left = (this.#readsInFlight.get(started) ?? 1) - 1
    if (left > 0) this.#readsInFlight.set(started, left)
    else this.#readsInFlight.delete(started)
    if (this.#readsInFlight.size === 0) {
      // Map#clear allocates a new table even when empty, and this runs after every read
      if (this.#lastWrite.size !== 0) this.#lastWrite.clear()
    } else if (this.#lastWrite.size > 10_000) {
      const oldest = Math.min(...this.#readsInFlight.keys())
      for (const [key, seq] of this.#lastWrite) if (seq <= oldest) this.#lastWrite.delete(key)
    }
  }

  /** The current sequence number: it moves with every write. */
  get seq(): number {
    return this.#seq
  }

  /** True when reads are in flight (only then do writes need their keys stamped). */
  get reading(): boolean {
    return this.#readsInFlight.size > 0
  }

  /** Advances the clock, stamping `keys` when reads are in flight. */
  mark(keys: readonly string[]): void {
    const seq = ++this.#seq
    if (this.#readsInFlight.size === 0) return
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
