/** One deadline of a {@link DeadlineQueue}: `fire` is cleared once it fired or was cancelled. */
export class Deadline {
  /** Neighbours in the queue while pending (the queue's list is linked, so a cancel unlinks at once). */
  prev: Deadline | undefined = undefined
  next: Deadline | undefined = undefined

  constructor(
    /** When it falls due, `performance.now()` ms. */
    readonly at: number,
    /** Called once the deadline passes; `undefined` once called or cancelled. */
    public fire: (() => void) | undefined,
    /** Whether it keeps the process alive while pending. */
    readonly ref: boolean,
  ) {}
}

/**
 * The pending deadlines of one duration, in the order they were set (which is the order they fall
 * due), behind one Node timer armed for the oldest. A timer per call (`setTimeout` then
 * `clearTimeout`) costs more: when calls run one after another, Node's list for the duration empties
 * at each `clearTimeout` and is built again, with its priority-queue entry, at the next call; a
 * deadline here is one object linked at the tail, and cancelling it unlinks it (nothing of a settled
 * call stays, whatever the calls before it do).
 *
 * The timer keeps the process alive while a deadline set with `ref` is pending, as a referenced
 * timer of its own would.
 */
export class DeadlineQueue {
  readonly #ms: number
  #head: Deadline | undefined
  #tail: Deadline | undefined
  #refs = 0
  #timer: NodeJS.Timeout | undefined
  /** The deadline the timer was armed for. */
  #armedFor: Deadline | undefined
  #size = 0
  #firing = false

  /** @param ms the duration of every deadline of this queue, ms (0 to 2^31 − 1). */
  constructor(ms: number) {
    this.#ms = ms
  }

  /** How many deadlines are pending. */
  get size(): number {
    return this.#size
  }

  /**
   * Sets a deadline `ms` from now that calls `fire` (once, from a timer; it must not throw) unless
   * {@link cancel}led first. `ref`: the deadline keeps the process alive while pending.
   */
  add(fire: () => void, ref: boolean): Deadline {
    const deadline = new Deadline(performance.now() + this.#ms, fire, ref)
    const tail = this.#tail
    if (tail === undefined) this.#head = deadline
    else {
      tail.next = deadline
      deadline.prev = tail
    }
    this.#tail = deadline
    this.#size++
    if (ref && this.#refs++ === 0) this.#timer?.ref()
    if (this.#timer === undefined && !this.#firing) this.#arm(deadline, this.#ms)
    return deadline
  }

  /** Cancels `deadline` if it has not fired yet. */
  cancel(deadline: Deadline): void {
    if (deadline.fire === undefined) return
    deadline.fire = undefined
    const { prev, next } = deadline
    if (prev === undefined) this.#head = next
    else prev.next = next
    if (next === undefined) this.#tail = prev
    else next.prev = prev
    deadline.prev = deadline.next = undefined
    this.#size--
    if (deadline.ref && --this.#refs === 0) this.#timer?.unref()
  }

  #arm(deadline: Deadline, ms: number): void {
    const timer = setTimeout(() => this.#due(), ms)
    if (this.#refs === 0) timer.unref()
    this.#timer = timer
    this.#armedFor = deadline
  }

  #due(): void {
    this.#timer = undefined
    // The deadline the timer was armed for is due, even if the clock reads a moment less.
    const armed = this.#armedFor as Deadline
    this.#armedFor = undefined
    const now = armed.fire === undefined ? performance.now() : Math.max(performance.now(), armed.at)
    // (a deadline added by a `fire` is linked at the tail; the timer is armed once, for the head)
    this.#firing = true
    try {
      for (let deadline = this.#head; deadline !== undefined && deadline.at <= now; deadline = this.#head) {
        const fire = deadline.fire as () => void
        this.cancel(deadline)
        fire()
      }
    } finally {
      this.#firing = false
    }
    const next = this.#head
    if (next !== undefined) this.#arm(next, Math.max(1, next.at - now))
  }
}

const queues = new Map<number, DeadlineQueue>()

/** The shared queue of deadlines of `ms` milliseconds (0 to 2^31 − 1). */
export function deadlineQueue(ms: number): DeadlineQueue {
  let queue = queues.get(ms)
  if (queue === undefined) queues.set(ms, (queue = new DeadlineQueue(ms)))
  return queue
}
