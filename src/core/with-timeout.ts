/**
 * Settles like `promise`, or rejects with `error()` once `ms` milliseconds pass first. The timer is
 * always cleared; `promise` itself is left to finish (a late result is ignored).
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(error()), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}
