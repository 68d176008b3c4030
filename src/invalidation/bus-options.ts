import { InvalidOptionError, show } from '../core/errors.js'
import { checkOptionNames } from '../core/options.js'

/**
 * A duration option in ms: `fallback` when undefined, else a finite number ≥ `min`.
 * @throws InvalidOptionError naming the option.
 */
export function msOption(owner: string, option: string, value: unknown, fallback: number, min = 1): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new InvalidOptionError(`${owner}: option \`${option}\` must be a number of ms >= ${min}, got ${show(value)}`)
  }
  return value
}

/** @throws InvalidOptionError unless `value` is undefined or a function. */
export function callbackOption<F>(owner: string, option: string, value: unknown): F | undefined {
  if (value !== undefined && typeof value !== 'function') {
    throw new InvalidOptionError(`${owner}: option \`${option}\` must be a function, got ${show(value)}`)
  }
  return value as F | undefined
}

/** @throws InvalidOptionError for an unknown option name, with a hint when one is close. */
export function checkKnown(owner: string, options: object, known: readonly string[]): void {
  checkOptionNames(owner, options, known)
}

export { backoff } from '../core/backoff.js'
export { clientBackstop, withTimeout } from '../core/with-timeout.js'
