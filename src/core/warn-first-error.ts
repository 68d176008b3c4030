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
  let warned = false
  return (err) => {
    if (warned) return
    warned = true
    try {
      const text = messageOf(err)
      process.emitWarning(
        `${text.startsWith(owner) ? text : `${owner}: ${text}`} (no \`onError\` option was given: only this first error is reported, later ones are dropped; pass \`onError\` to receive every one)`,
        { type: 'StockpyleWarning', code },
      )
    } catch {}
  }
}
