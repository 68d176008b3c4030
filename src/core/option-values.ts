import { InvalidOptionError, show } from './errors.js'
import { checkOptionNames } from './options.js'

/**
 * The longest delay Node's timers take, in ms (2^31 − 1, about 24.8 days). A longer one fires after
 * 1 ms, so an option meant as "very long" would act as "at once": such values are refused.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * The longest lifetime, in seconds, a store takes (10^12 s, about 31,700 years): any longer one is
 * refused, from an option or from a `lifetime` callback. Every expiry then stays a valid `Date` (also
 * with `lifetimeJitter` and `grace`) and fits Redis' `PX` and the envelope. "Never" is `undefined`.
 */
export const MAX_LIFETIME_SECONDS = 1e12

/**
 * A duration option in ms: `fallback` when `undefined`, else a number > 0 (or >= 0 with `zeroAllowed`)
 * that Node's timers can take (at most {@link MAX_TIMER_MS}).
 * @param owner the store, chain or bus named in the message.
 * @throws InvalidOptionError naming the option.
 */
export function msOption(owner: string, option: string, value: unknown, fallback: number, zeroAllowed = false): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !(zeroAllowed ? value >= 0 : value > 0) || !(value <= MAX_TIMER_MS)) {
    throw new InvalidOptionError(
      `${owner}: option \`${option}\` must be a number of ms ${zeroAllowed ? '>= 0' : '> 0'} and < 2^31, got ${show(value)}`,
    )
  }
  return value
}

/**
 * A duration option in seconds: `fallback` when `undefined`, else a number >= 0 (> 0 when
 * `zeroAllowed` is false) and at most {@link MAX_LIFETIME_SECONDS}.
 * @throws InvalidOptionError naming the option.
 */
export function secondsOption(owner: string, option: string, value: unknown, fallback: number, zeroAllowed = true): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !(zeroAllowed ? value >= 0 : value > 0) || !(value <= MAX_LIFETIME_SECONDS)) {
    throw new InvalidOptionError(
      `${owner}: option \`${option}\` must be a number of seconds ${zeroAllowed ? '>= 0' : '> 0'} and at most 10^12, got ${show(value)}`,
    )
  }
  return value
}

/**
 * The `name` option: `fallback` when `undefined`, else a non-empty string.
 * @throws InvalidOptionError naming the option.
 */
export function nameOption(owner: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback
  if (typeof value !== 'string' || value === '') {
    throw new InvalidOptionError(`${owner}: option \`name\` must be a non-empty string, got ${show(value)}`)
  }
  return value
}

/** @throws InvalidOptionError unless `value` is undefined or a boolean. */
export function booleanOption(owner: string, option: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw new InvalidOptionError(`${owner}: option \`${option}\` must be a boolean, got ${show(value)}`)
  return value
}

/**
 * An option whose value is an object of named settings (`breaker`, `leases`): refuses a non-object
 * and a misspelt name, with the same hints as top-level options.
 * @throws InvalidOptionError naming the option and the unknown setting.
 */
export function checkNestedNames(owner: string, option: string, value: unknown, known: readonly string[]): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidOptionError(`${owner}: option \`${option}\` must be an object of ${known.join(', ')}, got ${show(value)}`)
  }
  checkOptionNames(`${owner}: option \`${option}\``, value, known)
}
