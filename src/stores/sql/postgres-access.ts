/**
 * What `stockpyle/invalidation` needs of PostgreSQL through Kysely, so that it never loads `kysely`
 * or `pg` itself. Every function loads `kysely` (and `pg`) only when first called: importing this
 * module loads no driver.
 */
import type { Kysely } from 'kysely'
import { StoreUnavailableError } from '../../core/errors.js'
import { loadPg, type PgClientConfig, type PgPool } from './pg-driver.js'

export type { Kysely } from 'kysely'

type KyselyModule = typeof import('kysely')

/**
 * Loads `kysely`.
 * @throws StoreUnavailableError naming the package when it is not installed.
 */
async function loadKysely(owner: string): Promise<KyselyModule> {
  try {
    return await import('kysely')
  } catch (err) {
    throw new StoreUnavailableError(`${owner} needs the package \`kysely\`: npm install kysely`, { cause: err })
  }
}

/** Runs one raw statement with positional parameters (`$1`, …) through `db`; the rows are ignored. */
export async function executeRaw(owner: string, db: Kysely<any>, text: string, params: readonly unknown[]): Promise<void> {
  const { CompiledQuery } = await loadKysely(owner)
  await db.executeQuery(CompiledQuery.raw(text, [...params]))
}

/** Runs one raw query with positional parameters (`$1`, …) through `db` and returns its rows. */
export async function queryRows<R>(owner: string, db: Kysely<any>, text: string, params: readonly unknown[]): Promise<R[]> {
  const { CompiledQuery } = await loadKysely(owner)
  return (await db.executeQuery<R>(CompiledQuery.raw(text, [...params]))).rows as R[]
}

/**
 * Runs raw statements in one transaction of `db`, in order, holding the transaction-level advisory
 * lock `hashtext(lock)` (so that two processes running the same DDL at once take turns).
 */
export async function runStatements(owner: string, db: Kysely<any>, statements: readonly string[], lock: string): Promise<void> {
  const { sql } = await loadKysely(owner)
  await db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext(${lock}))`.execute(trx)
    for (const statement of statements) await sql.raw(statement).execute(trx)
  })
}

/**
 * A Kysely instance on PostgreSQL over `pool`, or — without one — over a one-connection pool of its
 * own made from `config` (`ownsPool: true`: destroying the Kysely instance ends that pool).
 * @throws StoreUnavailableError when `kysely` or `pg` is not installed.
 */
export async function openPostgres(
  owner: string,
  pool: PgPool | undefined,
  config: PgClientConfig,
): Promise<{ db: Kysely<any>; ownsPool: boolean }> {
  const [{ Kysely, PostgresDialect }, pg] = await Promise.all([loadKysely(owner), loadPg(owner)])
  let own = pool
  if (own === undefined) {
    own = new pg.Pool({ ...config, max: 1, idleTimeoutMillis: 1000 })
    own.on('error', () => {}) // an idle client that lost its server: the next query reports it
  }
  return { db: new Kysely<any>({ dialect: new PostgresDialect({ pool: own }) }), ownsPool: pool === undefined }
}

/**
 * The schema and name PostgreSQL resolves a table name (`table` or `schema.table`, as configured,
 * unquoted) to, and whether it is a partitioned table; `undefined` when no such table exists.
 */
export async function resolveTable(
  owner: string,
  db: Kysely<any>,
  label: string,
): Promise<{ schema: string; relname: string; partitioned: boolean } | undefined> {
  const { sql } = await loadKysely(owner)
  const quoted = label
    .split('.')
    .map((part) => `"${part.replaceAll('"', '""')}"`)
    .join('.')
  const { rows } = await sql<{ schema: string; relname: string; partitioned: boolean }>`select n.nspname as schema,
      c.relname as relname, c.relkind = 'p' as partitioned
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where c.oid = to_regclass(${quoted})`.execute(db)
  return rows[0]
}
