/**
 * Settles like `promise`, or rejects with `error()` once `ms` milliseconds pass first. The timer is
 * always cleared; `promise` itself is left to finish (a late result is ignored).
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, error: () => Error): Promise<T> {
  // One promise and one timer per call (no race, no finally): this runs on every layer call.
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(error()), ms)
    promise.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (err: unknown) => {
        clearTimeout(timer)
        reject(err)
      },
    )
  })
}
