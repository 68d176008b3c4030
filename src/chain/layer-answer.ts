import type { StoreEntry } from '../contracts/base-store.js'
import { StockpyleError, show } from '../core/errors.js'
import type { Model } from '../core/model.js'

/**
 * Checks what layer `layer` answered to a read of `count` lookups of `model`: one slot per lookup, each
 * `undefined` (a miss) or an entry whose `value` is an instance of `model` (a subclass for a
 * polymorphic model). A custom store or decorator that answers otherwise is a failing layer, not a
 * raw TypeError later, nor a wrong object handed to the caller.
 * @throws StockpyleError (`E_STOCKPYLE`) naming the layer and what it answered.
 */
export function checkAnswer(entries: unknown, count: number, model: Model, layer: string): asserts entries is (StoreEntry | undefined)[] {
  if (!Array.isArray(entries) || entries.length !== count) {
    const got = Array.isArray(entries) ? `${entries.length} slot(s)` : show(entries)
    throw new StockpyleError(
      `layer \`${layer}\` answered a read of ${count} lookup(s) with ${got}: a store's batchGetEntries resolves to an array of one slot per lookup, in order`,
    )
  }
  const type = model as unknown as abstract new (...args: never[]) => object
  for (let i = 0; i < count; i++) {
    const e: unknown = entries[i]
    if (e === undefined) continue
    if (typeof e === 'object' && e !== null && (e as { value?: unknown }).value instanceof type) continue
    throw new StockpyleError(
      `layer \`${layer}\` answered lookup ${i} of a read of \`${type.name}\` with ${show(e)}: each slot is undefined (a miss) or an entry { value, expiresAt } whose value is a \`${type.name}\``,
    )
  }
}

/**
 * Checks a single `get`'s answer (the fast path's first layer): `undefined` or an instance of `model`.
 * @throws StockpyleError (`E_STOCKPYLE`) naming the layer and what it answered.
 */
export function checkValue(value: unknown, model: Model, layer: string): void {
  const type = model as unknown as abstract new (...args: never[]) => object
  if (value === undefined || value instanceof type) return
  throw new StockpyleError(
    `layer \`${layer}\` answered a get of \`${type.name}\` with ${show(value)}: a store's get resolves to undefined (a miss) or a \`${type.name}\``,
  )
}

/**
 * What a layer threw, as an Error: a value that is not one (a string, `null`, a plain object) becomes a
 * StockpyleError naming the layer and the operation, the value as its `cause`.
 */
export function asLayerError(error: unknown, layer: string, operation: string): unknown {
  if (error instanceof Error) return error
  return new StockpyleError(`layer \`${layer}\` ${operation} failed with ${show(error)}, which is not an Error`, { cause: error })
}
