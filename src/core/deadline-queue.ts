/** One deadline of a {@link DeadlineQueue}: `fire` is cleared once it fired or was cancelled. */
export class Deadline {
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
 * deadline here is one object pushed onto an array, and cancelling it one store.
 *
 * The timer keeps the process alive while a deadline set with `ref` is pending, as a referenced
 * timer of its own would. Cancelled deadlines at the head are dropped as deadlines are added, so a
 * queue whose calls settle in turn stays one or two entries long.
 */
export class DeadlineQueue {
  readonly #ms: number
  #items: Deadline[] = []
  #head = 0
  #refs = 0
  #timer: NodeJS.Timeout | undefined
  /** The deadline the timer was armed for. */
  #armedFor: Deadline | undefined

  /** @param ms the duration of every deadline of this queue, ms (1 to 2^31 − 1). */
  constructor(ms: number) {
    this.#ms = ms
  }

  /**
   * Sets a deadline `ms` from now that calls `fire` (once, from a timer; it must not throw) unless
   * {@link cancel}led first. `ref`: the deadline keeps the process alive while pending.
   */
  add(fire: () => void, ref: boolean): Deadline {
    const items = this.#items
    while (this.#head < items.length && (items[this.#head] as Deadline).fire === undefined) this.#head++
    if (this.#head === items.length) {
      items.length = 0
      this.#head = 0
    }
    const deadline = new Deadline(performance.now() + this.#ms, fire, ref)
    items.push(deadline)
    if (ref && this.#refs++ === 0) this.#timer?.ref()
    if (this.#timer === undefined) this.#arm(deadline, this.#ms)
    return deadline
  }

  /** Cancels `deadline` if it has not fired yet. */
  cancel(deadline: Deadline): void {
    if (deadline.fire === undefined) return
    deadline.fire = undefined
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
    const items = this.#items
    // The deadline the timer was armed for is due, even if the clock reads a moment less.
    const armed = this.#armedFor as Deadline
    this.#armedFor = undefined
    const now = armed.fire === undefined ? performance.now() : Math.max(performance.now(), armed.at)
    while (this.#head < items.length) {
      const deadline = items[this.#head] as Deadline
      const fire = deadline.fire
      if (fire !== undefined && deadline.at > now) break
      this.#head++
      if (fire === undefined) continue
      this.cancel(deadline)
      fire()
    }
    if (this.#head === items.length) {
      items.length = 0
      this.#head = 0
      return
    }
    if (this.#head > 1024 && this.#head * 2 > items.length) {
      items.copyWithin(0, this.#head)
      items.length -= this.#head
      this.#head = 0
    }
    const next = items[this.#head] as Deadline
    if (this.#timer === undefined) this.#arm(next, Math.max(1, next.at - now))
  }
}

const queues = new Map<number, DeadlineQueue>()

/** The shared queue of deadlines of `ms` milliseconds (an integer of 1 to 2^31 − 1). */
export function deadlineQueue(ms: number): DeadlineQueue {
  let queue = queues.get(ms)
  if (queue === undefined) queues.set(ms, (queue = new DeadlineQueue(ms)))
  return queue
}
