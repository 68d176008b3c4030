import { BenchSetupError } from './bench-setup-error.js'

/**
 * How long a server of the run has to answer its first command (connection included), in ms: a
 * server that accepts the connection but never answers fails the run instead of hanging it.
 */
export const CONNECT_TIMEOUT_MS = 5000

/**
 * `first` (a server's first answer), or a {@link BenchSetupError} `cannot connect to <server>: no
 * answer within 5 s` when it takes longer than {@link CONNECT_TIMEOUT_MS}; the caller closes the
 * connection (the run's clean-up does).
 * @param server what the message names, e.g. `Redis at redis://…@10.0.0.5:6379` (no password in it)
 */
export function answered<T>(first: Promise<T>, server: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new BenchSetupError(`cannot connect to ${server}: no answer within ${CONNECT_TIMEOUT_MS / 1000} s`)),
      CONNECT_TIMEOUT_MS,
    )
    // (the connection being made keeps the process alive until then; a run stopped meanwhile exits)
    timer.unref()
  })
  first.catch(() => {}) // (what fails after the timeout is not the run's error)
  return Promise.race([first, late]).finally(() => clearTimeout(timer))
}

/**
 * `step`, or the signal's reason as soon as `signal` aborts (SIGINT while a server is being reached):
 * the run stops at once, and its clean-up closes what `step` was waiting for.
 */
export function unlessAborted<T>(step: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return step
  step.catch(() => {}) // (what fails once the run stopped is not the run's error)
  let onAbort: (() => void) | undefined
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason)
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
  })
  return Promise.race([step, aborted]).finally(() => signal.removeEventListener('abort', onAbort as () => void))
}
