import type { DatabaseConnection, Kysely, QueryExecutor } from 'kysely'
import { UnsupportedOperationError } from '../../core/errors.js'
import type { SqlDialect } from './column-kind.js'
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
 * `trx` with its transaction control refused (also on the instances `withPlugin()` & co. derive from
 * it): Kysely's `commit()`, `rollback()`, savepoints, transactions and connections of its own, and raw
 * SQL one of whose statements begins, ends or marks a transaction (see {@link transactionControlIn}),
 * whether run through `executeQuery`, its executor (and the executors and connections it provides), or
 * `sql\`…\`.execute()`. Methods are bound to `trx` itself: Kysely's classes keep their state in
 * `#private` fields, which a proxy as `this` cannot reach.
 * @param store the store's name, for messages.
 */
export function guarded(trx: Kysely<any>, store: string, dialect: SqlDialect): Kysely<any> {
  const refuse: Refuse = (what) => {
    throw new UnsupportedOperationError(
      `${store} store: ${what} is not supported inside transaction(): the transaction commits when the callback returns and rolls back when it throws (all of it); a write undone by a savepoint would still reach the caches — use separate transaction() calls instead`,
    )
  }
  return guardedKysely(trx, refuse, dialect)
}

function guardedKysely(trx: Kysely<any>, refuse: Refuse, dialect: SqlDialect): Kysely<any> {
  return new Proxy(trx, {
    get(target, property) {
      if (typeof property === 'string' && TRANSACTION_CONTROL.has(property)) return () => refuse(`tx.kysely().${property}()`)
      const value: unknown = Reflect.get(target, property, target)
      if (typeof value !== 'function') return value
      if (typeof property === 'string' && DERIVING.has(property)) {
        return (...args: unknown[]) => guardedKysely(value.apply(target, args) as Kysely<any>, refuse, dialect)
      }
      // raw SQL (sql`…`.execute(db) asks for the executor; db.executeQuery(CompiledQuery.raw(…))) is
      // looked at for transaction control too: a raw ROLLBACK is answered by PostgreSQL's next COMMIT
      // with a mere warning, and the caches would get what the database rolled back
      if (property === 'getExecutor') return () => guardedExecutor(value.call(target) as QueryExecutor, refuse, dialect)
      if (property === 'executeQuery') return refusingControl(value as (...args: unknown[]) => unknown, target, refuse, dialect)
      return value.bind(target)
    },
  })
}

/** `executor` refusing statements of transaction control, also on the executors and connections it gives. */
function guardedExecutor(executor: QueryExecutor, refuse: Refuse, dialect: SqlDialect): QueryExecutor {
  return new Proxy(executor, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target)
      if (typeof value !== 'function') return value
      if (property === 'executeQuery' || property === 'stream')
        return refusingControl(value as (...args: unknown[]) => unknown, target, refuse, dialect)
      if (typeof property === 'string' && DERIVING_EXECUTORS.has(property)) {
        return (...args: unknown[]) => guardedExecutor(value.apply(target, args) as QueryExecutor, refuse, dialect)
      }
      if (property === 'provideConnection') {
        return (consumer: (connection: DatabaseConnection) => Promise<unknown>) =>
          value.call(target, (connection: DatabaseConnection) => consumer(guardedConnection(connection, refuse, dialect)))
      }
      return value.bind(target)
    },
  })
}

/** `connection` refusing statements of transaction control. */
function guardedConnection(connection: DatabaseConnection, refuse: Refuse, dialect: SqlDialect): DatabaseConnection {
  return new Proxy(connection, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target)
      if (typeof value !== 'function') return value
      if (property === 'executeQuery' || property === 'streamQuery')
        return refusingControl(value as (...args: unknown[]) => unknown, target, refuse, dialect)
      return value.bind(target)
    },
  })
}

/** `run` (a method of `target` taking a compiled query first) refusing statements that begin, end or mark a transaction. */
function refusingControl(
  run: (...args: unknown[]) => unknown,
  target: object,
  refuse: Refuse,
  dialect: SqlDialect,
): (query: { sql?: unknown }, ...rest: unknown[]) => unknown {
  return (query, ...rest) => {
    const control = typeof query?.sql === 'string' ? transactionControlIn(query.sql, dialect) : undefined
    if (control !== undefined) refuse(`raw ${control}`)
    return run.call(target, query, ...rest)
  }
}
