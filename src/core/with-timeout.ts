import { MAX_TIMER_MS } from './option-values.js'

/**
 * Settles like `promise`, or rejects with `error()` once `ms` milliseconds pass first. The timer is
 * always cleared; `promise` itself is left to finish (a late result is ignored).
 *
 * A reply that arrived in time wins even when the event loop was blocked past the deadline (a long
 * synchronous task or GC pause of the host): Node runs due timers before the I/O that came in
 * meanwhile, so the timeout takes effect one turn later (`setImmediate`, after that I/O).
 * `unref`: the timer does not keep the process alive. An `ms` above {@link MAX_TIMER_MS} waits that long
 * (Node would fire a longer timer after 1 ms).
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, error: () => Error, unref = false): Promise<T> {
  // One promise and one timer per call (no race, no finally): this runs on every layer call.
  return new Promise<T>((resolve, reject) => {
    let settled = false
    const timer = setTimeout(
      () => {
        setImmediate(() => {
          if (!settled) reject(error())
        })
      },
      Math.min(ms, MAX_TIMER_MS),
    )
    if (unref) timer.unref()
    promise.then(
      (value) => {
        settled = true
        clearTimeout(timer)
        resolve(value)
      },
      (err: unknown) => {
        settled = true
        clearTimeout(timer)
        reject(err)
      },
    )
  })
}

/**
 * The timeout to give a client library behind a deadline of `ms` (ours, {@link withTimeout}): its own
 * timers fire before I/O too, so it must not be the one that decides after a stall; it only frees
 * commands a server never answers.
 */
export function clientBackstop(ms: number): number {
  return Math.min(Math.max(2 * ms, ms + 1000), MAX_TIMER_MS)
}
