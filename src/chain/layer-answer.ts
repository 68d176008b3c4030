import type { StoreEntry } from '../contracts/base-store.js'
import { isStockpyleError, StockpyleError, show } from '../core/errors.js'
import type { Model } from '../core/model.js'
import { isPartialFailure } from '../core/partial-failure.js'

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

/** What a cache layer still answered to a read that failed at some of its lookups only (see {@link answeredPart}). */
export interface AnsweredPart {
  /** One slot per lookup: the layer's answer, `undefined` at a miss and at each lost lookup. */
  readonly entries: (StoreEntry | undefined)[]
  /** How many lookups the failure lost (its `failed` positions). */
  readonly lost: number
}

/**
 * The part of a read of `count` lookups of `model` that layer `layer` answered although the read
 * rejected with `err`: a `PartialFailureError` (some nodes failed: their lookups are lost, the others'
 * `results` stand) or a `CorruptEntryError` carrying `failed` and `results` (the corrupt entries' lookups
 * are lost, the others' answers stand). `undefined` for any other error: the whole read failed.
 * @throws StockpyleError (`E_STOCKPYLE`, see {@link checkAnswer}) when the answers it carries are not
 *   answers a store may give: then too the whole read failed, and that is what to report.
 */
export function answeredPart(err: unknown, count: number, model: Model, layer: string): AnsweredPart | undefined {
  let failed: readonly number[]
  let results: readonly unknown[] | undefined
  if (isPartialFailure(err)) ({ failed, results } = err)
  else if (isStockpyleError(err, 'E_CORRUPT_ENTRY') && Array.isArray(err.failed) && Array.isArray(err.results)) {
    ;({ failed, results } = err)
  } else return undefined
  const entries = Array.from({ length: count }, (_, i) => results?.[i] as StoreEntry | undefined)
  for (const i of failed) entries[i] = undefined
  checkAnswer(entries, count, model, layer)
  return { entries, lost: failed.length }
}
