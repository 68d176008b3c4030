import { InvalidOptionError, show } from './errors.js'

/**
 * How long a cache layer keeps an object: a number of seconds (> 0), an absolute `Date` (every object
 * expires at that instant), or a callback receiving the object and returning seconds (relative), a
 * `Date` (absolute) or `undefined` (never expires). A callback result of `<= 0` seconds or a past
 * `Date`, and a `Date` option once it has passed, mean the object is not cached at all.
 */
export type Lifetime = number | Date | ((obj: object) => number | Date | undefined)

/** A source of the current time in ms since the epoch; injectable so tests control expiry. */
export interface Clock {
  now(): number
}

/** The system clock (`Date.now()`). */
export const systemClock: Clock = { now: () => Date.now() }

/**
 * Validates a `lifetime` option; `now` (ms since the epoch) is the store's clock, against which a `Date`
 * must lie in the future. A `Date` is copied, so changing the caller's object later changes nothing.
 * @throws InvalidOptionError naming the store.
 */
export function checkLifetime(store: string, lifetime: unknown, now: number): Lifetime | undefined {
  if (lifetime === undefined) return undefined
  if (typeof lifetime === 'function') return lifetime as Lifetime
  if (typeof lifetime === 'number' && lifetime > 0 && Number.isFinite(lifetime)) return lifetime
  if (lifetime instanceof Date) {
    const at = lifetime.getTime()
    if (Number.isNaN(at)) throw new InvalidOptionError(`${store}: option \`lifetime\` is an invalid Date`)
    if (at <= now) {
      throw new InvalidOptionError(
        `${store}: option \`lifetime\` is a Date in the past (${lifetime.toISOString()}): nothing would ever be cached`,
      )
    }
    return new Date(at)
  }
  throw new InvalidOptionError(
    `${store}: option \`lifetime\` must be a number of seconds > 0, a Date in the future or a function, got ${show(lifetime)}`,
  )
}

/**
 * The absolute expiry (ms since the epoch) of `obj` under `lifetime`, capped at `cap`.
 * Returns `undefined` for never, and `null` when the object must not be stored (already expired).
 */
export function expiryOf(lifetime: Lifetime | undefined, obj: object, now: number, cap?: number, jitter = 0): number | undefined | null {
  let at: number | undefined
  // Jitter only lengthens a relative lifetime (lifetimes never end early).
  const spread = (ms: number) => (jitter > 0 && ms > 0 ? ms + Math.floor(Math.random() * jitter * ms) : ms)
  if (lifetime === undefined) at = undefined
  else if (typeof lifetime === 'number') at = now + spread(lifetime * 1000)
  else if (lifetime instanceof Date) at = lifetime.getTime()
  else {
    const result = lifetime(obj)
    if (result === undefined) at = undefined
    else if (result instanceof Date) at = result.getTime()
    else if (typeof result === 'number' && !Number.isNaN(result)) at = now + spread(result * 1000)
    else throw new InvalidOptionError(`lifetime callback returned ${show(result)}: expected seconds, a Date or undefined`)
  }
  if (cap !== undefined && (at === undefined || cap < at)) at = cap
  if (at !== undefined && at <= now) return null
  return at
}
