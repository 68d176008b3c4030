import { SerializationError, StockpyleError, StoreUnavailableError } from '../../core/errors.js'

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EAI_AGAIN',
  '57P01',
  '57P02',
  '57P03',
  '53300',
  'SQLITE_BUSY',
  'SQLITE_CANTOPEN',
  'SQLITE_IOERR',
])

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : ''
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/**
 * Turns a database or driver error into a stockpyle error (stockpyle errors pass through unchanged):
 *
 * - unique violation (PostgreSQL 23505, SQLite `SQLITE_CONSTRAINT_UNIQUE`/`_PRIMARYKEY`) → `StockpyleError` `E_KEY_CONFLICT`
 * - unknown table or column, or an ON CONFLICT target without a unique index → `StockpyleError` `E_SCHEMA`
 * - data exceptions (PostgreSQL class 22, SQLite `SQLITE_MISMATCH`/`SQLITE_TOOBIG`) → `SerializationError`
 * - connection failures → `StoreUnavailableError`
 * - anything else → `StockpyleError` (`E_STOCKPYLE`) with the error as `cause`
 *
 * `context` starts the message: store, operation and model.
 */
export function translateError(err: unknown, context: string): Error {
  if (err instanceof StockpyleError) return err
  const code = codeOf(err)
  const message = messageOf(err)
  if (code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    const detail = (err as { detail?: unknown }).detail
    return new StockpyleError(
      `${context} collides with another row on a unique key (${typeof detail === 'string' ? detail : message}); nothing was written`,
      { code: 'E_KEY_CONFLICT', cause: err },
    )
  }
  if (
    code === '42P01' ||
    code === '42703' ||
    code === '42P10' ||
    /no such (table|column)|has no column named|ON CONFLICT clause does not match/i.test(message)
  ) {
    return new StockpyleError(`${context} does not match the database schema: ${message}`, { code: 'E_SCHEMA', cause: err })
  }
  if (code === '23502' || code === 'SQLITE_CONSTRAINT_NOTNULL') {
    return new StockpyleError(
      `${context} leaves a NOT NULL column without a value (an attribute is null or undefined and the column has no default): ${message}`,
      { cause: err },
    )
  }
  if (code.startsWith('22') || code === 'SQLITE_MISMATCH' || code === 'SQLITE_TOOBIG' || code === 'SQLITE_RANGE') {
    return new SerializationError(`${context} holds a value the database rejected: ${message}`, { cause: err })
  }
  if (CONNECTION_CODES.has(code) || code.startsWith('08') || /Connection terminated|connect ECONNREFUSED/i.test(message)) {
    return new StoreUnavailableError(`${context} could not reach the database: ${message}`, { cause: err })
  }
  return new StockpyleError(`${context} failed: ${message}`, { cause: err })
}
