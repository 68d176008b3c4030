import { InvalidOptionError, show } from '../core/errors.js'
import { checkOptionNames } from '../core/options.js'

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
export { msOption } from '../core/option-values.js'
export { clientBackstop, withTimeout } from '../core/with-timeout.js'
