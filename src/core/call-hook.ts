import { warnOnce } from './warn-first-error.js'

/**
 * Ends what a caller's callback returned in a handler: when it is a promise (an `async` callback, which
 * a `void` return type accepts) its rejection goes to `failed` instead of becoming an unhandled
 * rejection, which would end a Node process under the default `--unhandled-rejections=throw`. Any
 * other value is ignored. A `failed` that throws is ignored too. Costs one property check for a value
 * that is not a promise, and allocates nothing then.
 *
 * A `then` getter that throws, or a `then` method that throws at once, throws out of here: call it
 * where a throwing callback is already caught (as {@link callHook} does).
 */
export function settleHook(result: unknown, failed: (err: unknown) => void): void {
  if (typeof (result as PromiseLike<unknown> | null | undefined)?.then !== 'function') return
  ;(result as PromiseLike<unknown>).then(undefined, (err: unknown) => {
    try {
      failed(err)
    } catch {
      // a failing reporter must not leave a rejection either
    }
  })
}

/**
 * Calls a caller's callback `hook(arg)` without ever throwing or leaving a rejection: what it throws,
 * or what the promise it returns rejects with, goes to `failed` (see {@link settleHook}). `hook` is
 * called without a `this`.
 */
export function callHook<A>(hook: (arg: A) => unknown, arg: A, failed: (err: unknown) => void): void {
  try {
    settleHook(hook(arg), failed)
  } catch (err) {
    try {
      failed(err)
    } catch {
      // a failing reporter must not break the caller either
    }
  }
}

/**
 * What to do when the callback option `option` of `owner` throws or rejects: one process warning
 * `STOCKPYLE_CALLBACK` ("<owner>: its `<option>` callback threw …: <its message>") the first time;
 * later failures of the same callback are dropped (one that fails on every call would flood stderr).
 * The returned function never throws.
 */
export function warnOnceWhenHookFails(owner: string, option: string): (err: unknown) => void {
  return warnOnce(
    'STOCKPYLE_CALLBACK',
    (message) => `${owner}: its \`${option}\` callback threw or rejected (warned once; what it fails with later is dropped): ${message}`,
  )
}
