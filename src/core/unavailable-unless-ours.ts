import { isStockpyleError, type StockpyleError, StoreUnavailableError } from './errors.js'

/**
 * The message of whatever was thrown: an Error's `message`, anything else as text. Never throws (an
 * object without a string form, `Object.create(null)`, is named by its tag).
 */
export function messageOf(err: unknown): string {
  try {
    return err instanceof Error ? String(err.message) : String(err)
  } catch {
    return Object.prototype.toString.call(err)
  }
}

/**
 * How a store or bus reports what its client threw: `err` itself when it is a stockpyle error (also
 * another copy's), else a {@link StoreUnavailableError} `"<context> failed: <its message>"` with `err`
 * as its cause.
 */
export function unavailableUnlessOurs(err: unknown, context: string): StockpyleError {
  if (isStockpyleError(err)) return err
  return new StoreUnavailableError(`${context} failed: ${messageOf(err)}`, { cause: err })
}
