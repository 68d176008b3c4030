import { callHook, warnOnceWhenHookFails } from '../../core/call-hook.js'
import { StoreUnavailableError } from '../../core/errors.js'
import { messageOf } from '../../core/unavailable-unless-ours.js'
import { MAX_PENDING_REPAIRS, type MemcacheNodeClient, type RepairsLeft } from './memcache-node-client.js'

/**
 * Where a memcached pool reports the failures no call rejects with: to `onError` when given, else as
 * process warnings.
 */
export class MemcacheReports {
  readonly #owner: string
  readonly #onError: ((error: StoreUnavailableError) => void) | undefined
  /** Where what `onError` throws (or rejects with) goes: one process warning. */
  readonly #onErrorFailed: (err: unknown) => void

  /** @param owner the backend's name, first in every message. */
  constructor(owner: string, onError: ((error: StoreUnavailableError) => void) | undefined) {
    this.#owner = owner
    this.#onError = onError
    this.#onErrorFailed = warnOnceWhenHookFails(owner, 'onError')
  }

  /** A server failed the share of a read that answered from the others: warned once per outage by default (`STOCKPYLE_MEMCACHE_SERVER_DOWN`). */
  serverFailed(node: MemcacheNodeClient, error: StoreUnavailableError): void {
    if (this.#onError !== undefined) {
      callHook(this.#onError, error, this.#onErrorFailed)
      return
    }
    if (node.takeOutageReport()) {
      process.emitWarning(`${error.message}; its keys read as misses until it answers again (pass \`onError\` to handle this yourself)`, {
        type: 'StockpyleWarning',
        code: 'STOCKPYLE_MEMCACHE_SERVER_DOWN',
      })
    }
  }

  /** `close()` left repairs undone on a server (see `MemcacheNodeClient.repairBeforeClose`): warned by default (`STOCKPYLE_MEMCACHE_REPAIRS_LEFT`). */
  repairsLeft(node: MemcacheNodeClient, left: RepairsLeft): void {
    const keys = `${left.keys} ${left.keys === 1 ? 'key' : 'keys'}`
    const what = left.flush
      ? `the flush_all it needed (more than ${MAX_PENDING_REPAIRS} writes to it had failed)${left.keys > 0 ? ` and ${keys}` : ''}`
      : keys
    const why = left.error === undefined ? 'written to while the attempt ran' : messageOf(left.error)
    const error = new StoreUnavailableError(
      `${this.#owner}: close() left ${what} unrepaired on memcache server ${node.address} (${why}): writes to them had failed, so the server may serve their old values until their lifetime ends`,
      left.error === undefined ? {} : { cause: left.error },
    )
    if (this.#onError !== undefined) callHook(this.#onError, error, this.#onErrorFailed)
    else process.emitWarning(error.message, { type: 'StockpyleWarning', code: 'STOCKPYLE_MEMCACHE_REPAIRS_LEFT' })
  }
}
