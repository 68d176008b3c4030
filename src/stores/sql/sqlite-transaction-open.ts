/** Runs one statement of transaction control on a connection (the probe of {@link sqliteTransactionOpen}). */
export type RunOnConnection = (statement: 'begin' | 'rollback') => Promise<unknown>

/**
 * SQLite only: whether a transaction is open on a connection, asked with a `BEGIN` (PostgreSQL keeps a
 * failed transaction open until its ROLLBACK, so it has no such question). The `BEGIN` fails with
 * "cannot start a transaction within a transaction" while one is open; one that succeeds began a
 * transaction of its own, rolled back at once (it started nothing).
 * @param run runs one statement on the connection.
 * @returns `true` (open), `false` (none: SQLite ended it), `undefined` when the probe failed for another reason.
 */
export async function sqliteTransactionOpen(run: RunOnConnection): Promise<boolean | undefined> {
  try {
    await run('begin')
  } catch (err) {
    return err instanceof Error && /within a transaction/i.test(err.message) ? true : undefined
  }
  await run('rollback').catch(() => {})
  return false
}
