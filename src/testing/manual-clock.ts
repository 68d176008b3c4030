import type { Clock } from '../index.js'

/** A clock that moves only when told to, for expiry tests that never sleep. */
export class ManualClock implements Clock {
  #now: number

  /** @param start initial time in ms since the epoch; default: the real current time. */
  constructor(start: number = Date.now()) {
    this.#now = start
  }

  /** The current time in ms since the epoch. */
  now(): number {
    return this.#now
  }

  /** Moves the clock forward by `ms` milliseconds. */
  advance(ms: number): void {
    this.#now += ms
  }
}
