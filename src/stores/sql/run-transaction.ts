import { isAbortedTransactionError, type Kysely } from 'kysely'
import { UnsupportedOperationError } from '../../core/errors.js'
import { messageOf } from '../../core/unavailable-unless-ours.js'
import type { SqlDialect } from './column-kind.js'
import { refusedByDatabase } from './refused-by-database.js'
import { translateError } from './sql-errors.js'
import type { SqlTransaction } from './sql-transaction.js'
import { wasNotSent } from './timed-pool.js'

/** What {@link runTransaction} needs of its store. */
export interface TransactionParts {
  /** The store's name, for messages. */
  readonly name: string
  readonly dialect: SqlDialect
  /** The handle `fn` gets on the transaction `trx`. */
  open(trx: Kysely<any>): SqlTransaction
  /** Runs `fn`'s call (the store's calls made in it are refused). */
  inScope<R>(call: () => Promise<R>): Promise<R>
  /** Called once the transaction has ended (committed or not), before its afterCommit callbacks run. */
  left(): void
}

/**
 * `SqlStore.transaction()`: runs `fn` in a transaction of `db` of our own control (the COMMIT's own error
 * tells whether it was sent: Kysely's `transaction().execute()` rejects with the error of the ROLLBACK it
 * tries after a failed COMMIT), then COMMITs and runs the afterCommit callbacks. Before the COMMIT, the
 * handle checks that its transaction is still the one begun (`SqlTransaction.verify()`).
 * @throws the error of `fn` or of a call it left running; a translated database error when BEGIN or
 *   COMMIT fails; UnsupportedOperationError when SQL of the caller's ended the transaction.
 */
export async function runTransaction<R>(db: Kysely<any>, parts: TransactionParts, fn: (tx: SqlTransaction) => Promise<R>): Promise<R> {
  const { name, dialect } = parts
  let tx: SqlTransaction | undefined
  let result: R
  try {
    const trx = await db
      .startTransaction()
      .execute()
      .catch((err: unknown) => {
        throw translateError(err, `${name} store transaction`)
      })
    const rollback = () =>
      trx
        .rollback()
        .execute()
        .catch(() => {})
    try {
      result = await parts.inScope(async () => {
        tx = parts.open(trx)
        return fn(tx)
      })
      // Calls fn left running (a write without await) finish before COMMIT, inside the transaction;
      // one of them failing rolls it back, as it would have had fn awaited it. So does a deadlock or
      // serialization failure of one of its calls, also when fn caught it (and on SQLite, a failure
      // after which SQLite had rolled the whole transaction back).
      const late = await (tx as SqlTransaction).end(false)
      if (late !== undefined) throw late.error
    } catch (error) {
      // Nothing of fn's calls may reach the connection after the ROLLBACK (in autocommit): the one
      // running finishes first, those queued are refused.
      await tx?.end(true)
      // fn's own error, also when the ROLLBACK fails after it (the connection was lost)
      await rollback()
      throw error
    }
    try {
      await (tx as SqlTransaction).verify()
    } catch (err) {
      // An aborted transaction (a statement of the caller's failed in it; SQLSTATE in_failed_sql_transaction):
      // its COMMIT is answered with ROLLBACK, below. Otherwise no COMMIT is sent: it would commit what
      // is left (a transaction begun by the caller's SQL, or nothing).
      if ((err as { code?: unknown } | null)?.code !== '25P02') {
        await rollback()
        throw endedByOwnSql(dialect, err) ? await ended(name, tx as SqlTransaction, err) : notSent(name, err)
      }
    }
    try {
      await trx.commit().execute()
    } catch (err) {
      // (a COMMIT the database answered with ROLLBACK — an aborted transaction — is known to have rolled back)
      if (isAbortedTransactionError(err)) throw translateError(err, `${name} store transaction`)
      // ends the transaction and gives the connection back (destroyed when it was lost or timed out)
      await rollback()
      // SQLite's COMMIT outside a transaction: SQL of the caller's ended it (and a write after, outside it, began none)
      if (endedByOwnSql(dialect, err)) throw await ended(name, tx as SqlTransaction, err)
      // A COMMIT the database answered with an error (a deferred constraint) did not commit.
      if (refusedByDatabase(dialect, err)) {
        throw translateError(err, `${name} store transaction, which did not commit (the database refused its COMMIT),`)
      }
      // A COMMIT never sent (the connection was lost, or broken by a timeout, before it) did not commit.
      if (wasNotSent(err)) throw notSent(name, err)
      // The COMMIT's outcome is unknown (its reply may have been lost after it took effect): callers
      // in front (a chain's caches) drop what the transaction wrote before the call rejects.
      throw await withCallbacks(
        tx as SqlTransaction,
        translateError(err, `${name} store transaction at COMMIT (whether it took effect is unknown)`),
      )
    }
  } finally {
    parts.left()
    await tx?.close()
  }
  await (tx as SqlTransaction).committed()
  return result
}

/**
 * Whether `err`, of the statement that released the savepoint the first write opened (or of SQLite's
 * COMMIT), says the transaction was ended: by a ROLLBACK or COMMIT the store did not send.
 */
function endedByOwnSql(dialect: SqlDialect, err: unknown): boolean {
  if (dialect === 'sqlite') return /no such savepoint|no transaction is active/i.test(messageOf(err))
  const code = (err as { code?: unknown } | null)?.code
  // no_active_sql_transaction (ended), invalid_savepoint_specification (ended, and another begun)
  return code === '25P01' || code === '3B001'
}

function notSent(name: string, err: unknown): Error {
  return translateError(
    err,
    `${name} store transaction, which did not commit (its COMMIT was not sent: the connection was lost or timed out before it),`,
  )
}

/**
 * The error of a transaction that SQL of the caller's ended: its writes were committed or rolled back
 * by that SQL, or ran after it outside any transaction, so the afterCommitFailed callbacks run (a
 * chain's caches drop what it wrote), as after a COMMIT of unknown outcome.
 */
function ended(name: string, tx: SqlTransaction, err: unknown): Promise<Error> {
  return withCallbacks(
    tx,
    new UnsupportedOperationError(
      `${name} store transaction failed: the transaction was ended by SQL of its own that the store could not see (a COMMIT or ROLLBACK in a query builder's SQL, or sent through another handle on its connection), which is not supported: what it wrote before that SQL was committed or rolled back by it, what it wrote after may have run outside any transaction; the caches dropped what it wrote`,
      { cause: err },
    ),
  )
}

/** `error`, once the afterCommitFailed callbacks ran (an `AggregateError` of it and theirs when they fail). */
async function withCallbacks(tx: SqlTransaction, error: Error): Promise<Error> {
  const errors = await tx.commitFailed()
  if (errors.length === 0) return error
  return new AggregateError([error, ...errors], `${error.message}; ${errors.length} afterCommitFailed callbacks failed too`)
}
