import type { Store, TransactionCapable, TransactionHandle } from '../contracts/base-store.js'
import type { LayerCalls } from './layer-calls.js'
import type { TransactionScope } from './transaction-scope.js'
import type { WritePath } from './write-path.js'

/** What a chain's transaction needs of the chain. */
export interface TransactionParts {
  readonly calls: LayerCalls
  readonly scope: TransactionScope
  readonly writes: WritePath
}

/**
 * Runs `fn` in one transaction of the chain's authoritative layer (see `ChainedStore.transaction`), as a
 * call of that layer: timed as operation `transaction` (from the call to its COMMIT, `fn` included; the
 * cache updates after COMMIT are timed as the cache layers' own calls), and, when the layer fails it,
 * counted in the layer's `errors` and rejected named after the chain and the layer, as a failed put is.
 *
 * A failure is the layer's when the layer raised it: its BEGIN or COMMIT, or a call on `tx` (what it
 * rejected with, also rethrown by `fn`). A caller error among them (`isCallerError`: a key conflict, a
 * bad value) is named after the chain too but not counted, as a put's is. These pass through unchanged
 * and uncounted: what `fn` threw that no call on `tx` raised (the caller's own error, whatever its
 * class), and what the cache updates after COMMIT rejected with (already counted on their layers under
 * `onCacheError: 'throw'`, or an `afterCommit` callback of the caller's).
 */
export async function runTransaction<R>(parts: TransactionParts, fn: (tx: TransactionHandle) => Promise<R>): Promise<R> {
  const { calls, scope, writes } = parts
  const layer = calls.layers[calls.last] as Store & TransactionCapable
  const start = calls.observer.metered ? performance.now() : 0
  let timed = false
  const stopClock = (): void => {
    if (timed) return
    timed = true
    if (calls.observer.metered) calls.observer.duration(calls.last, 'transaction', performance.now() - start)
  }
  /** What calls on `tx` failed with: the layer's failures, also when `fn` rethrows them. */
  const raised = new Set<unknown>()
  let thrown: { error: unknown } | undefined
  let committed = false
  const started = writes.transactionStarted()
  try {
    const result = await layer.transaction((tx) => {
      tx.afterCommit((w) => {
        committed = true
        stopClock()
        return writes.committed(w, started)
      })
      tx.afterCommitFailed?.((w) => {
        stopClock()
        return writes.commitFailed(w)
      })
      const handle = watched(tx, raised)
      return scope.run(async () => {
        try {
          return await fn(handle)
        } catch (error) {
          thrown = { error }
          throw error
        }
      })
    })
    stopClock()
    return result
  } catch (err) {
    stopClock()
    if (committed) throw err
    if (thrown !== undefined && thrown.error === err && !raised.has(err)) throw err
    // (a caller error the layer raised — a key conflict — is named after the chain as a put's is, not counted)
    throw calls.lastFailed(err, 'transaction')
  } finally {
    writes.transactionEnded(started)
  }
}

/** The calls of a store (see `Store`) whose failures are the layer's when made on a transaction handle. */
const CALLS: ReadonlySet<PropertyKey> = new Set([
  'get',
  'getNow',
  'put',
  'delete',
  'batchGet',
  'batchPut',
  'batchDelete',
  'batchDeleteByKey',
  'batchGetEntries',
  'batchPutEntries',
])

/**
 * `tx` as `fn` gets it: the same handle (its methods are called on `tx` itself, whose `#private` fields a
 * proxy as `this` could not reach), noting in `raised` what its store calls fail with. The promise a call
 * returns is its own, handled as `tx`'s would be: left unhandled while the callback runs (a forgotten
 * `await` still shows), marked handled once `tx` has ended (the transaction rejects with the failure).
 */
function watched(tx: TransactionHandle, raised: Set<unknown>): TransactionHandle {
  // One function per property, made once: `tx.kysely === tx.kysely` holds as on the handle itself.
  const made = new Map<PropertyKey, unknown>()
  return new Proxy(tx, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target)
      // data, and the class (`tx.constructor === SqlTransaction`), as the handle has them
      if (typeof value !== 'function' || property === 'constructor') return value
      const known = made.get(property)
      if (known !== undefined) return known
      const fn = CALLS.has(property) ? watchedCall(target, value as (...args: unknown[]) => unknown, raised) : value.bind(target)
      made.set(property, fn)
      return fn
    },
  })
}

/** A store call of `tx` that notes in `raised` what it fails with (see {@link watched}). */
function watchedCall(target: TransactionHandle, value: (...args: unknown[]) => unknown, raised: Set<unknown>) {
  return (...args: unknown[]): unknown => {
    let result: unknown
    try {
      result = value.apply(target, args)
    } catch (error) {
      raised.add(error)
      throw error
    }
    if (typeof (result as PromiseLike<unknown> | undefined)?.then !== 'function') return result
    const seen: Promise<unknown> = Promise.resolve(result).then(undefined, (error: unknown) => {
      raised.add(error)
      if ((target as { closed?: unknown }).closed === true) seen.catch(() => {})
      throw error
    })
    return seen
  }
}
