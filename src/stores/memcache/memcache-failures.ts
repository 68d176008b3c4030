import { StoreUnavailableError, ValueTooLargeError } from '../../core/errors.js'
import { PartialFailureError } from '../../core/partial-failure.js'

/** A server of the pool that failed its part of a call, with the error. */
export interface ServerFailure {
  readonly node: { readonly address: string }
  readonly error: Error
}

/**
 * The PartialFailureError of a call of backend `name` whose `failures` servers failed: the positions
 * of `keys` they own (by `serverFor`, given each key and its position), with the other servers' `results`.
 */
export function partialFailure(
  name: string,
  operation: string,
  keys: readonly string[],
  failures: readonly ServerFailure[],
  results: readonly unknown[] | undefined,
  serverFor: (key: string, position: number) => string,
): PartialFailureError {
  const down = new Set(failures.map((f) => f.node.address))
  const failed: number[] = []
  keys.forEach((key, i) => {
    if (down.has(serverFor(key, i))) failed.push(i)
  })
  const errors = failures.map((f) => f.error)
  return new PartialFailureError(
    `${name} ${operation}: ${failed.length} of ${keys.length} key(s) on failed server(s) ${[...down].join(', ')}: ${errors.map((e) => e.message).join('; ')}`,
    { failed, results, nodes: [...down], cause: errors.length === 1 ? errors[0] : new AggregateError(errors, `${operation} failures`) },
  )
}

/**
 * The error a call of backend `name` rejects with: the one server's error, or one naming every failed
 * server — a `ValueTooLargeError` when every server refused a value as too large (the caller's value,
 * not an unavailable pool), else a `StoreUnavailableError`.
 */
export function combinedFailure(name: string, operation: string, failures: readonly Error[], involved: number): Error {
  if (failures.length === 1) return failures[0] as Error
  const Kind = failures.every((f) => f instanceof ValueTooLargeError) ? ValueTooLargeError : StoreUnavailableError
  return new Kind(
    `${name} ${operation} failed on ${failures.length} of ${involved} servers: ${failures.map((f) => f.message).join('; ')}`,
    { cause: new AggregateError(failures, `${operation} failures`) },
  )
}

/**
 * Throws when a server failed its part of a call of backend `name` (`settled[i]` is the part of
 * `nodes[i]`): a PartialFailureError naming the positions of `keys` on the failed servers (by
 * `serverFor`) when every failure is an unavailable server of a `pool` of several, else the
 * {@link combinedFailure}. Returns when none failed.
 */
export function throwFailures(
  name: string,
  operation: string,
  settled: readonly PromiseSettledResult<unknown>[],
  nodes: readonly ServerFailure['node'][],
  keys: readonly string[],
  pool: boolean,
  serverFor: (key: string, position: number) => string,
  results?: readonly unknown[],
): void {
  const failures: ServerFailure[] = []
  settled.forEach((result, i) => {
    if (result.status === 'rejected') failures.push({ node: nodes[i] as ServerFailure['node'], error: result.reason as Error })
  })
  if (failures.length === 0) return
  if (pool && failures.every((f) => f.error instanceof StoreUnavailableError)) {
    throw partialFailure(name, operation, keys, failures, results, serverFor)
  }
  throw combinedFailure(
    name,
    operation,
    failures.map((f) => f.error),
    settled.length,
  )
}
