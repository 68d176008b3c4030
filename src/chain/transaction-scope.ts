import { AsyncLocalStorage } from 'node:async_hooks'
import type { Store } from '../contracts/store.js'
import { UnsupportedOperationError } from '../core/errors.js'

/** The async context of one transaction's callback: the chain running it, and the callback it runs within. */
interface Scope {
  readonly chain: Store
  active: boolean
  readonly outer: Scope | undefined
}

const scopes = new AsyncLocalStorage<Scope>()
/** Transactions in flight in every chain: while there are none, no call looks up its async context. */
let open = 0

/**
 * Where a chain's transactions run their callbacks, and the check that refuses the chain's own calls made
 * inside one: they would not see the transaction's writes, and on SQLite would wait forever for its
 * connection. A chain nested in another (as a layer, or behind a decorator's `inner`) is reached through
 * the outer chain too, so the outer chain refuses its calls inside the inner chain's transaction — before
 * its single-flight, where a read others joined would fail them too.
 */
export class TransactionScope {
  readonly #chain: Store
  /** The chain and every store reachable through its layers (nested chains' `layers`, decorators' `inner`). */
  readonly #reach: Set<Store>

  constructor(chain: Store, layers: readonly Store[]) {
    this.#chain = chain
    this.#reach = new Set([chain])
    const walk = (store: Store): void => {
      if (this.#reach.has(store)) return
      this.#reach.add(store)
      const { layers: nested, inner } = store as { layers?: unknown; inner?: unknown }
      if (Array.isArray(nested)) for (const layer of nested) walk(layer as Store)
      if (typeof inner === 'object' && inner !== null) walk(inner as Store)
    }
    for (const layer of layers) walk(layer)
  }

  /**
   * Runs `fn` as the callback of a transaction of this chain (the calls it makes in its async context are
   * {@link refusal refused}).
   */
  async run<R>(fn: () => Promise<R>): Promise<R> {
    const scope: Scope = { chain: this.#chain, active: true, outer: scopes.getStore() }
    open++
    try {
      return await scopes.run(scope, fn)
    } finally {
      scope.active = false
      open--
    }
  }

  /**
   * The error that refuses `operation` when the caller runs inside the callback of a transaction of this
   * chain or of a chain nested in it; `undefined` otherwise.
   */
  refusal(operation: string): UnsupportedOperationError | undefined {
    if (open === 0) return undefined
    for (let s = scopes.getStore(); s !== undefined; s = s.outer) {
      if (!s.active || !this.#reach.has(s.chain)) continue
      const where = s.chain === this.#chain ? 'its own transaction()' : `a transaction() of ${s.chain.name}, one of its layers`
      return new UnsupportedOperationError(
        `${this.#chain.name} store: ${operation} was called on the chain inside ${where}: use the tx argument instead (the chain would not see the transaction's writes, and on SQLite would wait forever for its connection)`,
      )
    }
    return undefined
  }
}
