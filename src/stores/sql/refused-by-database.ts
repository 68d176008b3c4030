import type { SqlDialect } from './column-kind.js'

/**
 * Whether the database answered a COMMIT with an error, so the transaction is known not to have
 * committed: PostgreSQL's ERROR (a SQLSTATE, e.g. a deferred unique or foreign-key violation) rolls it
 * back — not FATAL/PANIC, which end the connection and may come after the commit took effect; SQLite
 * (in-process, no reply to lose) leaves a refused COMMIT's transaction open or rolled back, never
 * committed.
 */
export function refusedByDatabase(dialect: SqlDialect, err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false
  const { code, severity } = err as { code?: unknown; severity?: unknown }
  // (not "no transaction is active": a raw COMMIT or ROLLBACK ran inside the callback, whose outcome the store cannot tell)
  if (dialect === 'sqlite')
    return (
      typeof code === 'string' &&
      code.startsWith('SQLITE_') &&
      !/no transaction is active/i.test(String((err as { message?: unknown }).message))
    )
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && severity === 'ERROR'
}
