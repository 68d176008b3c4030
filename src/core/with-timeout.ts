import { type DeadlineQueue, deadlineQueue } from './deadline-queue.js'
import { MAX_TIMER_MS } from './option-values.js'

/**
 * Settles like `promise`, or rejects with `error()` once `ms` milliseconds pass first. The deadline is
 * always cancelled; `promise` itself is left to finish (a late result is ignored). Deadlines of one
 * duration share one timer (see {@link DeadlineQueue}): this runs on every call to a server.
 *
 * A reply that arrived in time wins even when the event loop was blocked past the deadline (a long
 * synchronous task or GC pause of the host): Node runs due timers before the I/O that came in
 * meanwhile, so the timeout takes effect one turn later (`setImmediate`, after that I/O).
 * `unref`: the deadline does not keep the process alive. An `ms` above {@link MAX_TIMER_MS} waits that long
 * (Node would fire a longer timer after 1 ms).
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, error: () => Error, unref = false): Promise<T> {
  // One promise and one deadline per call (no race, no finally).
  const queue = deadlineQueue(Math.min(ms, MAX_TIMER_MS))
  return new Promise<T>((resolve, reject) => {
    let settled = false
    const deadline = queue.add(() => {
      setImmediate(() => {
        if (!settled) reject(error())
      })
    }, !unref)
    promise.then(
      (value) => {
        settled = true
        queue.cancel(deadline)
        resolve(value)
      },
      (err: unknown) => {
        settled = true
        queue.cancel(deadline)
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
