import { CompiledQuery, type DatabaseConnection, type Kysely, type QueryExecutor, sql } from 'kysely'
import { UnsupportedOperationError } from '../../core/errors.js'
import type { SqlDialect } from './column-kind.js'
import type { RunOnConnection } from './sqlite-transaction-open.js'
import { transactionControlIn } from './transaction-control-sql.js'

const TRANSACTION_CONTROL = new Set([
  'commit',
  'rollback',
  'savepoint',
  'rollbackToSavepoint',
  'releaseSavepoint',
  // a transaction or connection of its own would run on the store's transaction's connection
  'startTransaction',
  'transaction',
  'connection',
])
const DERIVING = new Set(['withPlugin', 'withoutPlugins', 'withSchema', 'withTables'])
/** The methods of a query executor that make another one (with other plugins, or another connection provider). */
const DERIVING_EXECUTORS = new Set(['withPlugins', 'withPlugin', 'withPluginAtFront', 'withConnectionProvider', 'withoutPlugins'])

type Refuse = (what: string) => never

/**
 * What happens when a statement run through the guarded handle failed with `error`: `run` runs a
 * statement on the connection it ran on (to ask whether the transaction is still open).
 * @returns a promise rejecting with the error the caller gets: `error`, or one replacing it.
 */
export type StatementFailed = (error: unknown, run: RunOnConnection) => Promise<never>

/** What a guarded handle needs, passed down to what it derives. */
interface Guard {
  readonly refuse: Refuse
  readonly dialect: SqlDialect
  readonly failed: StatementFailed | undefined
}

/**
 * `trx` with its transaction control refused (also on the instances `withPlugin()` & co. derive from
 * it): Kysely's `commit()`, `rollback()`, savepoints, transactions and connections of its own, and raw
 * SQL one of whose statements begins, ends or marks a transaction (see {@link transactionControlIn}),
 * whether run through `executeQuery`, its executor (and the executors and connections it provides), or
 * `sql\`…\`.execute()`. Methods are bound to `trx` itself: Kysely's classes keep their state in
 * `#private` fields, which a proxy as `this` cannot reach.
 * @param store the store's name, for messages.
 * @param failed called when a statement run through those paths fails (not one of a query builder,
 *   which runs on `trx`'s own executor): SQLite may have rolled the whole transaction back; undefined:
 *   the statement's error reaches the caller as it is.
 */
export function guarded(trx: Kysely<any>, store: string, dialect: SqlDialect, failed?: StatementFailed): Kysely<any> {
  const refuse: Refuse = (what) => {
    throw new UnsupportedOperationError(
      `${store} store: ${what} is not supported inside transaction(): the transaction commits when the callback returns and rolls back when it throws (all of it); a write undone by a savepoint would still reach the caches — use separate transaction() calls instead`,
    )
  }
  return guardedKysely(trx, { refuse, dialect, failed })
}

function guardedKysely(trx: Kysely<any>, guard: Guard): Kysely<any> {
  const run: RunOnConnection = (statement) => sql.raw(statement).execute(trx)
  return new Proxy(trx, {
    get(target, property) {
      if (typeof property === 'string' && TRANSACTION_CONTROL.has(property)) return () => guard.refuse(`tx.kysely().${property}()`)
      const value: unknown = Reflect.get(target, property, target)
      if (typeof value !== 'function') return value
      if (typeof property === 'string' && DERIVING.has(property)) {
        return (...args: unknown[]) => guardedKysely(value.apply(target, args) as Kysely<any>, guard)
      }
      // raw SQL (sql`…`.execute(db) asks for the executor; db.executeQuery(CompiledQuery.raw(…))) is
      // looked at for transaction control too: a raw ROLLBACK is answered by PostgreSQL's next COMMIT
      // with a mere warning, and the caches would get what the database rolled back
      if (property === 'getExecutor') return () => guardedExecutor(value.call(target) as QueryExecutor, guard)
      if (property === 'executeQuery') return refusingControl(value as (...args: unknown[]) => unknown, target, guard, run)
      return value.bind(target)
    },
  })
}

/** `executor` refusing statements of transaction control, also on the executors and connections it gives. */
function guardedExecutor(executor: QueryExecutor, guard: Guard): QueryExecutor {
  const run: RunOnConnection = (statement) => executor.executeQuery(CompiledQuery.raw(statement))
  return new Proxy(executor, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target)
      if (typeof value !== 'function') return value
      if (property === 'executeQuery') return refusingControl(value as (...args: unknown[]) => unknown, target, guard, run)
      if (property === 'stream') return refusingControl(value as (...args: unknown[]) => unknown, target, guard)
      if (typeof property === 'string' && DERIVING_EXECUTORS.has(property)) {
        return (...args: unknown[]) => guardedExecutor(value.apply(target, args) as QueryExecutor, guard)
      }
      if (property === 'provideConnection') {
        return (consumer: (connection: DatabaseConnection) => Promise<unknown>) =>
          value.call(target, (connection: DatabaseConnection) => consumer(guardedConnection(connection, guard)))
      }
      return value.bind(target)
    },
  })
}

/** `connection` refusing statements of transaction control. */
function guardedConnection(connection: DatabaseConnection, guard: Guard): DatabaseConnection {
  // on the connection itself: the executor's is held by the caller until this statement's caller returns
  const run: RunOnConnection = (statement) => connection.executeQuery(CompiledQuery.raw(statement))
  return new Proxy(connection, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target)
      if (typeof value !== 'function') return value
      if (property === 'executeQuery') return refusingControl(value as (...args: unknown[]) => unknown, target, guard, run)
      if (property === 'streamQuery') return refusingControl(value as (...args: unknown[]) => unknown, target, guard)
      return value.bind(target)
    },
  })
}

/**
 * `run` (a method of `target` taking a compiled query first) refusing statements that begin, end or
 * mark a transaction; with `probe` (a promise-returning method), its failure goes through `guard.failed`.
 */
function refusingControl(
  run: (...args: unknown[]) => unknown,
  target: object,
  guard: Guard,
  probe?: RunOnConnection,
): (query: { sql?: unknown }, ...rest: unknown[]) => unknown {
  const failed = probe === undefined ? undefined : guard.failed
  return (query, ...rest) => {
    const control = typeof query?.sql === 'string' ? transactionControlIn(query.sql, guard.dialect) : undefined
    if (control !== undefined) guard.refuse(`raw ${control}`)
    const result = run.call(target, query, ...rest)
    if (failed === undefined || !(result instanceof Promise)) return result
    return result.catch((error: unknown) => failed(error, probe as RunOnConnection))
  }
}
