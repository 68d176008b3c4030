import { StoreUnavailableError } from '../../core/errors.js'
import { withTimeout } from '../../core/with-timeout.js'
import type { HeldForMaster } from './held-for-master.js'
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
  /** Parts sent to the master, ever: a part's number is its place in the order they were sent. */
  sent: number
  /** The highest number of a part the master completed in time (0: none yet). */
  answeredUpTo: number
}

/**
 * The health of each master of a Redis Cluster: a per-master deadline on every call and a breaker that
 * opens on the first failure — the master's part of later calls fails at once for `retryDelay` ms,
 * then one call probes it (the others still skip it until the probe settles). A silent or dead master
 * thus costs one caller the timeout per `retryDelay`, and the other masters keep answering. A
 * redirection (`MOVED`, `ASK`, `TRYAGAIN`: a reshard moved a slot) is an answer from a live master,
 * never a reason to skip it; the store resends redirected commands (see `NodePipeline`), so one
 * reaches here only when ioredis gave up following it. Nor is a late part of a master that answers: a
 * part that times out opens the breaker only when the master gave no sign of life since the part was
 * sent — its connection still awaits replies (see {@link held}) and no part sent after this one was
 * completed. A master has one connection and answers in order, so a later part's answer means this
 * part's commands were answered too, and the part waits elsewhere; an answer to an earlier part proves
 * nothing (the master may have frozen right after it). A part held by ioredis for a redirection
 * (`TRYAGAIN` every 100 ms while a migration splits its slot's keys, or the slot's new master late)
 * thus fails alone, and the master's other slots keep answering. A part that sends to its master
 * again (a command resent after a redirection, a script sent whole after `NOSCRIPT`) counts from its
 * first send: should the master freeze after answering that and a later part, this part calls it
 * live, and the next part to time out opens the breaker.
 */
export class ClusterNodes {
  readonly #owner: string
  readonly #timeout: number
  readonly #retryDelay: number
  readonly #health = new Map<string, Health>()

  /** Called when a master's part failed (the backend refreshes its slot map: the master may be gone or back). */
  onFailure: () => void = () => {}

  /** What the client knows of a master's connection, for the message of a call that got no answer (may throw: it goes without). */
  describe: (node: string) => string = () => ''

  /**
   * What the client holds for a master whose part is late: whether it answered everything it was sent
   * (the part's commands are then held by the client, e.g. for a redirection) and how many commands
   * the whole client, any master's, holds to retry after `TRYAGAIN`. `undefined` (or a throw) when
   * unknown: the master then counts as silent unless a part sent after the late one was completed.
   */
  held: (node: string) => HeldForMaster | undefined = () => undefined

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
    const health = this.#healthOf(node)
    const now = performance.now()
    if (health.retryAt > 0 && (health.retryAt > now || health.probing)) {
      return new StoreUnavailableError(
        `${this.#owner} store ${operation} on master ${node} failed without trying: it failed (${health.lastError?.message}) and is ${health.probing ? 'being probed' : `retried in ${Math.ceil(health.retryAt - now)} ms`}`,
        { cause: health.lastError },
      )
    }
    const probe = health.retryAt > 0
    if (probe) health.probing = true
    // parts start in the order their commands are written to the master's connection
    const order = ++health.sent
    /** The part timed out on a master that answers: it fails, the master is not skipped. */
    let live = false
    try {
      await withTimeout(call(), this.#timeout, () => {
        const late = this.#late(operation, node, health.answeredUpTo > order)
        live = late.live
        return late.error
      })
      health.retryAt = 0
      health.lastError = undefined
      if (order > health.answeredUpTo) health.answeredUpTo = order
      return undefined
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err))
      if (live || isRedirection(error)) {
        // an answer from a live master to a slot map out of date (a reshard), or a late part of a master
        // that answers (held for a redirection): its part failed, not the master
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

  #healthOf(node: string): Health {
    let health = this.#health.get(node)
    if (health === undefined) {
      health = { retryAt: 0, probing: false, lastError: undefined, sent: 0, answeredUpTo: 0 }
      this.#health.set(node, health)
    }
    return health
  }

  /**
   * The error of a part that got no result within the timeout, and whether its master answers: a part
   * sent to it after this one was completed (`answeredLater`), or the client awaits nothing from it.
   */
  #late(operation: string, node: string, answeredLater: boolean): { error: StoreUnavailableError; live: boolean } {
    let held: HeldForMaster | undefined
    let state = ''
    try {
      held = this.held(node)
      state = this.describe(node)
    } catch {
      // ioredis internals changed: the master counts as silent (as before they were read), the message goes without
    }
    const detail = state === '' ? '' : ` (${state})`
    const part = `${this.#owner} store ${operation} on master ${node}`
    if (!answeredLater && held?.idle !== true) {
      return { error: new StoreUnavailableError(`${part}: no answer within ${this.#timeout} ms${detail}`), live: false }
    }
    const why =
      held !== undefined && held.retrying > 0
        ? `, held for a redirection (the client holds ${held.retrying} command(s), of any master, to retry after TRYAGAIN: a slot being migrated, its keys split between two masters, answers so to a multi-key command until the migration ends)`
        : ''
    return {
      error: new StoreUnavailableError(
        `${part}, which answers: the part was not done after ${this.#timeout} ms${why}; the master is not skipped${detail}`,
      ),
      live: true,
    }
  }
}
