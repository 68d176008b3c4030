import { InvalidOptionError, show } from './errors.js'

/**
 * How long a cache layer keeps an object: a number of seconds (> 0), or a callback receiving the
 * object and returning seconds (relative), a `Date` (absolute) or `undefined` (never expires).
 * A callback result of `<= 0` seconds or a past `Date` means the object is not cached at all.
 */
export type Lifetime = number | ((obj: object) => number | Date | undefined)

/** A source of the current time in ms since the epoch; injectable so tests control expiry. */
export interface Clock {
  now(): number
}

/** The system clock (`Date.now()`). */
export const systemClock: Clock = { now: () => Date.now() }

/** Validates a `lifetime` option. @throws InvalidOptionError naming the store. */
export function checkLifetime(store: string, lifetime: unknown): Lifetime | undefined {
  if (lifetime === undefined) return undefined
  if (typeof lifetime === 'function') return lifetime as Lifetime
  if (typeof lifetime === 'number' && lifetime > 0 && Number.isFinite(lifetime)) return lifetime
  throw new InvalidOptionError(`${store}: option \`lifetime\` must be a number of seconds > 0 or a function, got ${show(lifetime)}`)
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
