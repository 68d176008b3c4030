import { messageOf } from './unavailable-unless-ours.js'

/**
 * Where the errors of `owner` go when its caller gave it no `onError` callback, so that none fails
 * silently: the first one is one process warning `code` — "<owner>: <its message> (…)", the owner not
 * repeated when the message starts with it — saying that later ones are dropped until `onError` is
 * given; later ones are dropped (a server that stays down, or a listener failing on every message,
 * would otherwise flood stderr). The returned function never throws, and after the first error costs
 * one boolean check.
 */
export function warnFirstError(owner: string, code: string): (err: unknown) => void {
  return warnOnce(
    code,
    (text) =>
      `${text.startsWith(owner) ? text : `${owner}: ${text}`} (no \`onError\` option was given: only this first error is reported, later ones are dropped; pass \`onError\` to receive every one)`,
  )
}

/**
 * A reporter that turns the first error it gets into one process warning `code` (type
 * `StockpyleWarning`), its text made by `say` from the error's message, and drops the later ones. It
 * never throws.
 */
export function warnOnce(code: string, say: (message: string) => string): (err: unknown) => void {
  let warned = false
  return (err) => {
    if (warned) return
    warned = true
    try {
      process.emitWarning(say(messageOf(err)), { type: 'StockpyleWarning', code })
    } catch {}
  }
}
