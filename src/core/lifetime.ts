import { InvalidOptionError, StockpyleError, show } from './errors.js'
import { MAX_LIFETIME_SECONDS } from './option-values.js'

/**
 * How long a cache layer keeps an object: a number of seconds (> 0), an absolute `Date` (every object
 * expires at that instant), or a callback receiving the object and returning seconds (relative), a
 * `Date` (absolute) or `undefined` (never expires). A callback result of `<= 0` seconds or a past
 * `Date`, and a `Date` option once it has passed, mean the object is not cached at all: the put removes
 * the older copy as a delete does (a tombstone included). Seconds are at most
 * {@link MAX_LIFETIME_SECONDS} (10^12), from the option or the callback; "never" is `undefined`.
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
  if (typeof lifetime === 'number' && lifetime > 0 && lifetime <= MAX_LIFETIME_SECONDS) return lifetime
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
    `${store}: option \`lifetime\` must be a number of seconds > 0 and at most 10^12, a Date in the future or a function, got ${show(lifetime)}`,
  )
}

/**
 * The absolute expiry (ms since the epoch) of `obj` under `lifetime`, capped at `cap`.
 * Returns `undefined` for never, and `null` when the object must not be stored (already expired).
 * `where` (`memory store put`) and `model` name the call in errors.
 * @throws InvalidOptionError when a `lifetime` callback returns something else than seconds (a number
 *   at most 10^12), a valid `Date` or `undefined`; StockpyleError (its `cause` kept) when it throws.
 */
export function expiryOf(
  lifetime: Lifetime | undefined,
  obj: object,
  now: number,
  cap: number | undefined,
  jitter: number,
  where: string,
  model: string,
): number | undefined | null {
  let at: number | undefined
  if (lifetime === undefined) at = undefined
  else if (typeof lifetime === 'number') at = now + spread(lifetime * 1000, jitter)
  else if (lifetime instanceof Date) at = lifetime.getTime()
  else {
    const result = callLifetime(lifetime, obj, where, model)
    if (result === undefined) at = undefined
    else if (result instanceof Date && !Number.isNaN(result.getTime())) at = result.getTime()
    else if (typeof result === 'number' && result <= MAX_LIFETIME_SECONDS && result > Number.NEGATIVE_INFINITY) {
      at = now + spread(result * 1000, jitter)
    } else {
      throw new InvalidOptionError(
        `${where} of model \`${model}\`: the \`lifetime\` callback returned ${show(result)}: expected seconds (at most 10^12), a valid Date, or undefined for never; nothing was written`,
      )
    }
  }
  if (cap !== undefined && (at === undefined || cap < at)) at = cap
  if (at !== undefined && at <= now) return null
  return at
}

/** `ms` lengthened by up to `jitter` of itself, at random: jitter never makes a lifetime end early. */
function spread(ms: number, jitter: number): number {
  return jitter > 0 && ms > 0 ? ms + Math.floor(Math.random() * jitter * ms) : ms
}

function callLifetime(lifetime: (obj: object) => unknown, obj: object, where: string, model: string): unknown {
  try {
    return lifetime(obj)
  } catch (err) {
    throw new StockpyleError(
      `${where} of model \`${model}\`: the \`lifetime\` callback threw: ${err instanceof Error ? err.message : show(err)}; nothing was written`,
      { cause: err },
    )
  }
}
