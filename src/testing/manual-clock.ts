import { type Clock, InvalidArgumentError, InvalidOptionError } from '../index.js'
import { shown } from './shown.js'

/** A clock that moves only when told to, for expiry tests that never sleep. */
export class ManualClock implements Clock {
  #now: number

  /**
   * @param start initial time in ms since the epoch; default: the real current time.
   * @throws InvalidOptionError when `start` is not a finite number.
   */
  constructor(start: number = Date.now()) {
    if (typeof start !== 'number' || !Number.isFinite(start)) {
      throw new InvalidOptionError(`ManualClock: start must be a finite number of ms since the epoch, got ${shown(start)}`)
    }
    this.#now = start
  }

  /** The current time in ms since the epoch. */
  now(): number {
    return this.#now
  }

  /**
   * Moves the clock forward by `ms` milliseconds (a negative `ms` sets it back, as a system clock may be).
   * @throws InvalidArgumentError when `ms` is not a finite number (the time stays as it was).
   */
  advance(ms: number): void {
    const next = typeof ms === 'number' ? this.#now + ms : Number.NaN
    if (!Number.isFinite(next)) {
      throw new InvalidArgumentError(`ManualClock.advance: ms must be a finite number, got ${shown(ms)}`)
    }
    this.#now = next
  }
}
