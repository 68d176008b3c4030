import { createHash } from 'node:crypto'
import { InvalidOptionError, show } from '../core/errors.js'
import type { Model } from '../core/model.js'
import type { TableNaming } from '../stores/sql/naming.js'
import { checkChannel, quoteIdent, quoteLiteral } from '../stores/sql/pg-driver.js'
import { type Kysely, queryRows, runStatements } from '../stores/sql/postgres-access.js'
import { translateError } from '../stores/sql/sql-errors.js'
import type { SqlStore } from '../stores/sql/sql-store.js'
import { checkKnown } from './bus-options.js'
import {
  checkModels,
  describeTables,
  isKysely,
  isSqlStore,
  type SqlSource,
  sourceOfKysely,
  sourceOfStore,
  type WatchedTable,
} from './sql-tables.js'

/** The advisory lock installs and removals take, so that concurrent ones take turns. */
const TRIGGER_LOCK = 'stockpyle_invalidation_triggers'

/** The default channel of row-change notifications. */
export const DEFAULT_ROWS_CHANNEL = 'stockpyle_rows'

/** The OIDs of `float4` and `float8`. */
const FLOAT4 = 700
const FLOAT8 = 701

/** The name of the row trigger (AFTER INSERT OR UPDATE OR DELETE, FOR EACH ROW) on each table. */
export const ROW_TRIGGER = 'stockpyle_invalidate'
/** The name of the statement trigger (AFTER TRUNCATE) on each table. */
export const TRUNCATE_TRIGGER = 'stockpyle_invalidate_truncate'

/** Options of {@link installInvalidationTriggers}. */
export interface InvalidationTriggerOptions {
  /** The NOTIFY channel (at most 63 bytes); the watchers must LISTEN on the same. Default {@link DEFAULT_ROWS_CHANNEL}. */
  channel?: string | undefined
  /** With a Kysely instance: SqlStore's `tables` option (which table each model lives in). Refused with a SqlStore, which supplies it. */
  tables?: TableNaming | undefined
  /** With a Kysely instance: SqlStore's `camelCase` option. Refused with a SqlStore, which supplies it. */
  camelCase?: boolean | undefined
}

/** What was installed for one model. */
export interface InstalledTrigger {
  /** The model's type tag. */
  readonly model: string
  /** The table, schema-qualified: `public.users`. */
  readonly table: string
  /** The trigger function, schema-qualified. */
  readonly function: string
  /** The primary-key columns each notification carries. */
  readonly columns: readonly string[]
  readonly channel: string
}

/**
 * Installs, for each model's table on PostgreSQL, triggers that NOTIFY `channel` about every row
 * change: a row trigger (`stockpyle_invalidate`, AFTER INSERT OR UPDATE OR DELETE, FOR EACH ROW)
 * sending `{"table": "schema.table", "op", "pk": {column: text}, "old_pk"?: {…}}` (`old_pk` when an
 * UPDATE changed the primary key), and a statement trigger (`stockpyle_invalidate_truncate`, AFTER
 * TRUNCATE) sending `{"table", "op": "TRUNCATE"}`, both `ENABLE ALWAYS`: they fire whatever the writing
 * session's `session_replication_role` (pg_restore --disable-triggers, bulk loads, a logical-replication
 * subscriber applying rows), until someone runs `ALTER TABLE … DISABLE TRIGGER`. See {@link RowChange}. A {@link watchDatabase}
 * watcher turns these into evictions in every cache layer. A partitioned table is watched as one table:
 * rows written into any of its partitions are notified under its name, and its partitions get the
 * TRUNCATE trigger too (those attached later: when this runs again).
 *
 * The trigger reads the key columns by the names they had at the install: after one was renamed,
 * dropped or replaced, writes still succeed, but each row change is sent as one that cannot be named
 * (`overflow` with the database's `error`), which makes every watcher clear its memory layers and
 * report it, until this runs again.
 *
 * Because NOTIFY is transactional, notifications are delivered only when the writing transaction
 * commits, in commit order, and never for a rolled-back one. Identical notifications of one
 * transaction are delivered once. The writing transaction pays for one `pg_notify` per row.
 *
 * Idempotent (`CREATE OR REPLACE FUNCTION`, `DROP TRIGGER IF EXISTS` + `CREATE TRIGGER`, all in one
 * transaction under an advisory lock): run it at deploy time or at every start; running it again with
 * another channel moves the triggers to that channel. Needs the privileges to create functions in the
 * table's schema and triggers on the table.
 *
 * @param source a SqlStore on PostgreSQL (its table naming and camelCase are used) or a Kysely
 *   instance on PostgreSQL (then pass `tables`/`camelCase` as your SqlStore has them).
 * @returns what was installed, one entry per model.
 * @throws InvalidOptionError for an invalid argument, a SQLite source, or `tables`/`camelCase` with a SqlStore.
 * @throws StockpyleError `E_SCHEMA` for a missing table or a key attribute without a column; the database's error when it refuses a statement.
 */
export async function installInvalidationTriggers(
  source: SqlStore | Kysely<any>,
  models: readonly Model[],
  options: InvalidationTriggerOptions = {},
): Promise<InstalledTrigger[]> {
  const owner = 'installInvalidationTriggers'
  const { sqlSource, channel, infos } = prepare(owner, source, models, options)
  return reaching(owner, () => install(owner, sqlSource, channel, infos))
}

async function install(
  owner: string,
  sqlSource: ReturnType<typeof prepare>['sqlSource'],
  channel: string,
  infos: ReturnType<typeof prepare>['infos'],
): Promise<InstalledTrigger[]> {
  const tables = await describeTables(sqlSource, infos)
  const db = await sqlSource.db()
  const statements: string[] = []
  for (const t of tables) statements.push(...installStatements(t, channel, await partitionsOf(owner, db, t)))
  await runStatements(owner, db, statements, TRIGGER_LOCK)
  return tables.map((t) => ({
    model: t.info.name,
    table: t.qualified,
    function: `${t.schema}.${functionName(t)}`,
    columns: t.key.map((k) => k.column.name),
    channel,
  }))
}

/**
 * Removes what {@link installInvalidationTriggers} installed for these models' tables (both triggers and
 * the trigger function); tables without them are left as they are. Idempotent.
 * @throws InvalidOptionError for an invalid argument; StockpyleError `E_SCHEMA` for a missing table.
 */
export async function removeInvalidationTriggers(
  source: SqlStore | Kysely<any>,
  models: readonly Model[],
  options: Omit<InvalidationTriggerOptions, 'channel'> = {},
): Promise<void> {
  const owner = 'removeInvalidationTriggers'
  const { sqlSource, infos } = prepare(owner, source, models, options)
  return reaching(owner, () => remove(owner, sqlSource, infos))
}

async function remove(
  owner: string,
  sqlSource: ReturnType<typeof prepare>['sqlSource'],
  infos: ReturnType<typeof prepare>['infos'],
): Promise<void> {
  const tables = await describeTables(sqlSource, infos)
  const db = await sqlSource.db()
  const statements: string[] = []
  for (const t of tables) {
    const table = qualifiedName(t)
    statements.push(`drop trigger if exists ${ROW_TRIGGER} on ${table}`, `drop trigger if exists ${TRUNCATE_TRIGGER} on ${table}`)
    for (const p of await partitionsOf(owner, db, t)) statements.push(`drop trigger if exists ${TRUNCATE_TRIGGER} on ${qualifiedName(p)}`)
    // CASCADE: also the TRUNCATE triggers of partitions detached since (nothing but triggers can use a trigger function)
    statements.push(`drop function if exists ${quoteIdent(t.schema)}.${quoteIdent(functionName(t))}() cascade`)
  }
  await runStatements(owner, db, statements, TRIGGER_LOCK)
}

/** `"schema"."relname"`. */
function qualifiedName(t: { readonly schema: string; readonly relname: string }): string {
  return `${quoteIdent(t.schema)}.${quoteIdent(t.relname)}`
}

/**
 * The partitions of a partitioned table, at every level (sub-partitioned ones included, foreign ones
 * not: they cannot have TRUNCATE triggers); `[]` for any other table.
 */
async function partitionsOf(owner: string, db: Kysely<any>, t: WatchedTable): Promise<{ schema: string; relname: string }[]> {
  if (!t.partitioned) return []
  return queryRows<{ schema: string; relname: string }>(
    owner,
    db,
    `with recursive tree(oid) as (
        select i.inhrelid from pg_catalog.pg_inherits i where i.inhparent = to_regclass($1)
        union all
        select i.inhrelid from pg_catalog.pg_inherits i join tree on i.inhparent = tree.oid)
      select n.nspname as schema, c.relname as relname
      from tree join pg_catalog.pg_class c on c.oid = tree.oid join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where c.relispartition and c.relkind in ('r', 'p')
      order by 1, 2`,
    [qualifiedName(t)],
  )
}

function prepare(
  owner: string,
  source: unknown,
  models: unknown,
  options: InvalidationTriggerOptions,
): { sqlSource: SqlSource; channel: string; infos: ReturnType<typeof checkModels> } {
  if (typeof options !== 'object' || options === null)
    throw new InvalidOptionError(`${owner}: options must be an object, got ${show(options)}`)
  checkKnown(owner, options, ['channel', 'tables', 'camelCase'])
  const channel = checkChannel(owner, options.channel ?? DEFAULT_ROWS_CHANNEL)
  const infos = checkModels(owner, models)
  let sqlSource: SqlSource
  if (isSqlStore(source)) sqlSource = sourceOfStore(owner, source, options)
  else if (isKysely(source)) sqlSource = sourceOfKysely(owner, source, options.tables, options.camelCase)
  else
    throw new InvalidOptionError(`${owner}: the first argument must be a SqlStore or a Kysely instance on PostgreSQL, got ${show(source)}`)
  return { sqlSource, channel, infos }
}

/** `stockpyle_notify_<table>`, shortened with a hash to PostgreSQL's 63-byte identifiers. */
export function functionName(table: Pick<WatchedTable, 'relname'>): string {
  const name = `stockpyle_notify_${table.relname}`
  if (Buffer.byteLength(name) <= 63) return name
  return `stockpyle_notify_${createHash('sha256').update(table.relname).digest('hex').slice(0, 24)}`
}

/**
 * The statements that install the trigger function and both triggers of one table. On a partitioned
 * table the row trigger fires on the partition that holds the row (PostgreSQL clones it to every
 * partition, also to those attached later) and names the partition in `TG_TABLE_NAME`: so the triggers
 * of a partitioned table pass its name as an argument, which the clones keep, and its partitions get
 * the TRUNCATE trigger too (a TRUNCATE of one partition fires only its own statement triggers).
 */
function installStatements(t: WatchedTable, channel: string, partitions: readonly { schema: string; relname: string }[]): string[] {
  const table = qualifiedName(t)
  const fn = `${quoteIdent(t.schema)}.${quoteIdent(functionName(t))}`
  // A key as text as SqlStore reads it: what the type's output function prints (format's %s), which
  // is what the driver gets and parses. A cast to text is not always that: `char(n)` loses its
  // padding, `inet` gains a /32 its output leaves out. Floats are printed exactly (extra_float_digits,
  // set for the function's run): the writing session's setting must not round them.
  const keyText = (row: 'NEW' | 'OLD', column: { name: string }): string => {
    const ref = `${row}.${quoteIdent(column.name)}`
    return `CASE WHEN ${ref} IS NULL THEN NULL ELSE format('%s', ${ref}) END`
  }
  const floats = t.key.some((k) => k.typeOid === FLOAT4 || k.typeOid === FLOAT8)
  const keyObject = (row: 'NEW' | 'OLD'): string =>
    `json_build_object(${t.key.map((k) => `${quoteLiteral(k.column.name)}, ${keyText(row, k.column)}`).join(', ')})`
  const keyRow = (row: 'NEW' | 'OLD'): string => `ROW(${t.key.map((k) => `${row}.${quoteIdent(k.column.name)}`).join(', ')})`
  const head = `'table', coalesce(TG_ARGV[0], TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME), 'op', TG_OP`
  // only a partitioned table's triggers name it: other tables' TG_TABLE_NAME follows a RENAME
  const args = t.partitioned ? quoteLiteral(t.qualified) : ''
  // The key columns are named as they were at the install: after one was renamed or dropped, `NEW."id"`
  // fails. That must not fail the write (every client's, the application's database down because of a
  // cache helper): the row is announced as one that cannot be named, which makes the watchers clear
  // memory and report it. (A block with EXCEPTION is a subtransaction: ~1 µs of CPU a row, about 15%
  // of what the trigger costs, measured on PostgreSQL 15.)
  const body = `
DECLARE
  payload text;
BEGIN
  BEGIN
    IF TG_OP = 'TRUNCATE' THEN
      payload := json_build_object(${head})::text;
    ELSIF TG_OP = 'DELETE' THEN
      payload := json_build_object(${head}, 'pk', ${keyObject('OLD')})::text;
    ELSIF TG_OP = 'UPDATE' THEN
      IF ${keyRow('OLD')} IS DISTINCT FROM ${keyRow('NEW')} THEN
        payload := json_build_object(${head}, 'pk', ${keyObject('NEW')}, 'old_pk', ${keyObject('OLD')})::text;
      ELSE
        payload := json_build_object(${head}, 'pk', ${keyObject('NEW')})::text;
      END IF;
    ELSE
      payload := json_build_object(${head}, 'pk', ${keyObject('NEW')})::text;
    END IF;
  EXCEPTION WHEN undefined_column THEN
    payload := json_build_object(${head}, 'overflow', true, 'error', left(SQLERRM, 500))::text;
  END;
  IF octet_length(payload) > 7999 THEN
    payload := json_build_object(${head}, 'overflow', true)::text;
  END IF;
  PERFORM pg_notify(${quoteLiteral(channel)}, payload);
  RETURN NULL;
END`
  if (body.includes('$stockpyle$'))
    throw new InvalidOptionError(`installInvalidationTriggers: a column name of table ${show(t.qualified)} contains $stockpyle$`)
  return [
    `create or replace function ${fn}() returns trigger language plpgsql${floats ? ' set extra_float_digits = 3' : ''} as $stockpyle$${body}$stockpyle$`,
    `comment on function ${fn}() is ${quoteLiteral(`stockpyle: NOTIFY ${channel} of row changes of ${t.qualified} (installInvalidationTriggers)`)}`,
    `drop trigger if exists ${ROW_TRIGGER} on ${table}`,
    `create trigger ${ROW_TRIGGER} after insert or update or delete on ${table} for each row execute function ${fn}(${args})`,
    // ENABLE ALWAYS: a plain trigger fires only in sessions with session_replication_role = origin, and
    // so misses pg_restore --disable-triggers, bulk loads and every row a logical-replication subscriber
    // applies. The partitions' clones are set one by one too: not every release recurses.
    ...[t, ...partitions].map((p) => `alter table ${qualifiedName(p)} enable always trigger ${ROW_TRIGGER}`),
    ...[t, ...partitions].flatMap((p) => [
      `drop trigger if exists ${TRUNCATE_TRIGGER} on ${qualifiedName(p)}`,
      `create trigger ${TRUNCATE_TRIGGER} after truncate on ${qualifiedName(p)} for each statement execute function ${fn}(${args})`,
      `alter table ${qualifiedName(p)} enable always trigger ${TRUNCATE_TRIGGER}`,
    ]),
  ]
}

/**
 * Runs `work` against the database, translating a driver's error as SqlStore does (a database that
 * cannot be reached is a `StoreUnavailableError` naming `owner`).
 */
async function reaching<T>(owner: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (err) {
    throw translateError(err, owner)
  }
}
