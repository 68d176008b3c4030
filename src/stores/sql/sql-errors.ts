import {
  ConstraintViolationError,
  KeyConflictError,
  SchemaError,
  SerializationError,
  StockpyleError,
  StoreUnavailableError,
} from '../../core/errors.js'
import { messageOf } from '../../core/unavailable-unless-ours.js'

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
  // missing database (invalid_catalog_name), unknown role or failed authentication
  '3D000',
  '28000',
  '28P01',
  'SQLITE_BUSY',
  'SQLITE_CANTOPEN',
  'SQLITE_IOERR',
  'SQLITE_NOTADB',
  'SQLITE_FULL',
  'SQLITE_READONLY',
])

const CONSTRAINT_CODES = new Set([
  '23502',
  '23503',
  '23514',
  '23P01',
  'SQLITE_CONSTRAINT_NOTNULL',
  'SQLITE_CONSTRAINT_CHECK',
  'SQLITE_CONSTRAINT_FOREIGNKEY',
  'SQLITE_CONSTRAINT_TRIGGER',
  'SQLITE_CONSTRAINT',
])

/**
 * The primary result code of a SQLite extended one (`SQLITE_READONLY_DBMOVED` → `SQLITE_READONLY`,
 * `SQLITE_IOERR_WRITE` → `SQLITE_IOERR`): better-sqlite3 reports extended codes, and every extension of
 * a connection-level primary code means the same to a caller.
 */
function primaryCode(code: string): string {
  return /^SQLITE_[A-Z]+(?=_)/.exec(code)?.[0] ?? code
}

/** PostgreSQL's deadlock_detected and serialization_failure: the transaction is given up, and may run again. */
const RETRYABLE_CODES = new Set(['40P01', '40001'])

/**
 * Whether `err` is a deadlock or serialization failure (PostgreSQL 40P01, 40001), as the driver raised
 * it or translated by {@link translateError} (its `cause`): the database gave the whole transaction up.
 */
export function isRetryableFailure(err: unknown): boolean {
  return RETRYABLE_CODES.has(codeOf(err)) || (err instanceof StockpyleError && RETRYABLE_CODES.has(codeOf(err.cause)))
}

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : ''
}

/**
 * Turns a database or driver error into a stockpyle error (stockpyle errors pass through unchanged):
 *
 * - unique violation (PostgreSQL 23505, SQLite `SQLITE_CONSTRAINT_UNIQUE`/`_PRIMARYKEY`) → `KeyConflictError` (`E_KEY_CONFLICT`)
 * - unknown table or column, or an ON CONFLICT target without a unique index or with a deferrable one → `SchemaError` (`E_SCHEMA`)
 * - NOT NULL, CHECK, foreign key and exclusion violations → `ConstraintViolationError` (`E_CONSTRAINT`)
 * - data exceptions (PostgreSQL class 22, SQLite `SQLITE_MISMATCH`/`SQLITE_TOOBIG`) → `SerializationError`,
 *   worded for a value to store or, with `lookup`, for a key value looked up by
 * - an enum label used in the transaction that added it, before it commits (PostgreSQL 55P04, "unsafe
 *   use of new value") → `SerializationError` saying so
 * - a protocol violation (08P01) the server answers with severity ERROR, which ends the statement and
 *   not the session: a parameter it could not read (routine `pq_…` of pqformat.c: pg sends a Buffer in
 *   binary, which only a bytea reads as bytes) → `SerializationError`; any other → `StockpyleError`
 *   (a FATAL one, and one whose severity is localised, stays a connection failure)
 * - statements cancelled by the database (statement_timeout, lock_timeout: 57014, 55P03) or given up
 *   by pg (`query_timeout`: "Query read timeout") → `StoreUnavailableError`
 * - a write the database refuses because it is read-only for the session (PostgreSQL 25006: a hot
 *   standby, `default_transaction_read_only`, a READ ONLY transaction) → `StoreUnavailableError` saying so
 * - connection failures (also pg's "Client … is not queryable" for a client whose connection was lost
 *   or closed), a database or role that does not exist, failed authentication, a database
 *   file that cannot be opened, read or written (SQLite `SQLITE_CANTOPEN`, `SQLITE_IOERR`,
 *   `SQLITE_READONLY`, … and their extended codes such as `SQLITE_READONLY_DBMOVED`) → `StoreUnavailableError`
 * - a deadlock or serialization failure (PostgreSQL 40P01, 40001) → `StockpyleError` (`E_STOCKPYLE`)
 *   saying the database rolled the whole transaction back and it is safe to run it again (`cause.code`
 *   tells them apart; inside `SqlStore.transaction()` the handle sees to it that the transaction cannot
 *   commit any more, see `SqlTransaction`)
 * - anything else → `StockpyleError` (`E_STOCKPYLE`) with the error as `cause`
 *
 * `context` starts the message: store, operation and model. `lookup`: the statement looked rows up by
 * key values (a read, a delete by key or of objects) and wrote none of the caller's values, so a data
 * exception is about a key value (one no row can hold: the column's type refuses it), not a value to store.
 */
export function translateError(err: unknown, context: string, lookup = false): Error {
  if (err instanceof StockpyleError) return err
  const code = codeOf(err)
  const message = messageOf(err)
  if (code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    const detail = (err as { detail?: unknown }).detail
    return new KeyConflictError(
      `${context} collides with another row on a unique key (${typeof detail === 'string' ? detail : message}); nothing was written`,
      { cause: err },
    )
  }
  if (
    code === '42P01' ||
    code === '42703' ||
    code === '42P10' ||
    /no such (table|column)|has no column named|ON CONFLICT clause does not match|ON CONFLICT does not support deferrable/i.test(message)
  ) {
    return new SchemaError(`${context} does not match the database schema: ${message}`, { cause: err })
  }
  if (code === '23502' || code === 'SQLITE_CONSTRAINT_NOTNULL') {
    return new ConstraintViolationError(
      `${context} leaves a NOT NULL column without a value (an attribute is null or undefined and the column has no default); nothing was written: ${message}`,
      { cause: err },
    )
  }
  if (CONSTRAINT_CODES.has(code)) {
    return new ConstraintViolationError(`${context} violates a constraint of the table; nothing was written: ${message}`, { cause: err })
  }
  if (code === '55P04') {
    return new SerializationError(
      `${context} ${lookup ? 'looks up' : 'holds'} a label added in this transaction (ALTER TYPE … ADD VALUE), which PostgreSQL refuses until the transaction that added it commits: commit it first (this transaction is aborted unless the statement ran in a savepoint): ${message}`,
      { cause: err },
    )
  }
  if (code.startsWith('22') || code === 'SQLITE_MISMATCH' || code === 'SQLITE_TOOBIG' || code === 'SQLITE_RANGE') {
    if (lookup) {
      return new SerializationError(
        `${context} looks up a key value the database rejected, one the key column's type cannot hold (if the type changed since the store introspected the table, e.g. an enum label was renamed, call refreshSchema()): ${message}`,
        { cause: err },
      )
    }
    return new SerializationError(`${context} holds a value the database rejected: ${message}`, { cause: err })
  }
  if (code === '08P01' && (err as { severity?: unknown }).severity === 'ERROR') {
    if (/^pq_/.test(String((err as { routine?: unknown }).routine))) {
      return new SerializationError(
        `${context} holds a value the database could not read from its binary form (pg sends a Buffer or Uint8Array as bytes, which only a bytea column takes): ${message}`,
        { cause: err },
      )
    }
    return new StockpyleError(`${context} failed: the database refused the statement's message: ${message}`, { cause: err })
  }
  if (RETRYABLE_CODES.has(code)) {
    return new StockpyleError(
      `${context} failed: the database rolled the whole transaction back (SQLSTATE ${code}: ${message}): nothing it wrote is kept (inside transaction(), not even when this error is caught: the transaction can no longer commit), and it is safe to run the whole transaction again`,
      { cause: err },
    )
  }
  // read_only_sql_transaction: a hot standby (or a primary demoted by a failover), a database or role
  // with default_transaction_read_only, or a READ ONLY transaction — the database, not the values, refuses
  if (code === '25006') {
    return new StoreUnavailableError(
      `${context} failed: the database is read-only for this session (a hot standby, default_transaction_read_only, or a READ ONLY transaction) and refuses writes; nothing was written: ${message}`,
      { cause: err },
    )
  }
  // statement_timeout, lock_timeout, a cancel request, pg's query_timeout of an application's pool
  // (whose client goes back to that pool with its statement still running on the server)
  if (code === '57014' || code === '55P03' || /^Query read timeout$/.test(message)) {
    return new StoreUnavailableError(
      `${context} did not finish in time: ${message}${code === '' ? " (pg's query_timeout: the statement may still be running on the server)" : ''}`,
      { cause: err },
    )
  }
  if (
    CONNECTION_CODES.has(primaryCode(code)) ||
    code.startsWith('08') ||
    /Connection terminated|connect ECONNREFUSED|timeout exceeded when trying to connect|is not queryable|Cannot open database/i.test(
      message,
    )
  ) {
    return new StoreUnavailableError(`${context} could not reach the database: ${message}`, { cause: err })
  }
  return new StockpyleError(`${context} failed: ${message}`, { cause: err })
}
