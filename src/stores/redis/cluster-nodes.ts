import { StoreUnavailableError } from '../../core/errors.js'
import { withTimeout } from '../../core/with-timeout.js'
import { isRedirection } from './redis-redirects.js'

/** A master that failed its part of a call. */
export interface NodeFailure<G = unknown> {
  /** `host:port` of the master. */
  readonly node: string
  readonly error: Error
  /** Its part as it was sent (grouped by the slot map of the call's start, not of its failure). */
  readonly group: G
}

interface Health {
  /** `performance.now()` before which the master is skipped; 0 while it is healthy. */
  retryAt: number
  /** One call is probing the master after its retry delay: the others keep skipping it. */
  probing: boolean
  lastError: Error | undefined
}

/**
 * The health of each master of a Redis Cluster: a per-master deadline on every call and a breaker that
 * opens on the first failure — the master's part of later calls fails at once for `retryDelay` ms,
 * then one call probes it (the others still skip it until the probe settles). A slow or dead master
 * thus costs one caller the timeout per `retryDelay`, and the other masters keep answering. A
 * redirection (`MOVED`, `ASK`, `TRYAGAIN`: a reshard moved a slot) is an answer from a live master,
 * never a reason to skip it; the store resends redirected commands (see `NodePipeline`), so one
 * reaches here only when ioredis gave up following it.
 */
export class ClusterNodes {
  readonly #owner: string
  readonly #timeout: number
  readonly #retryDelay: number
  readonly #health = new Map<string, Health>()

  /** Called when a master's part failed (the backend refreshes its slot map: the master may be gone or back). */
  onFailure: () => void = () => {}

  /** What the client knows of a master's connection, for the message of a call that got no answer. */
  describe: (node: string) => string = () => ''

  constructor(owner: string, timeout: number, retryDelay: number) {
    this.#owner = owner
    this.#timeout = timeout
    this.#retryDelay = retryDelay
  }

  /** Masters currently skipped (their breaker is open), `host:port`. */
  get down(): string[] {
    return [...this.#health].filter(([, h]) => h.retryAt > 0).map(([node]) => node)
  }

  /** Runs `work` for every master's group in parallel; resolves with the masters that failed (never rejects). */
  async run<G>(operation: string, groups: Map<string, G>, work: (group: G) => Promise<void>): Promise<NodeFailure<G>[]> {
    const failures: NodeFailure<G>[] = []
    await Promise.all(
      [...groups].map(async ([node, group]) => {
        const error = await this.#one(operation, node, () => work(group))
        if (error !== undefined) failures.push({ node, error, group })
      }),
    )
    return failures
  }

  async #one(operation: string, node: string, call: () => Promise<void>): Promise<Error | undefined> {
    let health = this.#health.get(node)
    if (health === undefined) {
      health = { retryAt: 0, probing: false, lastError: undefined }
      this.#health.set(node, health)
    }
    const now = performance.now()
    if (health.retryAt > 0 && (health.retryAt > now || health.probing)) {
      return new StoreUnavailableError(
        `${this.#owner} store ${operation} on master ${node} failed without trying: it failed (${health.lastError?.message}) and is ${health.probing ? 'being probed' : `retried in ${Math.ceil(health.retryAt - now)} ms`}`,
        { cause: health.lastError },
      )
    }
    const probe = health.retryAt > 0
    if (probe) health.probing = true
    try {
      await withTimeout(call(), this.#timeout, () => {
        const state = this.describe(node)
        return new StoreUnavailableError(
          `${this.#owner} store ${operation} on master ${node}: no answer within ${this.#timeout} ms${state === '' ? '' : ` (${state})`}`,
        )
      })
      health.retryAt = 0
      health.lastError = undefined
      return undefined
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err))
      if (isRedirection(error)) {
        // an answer from a live master to a slot map out of date (a reshard): its part failed, not the master
        health.retryAt = 0
        health.lastError = undefined
      } else {
        health.lastError = error
        health.retryAt = performance.now() + this.#retryDelay
      }
      this.onFailure()
      return error instanceof StoreUnavailableError
        ? error
        : new StoreUnavailableError(`${this.#owner} store ${operation} on master ${node} failed: ${error.message}`, { cause: error })
    } finally {
      if (probe) health.probing = false
    }
  }
}
