import {
  ConstraintViolationError,
  KeyConflictError,
  SchemaError,
  SerializationError,
  StockpyleError,
  StoreUnavailableError,
} from '../../core/errors.js'
import { messageOf } from '../../core/unavailable-unless-ours.js'
import { type RunOnConnection, sqliteTransactionOpen } from './sqlite-transaction-open.js'

/** The classes whose constructor takes `(message, { cause })`: the doomed error keeps one of them. */
const KEPT = [ConstraintViolationError, KeyConflictError, SchemaError, SerializationError, StoreUnavailableError]

/**
 * SQLite only, after a call of a transaction failed with `error`: whether SQLite ended the whole
 * transaction (a trigger's `RAISE(ROLLBACK, …)`, a constraint declared `ON CONFLICT ROLLBACK`, a full
 * disk, an interrupt), which it does without a word beyond the statement's error; asked with
 * {@link sqliteTransactionOpen} on the transaction's connection.
 * @param run runs one statement on the transaction's connection.
 * @returns the error the transaction is doomed with — of `error`'s class (a `StockpyleError` for one
 *   of another), saying SQLite rolled the whole transaction back and that it is safe to run it again,
 *   with `error` as `cause` — or `undefined` when the transaction is still open or the probe failed.
 */
export async function sqliteRolledBack(run: RunOnConnection, error: unknown): Promise<Error | undefined> {
  if ((await sqliteTransactionOpen(run)) !== false) return undefined
  const Class = KEPT.find((c) => error instanceof c) ?? StockpyleError
  return new Class(
    `${messageOf(error)}; SQLite rolled the whole transaction back (a trigger's RAISE(ROLLBACK), a constraint declared ON CONFLICT ROLLBACK, a full disk or an interrupt): nothing it wrote is kept (not even when this error is caught: the transaction can no longer commit), and it is safe to run the whole transaction again`,
    { cause: error },
  )
}
