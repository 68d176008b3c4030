import { encodeRecord, restampRecord } from '../../core/codec.js'

/** What the arena reads and sets of a held record (a MemoryRecord). */
export interface ArenaRecord {
  /** The record's envelope (`undefined`: a tombstone); moved to another slab by a compaction. */
  bytes: Buffer | undefined
  /** The slab its bytes are held in (`undefined`: not held, or in a buffer of its own). */
  slab: Slab | undefined
  /** The bytes it holds in its slab (its length rounded up to 8; read on release without touching `bytes`). */
  held: number
}

/** Records longer than this (bytes, or than half the largest slab) get a buffer of their own rather than a place in a slab. */
const LARGEST_IN_SLAB = 4096
/**
 * The first slab's size (bytes): small, as a store of one request's scope (AsyncLocalStore) may hold
 * a record or two. Each next one is twice the last (and at least twice the record it is made for), up
 * to the arena's cap.
 */
const FIRST_SLAB = 1024
/** The cap of slab sizes (bytes): at most this, and at most a sixteenth of the store's `maxSize`. */
const MAX_SLAB = 64 * 1024

/**
 * What a record in a buffer of its own costs beyond its bytes and a slab record's overhead: the
 * ArrayBuffer object on the heap (~80 bytes) and V8's native bookkeeping of its backing store (the
 * BackingStore, its shared pointer and sweeper extension, malloc headers: ~250 bytes, counted in
 * neither heap nor external memory, measured as RSS over 300,000 buffers).
 */
export const OWN_BUFFER_OVERHEAD = 336

/** A buffer records are cut from, side by side (8-byte aligned), never reused: `used` only grows. */
export class Slab {
  /** Bytes handed out (the next record starts there). */
  used = 0
  /** Bytes of the records held in it now (each rounded up to 8). */
  live = 0
  /** Set while a compaction moves its records out. */
  moving = false
  /** `bytes.buffer`, read once. */
  readonly buffer: ArrayBufferLike
  constructor(readonly bytes: Buffer) {
    this.buffer = bytes.buffer
  }
}

/**
 * Where a memory store's records live: slabs of its own, not Node's shared Buffer pool. A record
 * under 4 KiB made with `Buffer.allocUnsafe` is a slice of an 8 KiB pool slab shared with whatever
 * else the process allocated, and one record that outlives the rest keeps the whole slab alive:
 * with 1,900-byte objects of which one in four stayed hot, a 64 MiB store grew the process by 108 MiB;
 * a copy kept as a slice of a socket's buffer would keep all of that. A buffer of its own per record
 * costs ~250 bytes of native memory and doubled the cost of a backfill, so records are cut from slabs
 * (as Node's pool does) that hold only this store's records, and the arena knows what each holds:
 *
 * - {@link waste} (bytes of slabs not held by records) is counted against `maxSize` with the records;
 * - when the waste passes an eighth of the slabs, the records of the sparsest slabs move to the
 *   newest one ({@link compact}), so the slabs they left can go.
 *
 * Slabs start at 1 KiB and double as the store grows, up to 64 KiB and a sixteenth of `maxSize`.
 * Records bigger than 4 KiB or than half the largest slab (every record of a store bounded under
 * 16 KiB) get a buffer of their own, counted with {@link OWN_BUFFER_OVERHEAD}.
 */
export class RecordArena {
  /**
   * Every slab a record may be held in, oldest first: the current one (last) and those holding records.
   * An array, not a Map by ArrayBuffer: a Map's old-generation table dropped on a clear or a rehash
   * keeps the young ArrayBuffers it held alive through young GCs until a full GC, and the slabs' memory
   * with them (a chain reading batches of 100 into a memory layer cleared before each ran twice as
   * many full GCs).
   */
  #slabs: Slab[] = []
  #current: Slab | undefined = undefined
  /** Largest slab. */
  readonly #maxSlab: number
  /** Longest record held in a slab (0: no slabs, every record gets a buffer of its own). */
  readonly #largest: number
  #slabBytes = 0
  #liveBytes = 0
  /** The waste left by the last compaction: the next one waits until the waste grew past it. */
  #floor = 0
  /** Compactions wait until the waste passes this (see {@link compact}). */
  #compactAbove = 0
  /** The bytes last cut from the current slab (a record about to be held, most often). */
  #last: Buffer | undefined = undefined
  /** Set while the store drops every record ({@link clear}). */
  #clearing = false
  /** Bytes cut during the store's current write and not held yet (not waste until it {@link settle}s). */
  #pending = 0

  /** `maxSize`: the store's bound in bytes (`undefined`: none), which caps slab sizes at a sixteenth of it. */
  constructor(maxSize: number | undefined) {
    let cap = MAX_SLAB
    if (maxSize !== undefined) while (cap > maxSize / 16) cap /= 2
    this.#maxSlab = cap
    this.#largest = cap < FIRST_SLAB ? 0 : Math.min(LARGEST_IN_SLAB, cap / 2)
  }

  /**
   * Bytes of slabs held but not by records (an unused slab tail, records gone from a slab still held,
   * records cut but never held), but those cut during the current write and not held yet.
   */
  get waste(): number {
    return this.#slabBytes - this.#liveBytes - this.#pending
  }

  /**
   * Ends a write of the store: bytes it cut for records it did not hold (refused, or the write failed)
   * are waste from now on. Until then, a write that cuts every record before it holds any (a batch of
   * puts) neither counts them as waste nor has their slabs compacted away.
   */
  settle(): void {
    this.#pending = 0
  }

  /**
   * A Buffer of `length` bytes for a record (for `encodeRecord`/`restampRecord`; its contents are the
   * caller's to write): a place in the current slab, or a buffer of its own for a big record. Until
   * the record is {@link hold held}, its place counts as waste.
   */
  readonly alloc = (length: number): Buffer => {
    if (length > this.#largest) return Buffer.allocUnsafeSlow(length)
    const size = (length + 7) & ~7
    let slab = this.#current
    if (slab === undefined || slab.used + size > slab.bytes.length) slab = this.#newSlab(size)
    const start = slab.used
    slab.used = start + size
    this.#pending += size
    const out = slab.bytes.subarray(start, start + length)
    this.#last = out
    return out
  }

  /**
   * The envelope to hold for `obj` expiring at `expiresAt` (ms since the epoch, `undefined` = never),
   * cut from the arena: `encoded` (its envelope from another layer) restamped rather than encoded
   * again, else `obj` encoded. @throws SerializationError (naming `where`) for an object that cannot be stored.
   */
  envelope(obj: object, expiresAt: number | undefined, encoded: Uint8Array | undefined, where: string): Buffer {
    return (
      (encoded !== undefined ? restampRecord(encoded, expiresAt, this.alloc) : undefined) ?? encodeRecord(obj, expiresAt, where, this.alloc)
    )
  }

  /**
   * Notes that `record` is held by the store (just stored): its place in a slab is live. Bytes not cut
   * from a slab held here (a slab dropped meanwhile, or foreign bytes) are copied into one first.
   * Returns what the record costs beyond what `sizeOf` counts: {@link OWN_BUFFER_OVERHEAD} for a buffer of its own.
   */
  hold(record: ArenaRecord): number {
    const bytes = record.bytes
    if (bytes === undefined) return 0
    if (bytes.length > this.#largest) return OWN_BUFFER_OVERHEAD
    let slab = bytes === this.#last ? this.#current : this.#slabOf(bytes.buffer)
    if (slab === undefined) {
      const copy = this.alloc(bytes.length)
      copy.set(bytes)
      record.bytes = copy
      slab = this.#current as Slab
    }
    this.#place(record, slab, (bytes.length + 7) & ~7)
    return 0
  }

  /** Notes that `record` left the store (lru-cache's dispose): its place in a slab is free. */
  release(record: ArenaRecord): void {
    const slab = record.slab
    if (slab === undefined || this.#clearing) return
    record.slab = undefined
    const size = record.held
    slab.live -= size
    this.#liveBytes -= size
    if (slab.live === 0 && slab !== this.#current) this.#drop(slab)
  }

  /**
   * Forgets every record at once: `dropAll` (the store dropping every record) runs without the arena
   * noting each one leave. Every slab goes but the current one, whose free tail is used next (bytes
   * are never written twice, so copies handed out before keep theirs).
   */
  clear(dropAll: () => void): void {
    this.#clearing = true
    try {
      dropAll()
    } finally {
      this.#clearing = false
    }
    const current = this.#current
    this.#slabs = current === undefined ? [] : [current]
    this.#liveBytes = 0
    this.#floor = 0
    this.#slabBytes = current === undefined ? 0 : current.bytes.length
    if (current !== undefined) current.live = 0
    this.#rethreshold()
  }

  /**
   * When slabs waste more than an eighth of their bytes (and more than after the last compaction),
   * moves the records held in the sparsest slabs (found among `records`, every record the store
   * holds) to the newest until the slabs would waste a sixteenth, and drops the slabs they left. Rare:
   * records leaving in the order they came empty whole slabs; it takes a hot few outliving their
   * neighbours. Records' `bytes` change; copies handed out before keep the old bytes.
   */
  compact(records: { values(): Iterable<ArenaRecord> }): void {
    const waste = this.#slabBytes - this.#liveBytes
    if (waste <= this.#compactAbove || this.#pending > 0) return
    const current = this.#current
    const sparse = this.#slabs.filter((s) => s !== current).sort((a, b) => a.live / a.bytes.length - b.live / b.bytes.length)
    let left = waste
    const target = this.#slabBytes / 16
    for (const slab of sparse) {
      if (left <= target) break
      slab.moving = true
      left -= slab.bytes.length - slab.live
    }
    if (left < waste) {
      for (const record of records.values()) {
        const slab = record.slab
        if (slab?.moving) this.#move(record, slab)
      }
      for (const slab of sparse) {
        if (!slab.moving) break
        slab.moving = false
        if (slab.live === 0) this.#drop(slab)
      }
    }
    this.#floor = this.waste
    this.#rethreshold()
  }

  /** Sets the waste past which {@link compact} moves records: an eighth of the slabs (and two of the largest) over the last compaction's. */
  #rethreshold(): void {
    const waste = this.waste
    if (waste < this.#floor) this.#floor = waste
    const allowed = this.#slabBytes / 8 + 2 * this.#maxSlab
    this.#compactAbove = Math.max(allowed, this.#floor + allowed / 2)
  }

  /** Moves `record` out of `slab` into the current slab. */
  #move(record: ArenaRecord, slab: Slab): void {
    const bytes = record.bytes as Buffer
    const size = record.held
    slab.live -= size
    this.#liveBytes -= size
    const copy = this.alloc(bytes.length)
    copy.set(bytes)
    record.bytes = copy
    this.#place(record, this.#current as Slab, size)
  }

  /** Notes `record` held in `slab` (its bytes just cut, or cut during this write). */
  #place(record: ArenaRecord, slab: Slab, size: number): void {
    record.slab = slab
    record.held = size
    slab.live += size
    this.#liveBytes += size
    this.#pending -= size
  }

  /** Starts a slab for a record of `length` bytes (rounded up to 8). */
  #newSlab(length: number): Slab {
    // The previous slab stays, even without a held record yet: a batch of puts cuts every record
    // before it holds any. One that never holds any is dropped by the next compaction.
    const previous = this.#current
    let size = previous === undefined ? FIRST_SLAB : Math.min(2 * previous.bytes.length, this.#maxSlab)
    while (size < 2 * length) size *= 2
    const slab = new Slab(Buffer.allocUnsafeSlow(size))
    this.#slabs.push(slab)
    this.#slabBytes += size
    this.#current = slab
    this.#rethreshold()
    return slab
  }

  /** The slab held here whose memory is `buffer`, newest first (a write holds what it cut last), `undefined` when none. */
  #slabOf(buffer: ArrayBufferLike): Slab | undefined {
    const slabs = this.#slabs
    for (let i = slabs.length - 1; i >= 0; i--) if ((slabs[i] as Slab).buffer === buffer) return slabs[i]
    return undefined
  }

  #drop(slab: Slab): void {
    const at = this.#slabs.lastIndexOf(slab)
    if (at < 0) return
    this.#slabs.splice(at, 1)
    this.#slabBytes -= slab.bytes.length
    if (slab === this.#current) {
      this.#current = undefined
      this.#last = undefined
    }
    this.#rethreshold()
  }
}
