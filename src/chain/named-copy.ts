/**
 * Marks an error whose message already names a chain: its value lists the chains that named it, each
 * once (see `LayerCalls.blame`). Shared by every copy of the package, as an error may pass through
 * chains of two copies (an older copy marks it with `true`: named, and no more).
 */
export const BLAMED = Symbol.for('stockpyle.blamed')

/**
 * A copy of `error` whose message is `message`, named by the chains `by` (under {@link BLAMED}). The
 * copy is a native error (made by `Error`, then given `error`'s prototype: its class and `code`), so
 * `structuredClone`, `v8.serialize`, a worker's `postMessage` and an error thrown out of a worker keep
 * its message and stack as they do the layer's error's; it has `error`'s own fields (`cause`, `failed`,
 * an `AggregateError`'s `errors`, …). Its stack is `stack` (the layer error's, read before) with the
 * first line's message replaced by `message`; `undefined` (no stack to read): the copy has none of its own.
 */
export function namedCopy(error: Error, message: string, stack: string | undefined, by: readonly unknown[]): Error {
  const copy = new Error(message)
  Object.setPrototypeOf(copy, Object.getPrototypeOf(error))
  for (const key of Reflect.ownKeys(error)) {
    if (key === BLAMED || key === 'stack') continue
    Object.defineProperty(copy, key, Object.getOwnPropertyDescriptor(error, key) as PropertyDescriptor)
  }
  Object.defineProperty(copy, 'message', { value: message, writable: true, configurable: true, enumerable: false })
  if (typeof stack === 'string') {
    const value = restack(stack, String(error.name), error.message, message)
    Object.defineProperty(copy, 'stack', { value, writable: true, configurable: true, enumerable: false })
  } else {
    // (not the stack `new Error` took here, which would point at this function)
    delete (copy as { stack?: unknown }).stack
  }
  Object.defineProperty(copy, BLAMED, { value: by })
  return copy
}

/**
 * `stack` with the message `before` in its first line made `after`: found by its place, never used as
 * a pattern (a message may hold `$&`, `$'`, `` $` `` or `$$`, which `String.replace` would expand).
 * V8 begins a stack with `name: message`, or the name alone when the message is empty.
 */
function restack(stack: string, name: string, before: string, after: string): string {
  const head = before === '' ? name : `${name}: ${before}`
  if (name !== '' && stack.startsWith(head) && (stack.length === head.length || stack[head.length] === '\n')) {
    return `${name}: ${after}${stack.slice(head.length)}`
  }
  const at = before === '' ? -1 : stack.indexOf(before)
  return at < 0 ? stack : `${stack.slice(0, at)}${after}${stack.slice(at + before.length)}`
}
