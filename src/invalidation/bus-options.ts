import { callHook, warnOnceWhenHookFails } from '../core/call-hook.js'
import { InvalidOptionError, show } from '../core/errors.js'
import { checkOptionNames } from '../core/options.js'
import { warnFirstError } from '../core/warn-first-error.js'

/** The code of the process warning for the first error of a bus or watcher that was given no `onError`. */
export const UNREPORTED_ERROR = 'STOCKPYLE_INVALIDATION_ERROR'

/** @throws InvalidOptionError unless `value` is undefined or a function. */
export function callbackOption<F>(owner: string, option: string, value: unknown): F | undefined {
  if (value !== undefined && typeof value !== 'function') {
    throw new InvalidOptionError(`${owner}: option \`${option}\` must be a function, got ${show(value)}`)
  }
  return value as F | undefined
}

/**
 * Where `owner` (a bus or watcher) sends the errors it cannot throw to a caller: to `onError` when
 * given (what that throws, or its promise rejects with, is one process warning `STOCKPYLE_CALLBACK`,
 * later ones dropped); without it, the first error is one process warning
 * `STOCKPYLE_INVALIDATION_ERROR` naming `owner` and the error, and later ones are dropped. The returned
 * function never throws.
 */
export function errorReporter(owner: string, onError: ((error: unknown) => void) | undefined): (err: unknown) => void {
  if (onError === undefined) return warnFirstError(owner, UNREPORTED_ERROR)
  const failed = warnOnceWhenHookFails(owner, 'onError')
  return (err) => callHook(onError, err, failed)
}

/** @throws InvalidOptionError for an unknown option name, with a hint when one is close. */
export function checkKnown(owner: string, options: object, known: readonly string[]): void {
  checkOptionNames(owner, options, known)
}

export { backoff } from '../core/backoff.js'
export { msOption } from '../core/option-values.js'
export { clientBackstop, withTimeout } from '../core/with-timeout.js'
