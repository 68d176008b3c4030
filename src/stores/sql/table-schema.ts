import { type Kysely, sql } from 'kysely'
import { SchemaError } from '../../core/errors.js'
import { type ColumnInfo, columnKind, integerLimit, pgExact, type SqlDialect } from './column-kind.js'

/** A unique index (or the primary key) of a table. */
export interface UniqueIndex {
  readonly name: string
  readonly columns: readonly string[]
  readonly primary: boolean
}

/** What SqlStore learns about a table by introspection (cached per table). */
export interface TableSchema {
  /** The table name as configured (`name` or `schema.name`). */
  readonly table: string
  /** Columns in table order, by name. */
  readonly columns: ReadonlyMap<string, ColumnInfo>
  /** Unique indexes that hold for every row: not partial, no expressions. The primary key is one of them. */
  readonly uniqueIndexes: readonly UniqueIndex[]
  /**
   * Writes may store other values than those sent: the table has row triggers or rewrite rules of its
   * own (PostgreSQL), or is on SQLite (where no column is {@link ColumnInfo.exact}). A put then reads
   * every column back.
   */
  readonly rewrites: boolean
}

/** `"schema"."table"`: the table name quoted for PostgreSQL's `to_regclass`, so case and search_path resolve as in queries. */
function pgQualified(table: string): string {
  return table
    .split('.')
    .map((part) => `"${part.replaceAll('"', '""')}"`)
    .join('.')
}

interface SqliteColumnRow {
  name: string
  type: string | null
  notnull: number | bigint
  dflt_value: unknown
  pk: number | bigint
  hidden: number | bigint
}

interface SqliteIndexRow {
  name: string
  partial: number | bigint
  column: string | null
}

async function sqliteSchema(db: Kysely<any>, table: string): Promise<TableSchema | undefined> {
  const [schemaName, tableName] = table.includes('.') ? (table.split('.') as [string, string]) : ['main', table]
  const columnRows = (
    await sql<SqliteColumnRow>`select name, type, "notnull", dflt_value, pk, hidden from pragma_table_xinfo(${tableName}, ${schemaName})`.execute(
      db,
    )
  ).rows
  if (columnRows.length === 0) return undefined
  const pkColumns = columnRows.filter((c) => Number(c.pk) > 0)
  const sqlText = (
    await sql<{
      sql: string | null
    }>`select sql from ${sql.id(schemaName, 'sqlite_master')} where type = 'table' and name = ${tableName}`.execute(db)
  ).rows[0]?.sql
  const withoutRowid = /\bwithout\s+rowid\b/i.test(sqlText ?? '')
  // table options follow the closing parenthesis: `) STRICT`, `) WITHOUT ROWID, STRICT`
  const strict = /\bstrict\b/i.test((sqlText ?? '').slice((sqlText ?? '').lastIndexOf(')') + 1))
  const columns = new Map<string, ColumnInfo>()
  for (const row of columnRows) {
    const dataType = (row.type ?? '').toLowerCase()
    const hidden = Number(row.hidden)
    // An INTEGER PRIMARY KEY is the rowid: SQLite fills it when omitted.
    const rowidAlias = !withoutRowid && pkColumns.length === 1 && Number(row.pk) > 0 && dataType === 'integer'
    const kind = columnKind('sqlite', dataType)
    columns.set(row.name, {
      name: row.name,
      dataType,
      kind,
      maxInteger: integerLimit('sqlite', dataType),
      generated: rowidAlias || row.dflt_value !== null || hidden === 2 || hidden === 3,
      computed: hidden === 2 || hidden === 3,
      primaryKey: Number(row.pk) > 0,
      uuid: false,
      sqlType: undefined,
      exact: false,
      numericAffinity: kind === 'other' && dataType !== '' && !(strict && dataType === 'any'),
    })
  }
  const indexRows = (
    await sql<SqliteIndexRow>`select il.name as name, il.partial as partial, ii.name as "column"
      from pragma_index_list(${tableName}, ${schemaName}) il join pragma_index_info(il.name, ${schemaName}) ii
      where il."unique" = 1 order by il.name, ii.seqno`.execute(db)
  ).rows
  return { table, columns, uniqueIndexes: groupIndexes(indexRows, pkColumns), rewrites: true }
}

function groupIndexes(rows: readonly SqliteIndexRow[], pkColumns: readonly SqliteColumnRow[]): UniqueIndex[] {
  const byName = new Map<string, { columns: (string | null)[]; partial: boolean }>()
  for (const row of rows) {
    const entry = byName.get(row.name) ?? { columns: [], partial: Number(row.partial) !== 0 }
    entry.columns.push(row.column)
    byName.set(row.name, entry)
  }
  const out: UniqueIndex[] = []
  const pk = [...pkColumns].sort((a, b) => Number(a.pk) - Number(b.pk)).map((c) => c.name)
  if (pk.length > 0) out.push({ name: 'PRIMARY KEY', columns: pk, primary: true })
  for (const [name, entry] of byName) {
    if (entry.partial || entry.columns.some((c) => c === null)) continue
    out.push({ name, columns: entry.columns as string[], primary: false })
  }
  return out
}

interface PgColumnRow {
  name: string
  type: string
  is_enum: boolean
  has_default: boolean
  identity: string
  generated: string
  formatted: string
}

interface PgIndexRow {
  name: string
  primary: boolean
  columns: string[]
}

async function postgresSchema(db: Kysely<any>, table: string): Promise<TableSchema | undefined> {
  const qualified = pgQualified(table)
  const columnRows = (
    await sql<PgColumnRow>`select a.attname as name, coalesce(bt.typname, t.typname)::text as type,
        coalesce(bt.typtype, t.typtype) = 'e' as is_enum, a.atthasdef as has_default,
        a.attidentity::text as identity, a.attgenerated::text as generated,
        format_type(a.atttypid, a.atttypmod) as formatted
      from pg_catalog.pg_attribute a
      join pg_catalog.pg_type t on t.oid = a.atttypid
      left join pg_catalog.pg_type bt on t.typtype = 'd' and bt.oid = t.typbasetype
      where a.attrelid = to_regclass(${qualified}) and a.attnum > 0 and not a.attisdropped
      order by a.attnum`.execute(db)
  ).rows
  if (columnRows.length === 0) return undefined
  const indexRows = (
    await sql<PgIndexRow>`select ix.indexrelid::regclass::text as name, ix.indisprimary as primary,
        array(select a.attname::text from unnest(ix.indkey) k join pg_catalog.pg_attribute a
          on a.attrelid = ix.indrelid and a.attnum = k) as columns
      from pg_catalog.pg_index ix
      where ix.indrelid = to_regclass(${qualified}) and ix.indisunique and ix.indpred is null
        and ix.indexprs is null and ix.indisvalid`.execute(db)
  ).rows
  // Internal triggers (foreign keys, deferred constraints) never change a row; user triggers and rules may.
  const rewriteRows = (
    await sql<{ rewrites: boolean }>`select c.relhasrules or exists (select 1 from pg_catalog.pg_trigger tg
        where tg.tgrelid = c.oid and not tg.tgisinternal) as rewrites
      from pg_catalog.pg_class c where c.oid = to_regclass(${qualified})`.execute(db)
  ).rows
  const pk = new Set(indexRows.filter((i) => i.primary).flatMap((i) => i.columns))
  const columns = new Map<string, ColumnInfo>()
  for (const row of columnRows) {
    columns.set(row.name, {
      name: row.name,
      dataType: row.type,
      kind: columnKind('postgres', row.type, row.is_enum),
      maxInteger: integerLimit('postgres', row.type),
      generated: row.has_default || row.identity !== '' || row.generated !== '',
      computed: row.generated !== '',
      primaryKey: pk.has(row.name),
      uuid: row.type === 'uuid',
      sqlType: row.formatted,
      exact: pgExact(row.formatted, row.is_enum),
      numericAffinity: false,
    })
  }
  const uniqueIndexes = indexRows.map((i) => ({ name: i.name, columns: i.columns, primary: i.primary }))
  return { table, columns, uniqueIndexes, rewrites: rewriteRows[0]?.rewrites !== false }
}

/**
 * Introspects one table: its columns (declared types, defaults, generated columns) and its unique
 * indexes. Resolves the name as queries do (PostgreSQL: the search_path; SQLite: the `main` schema
 * unless qualified).
 * @throws StockpyleError `E_SCHEMA` when the table does not exist.
 */
export async function introspectTable(store: string, db: Kysely<any>, dialect: SqlDialect, table: string): Promise<TableSchema> {
  const schema = dialect === 'sqlite' ? await sqliteSchema(db, table) : await postgresSchema(db, table)
  if (schema === undefined) {
    throw new SchemaError(`${store} store: table \`${table}\` does not exist (create it with createTable() or a migration)`, {})
  }
  return schema
}
