import { type Kysely, sql } from 'kysely'
import { SchemaError } from '../../core/errors.js'
import { type ColumnInfo, columnKind, integerLimit, pgExact, type SqlDialect } from './column-kind.js'
import { EnumLabels } from './enum-labels.js'

/** A unique index (or the primary key) of a table. */
export interface UniqueIndex {
  readonly name: string
  /** Its key columns, in order (not PostgreSQL's `INCLUDE` columns, which are not unique). */
  readonly columns: readonly string[]
  readonly primary: boolean
  /** PostgreSQL `DEFERRABLE`: it cannot be an `ON CONFLICT` target and may hold duplicates until COMMIT. */
  readonly deferrable: boolean
  /** Key columns the index compares by a collation whose equality is not identity → why (see `ColumnInfo.looseEquality`). */
  readonly looseColumns: ReadonlyMap<string, string>
}

/** What SqlStore learns about a table by introspection (cached per table). */
export interface TableSchema {
  /** The table name as configured (`name` or `schema.name`). */
  readonly table: string
  /** Columns in table order, by name. */
  readonly columns: ReadonlyMap<string, ColumnInfo>
  /** Unique indexes that hold for every row: not partial, no expressions. The primary key is one of them (also when deferrable). */
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
  coll: string | null
}

/** Strings a collation other than BINARY may equate, and the collation that does (for messages). */
const SQLITE_PROBES = [
  ['A', 'NOCASE'],
  ['a ', 'RTRIM'],
] as const

/**
 * Why each text (or untyped) column's equality is not identity: SQLite reports no column's collation,
 * so a compound SELECT of no row of the column and two strings tells (UNION compares by the collation
 * of its left-most column). One query per table, in chunks under SQLite's result column limit.
 */
async function sqliteLooseColumns(db: Kysely<any>, table: string, names: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const probes = names.flatMap((name) => SQLITE_PROBES.map(([other, collation]) => ({ name, other, collation })))
  for (let i = 0; i < probes.length; i += 500) {
    const part = probes.slice(i, i + 500)
    const counts = sql.join(
      part.map(
        ({ name, other }, j) =>
          sql`(select count(*) from (select ${sql.id(name)} from ${sql.table(table)} where 0 union select 'a' union select ${other})) as ${sql.id(`p${j}`)}`,
      ),
    )
    const row = (await sql<Record<string, number | bigint>>`select ${counts}`.execute(db)).rows[0] ?? {}
    part.forEach(({ name, other, collation }, j) => {
      if (Number(row[`p${j}`]) < 2 && !out.has(name)) {
        out.set(name, `has a collation that compares 'a' and '${other}' as equal (such as ${collation})`)
      }
    })
  }
  return out
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
  const textual = columnRows.filter((row) => ['text', 'other'].includes(columnKind('sqlite', (row.type ?? '').toLowerCase())))
  const loose = await sqliteLooseColumns(
    db,
    table,
    textual.map((row) => row.name),
  )
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
      paddedLength: undefined,
      maxLength: undefined,
      scale: undefined,
      precision: undefined,
      maxBytes: undefined,
      looseEquality: loose.get(row.name),
      sqlType: undefined,
      keyCast: undefined,
      exact: false,
      numericAffinity: kind === 'other' && dataType !== '' && !(strict && dataType === 'any'),
      readCast: undefined,
      elementType: undefined,
      enumLabels: undefined,
    })
  }
  const indexRows = (
    await sql<SqliteIndexRow>`select il.name as name, il.partial as partial, ii.name as "column", ii.coll as coll
      from pragma_index_list(${tableName}, ${schemaName}) il join pragma_index_xinfo(il.name, ${schemaName}) ii
      where il."unique" = 1 and ii."key" = 1 order by il.name, ii.seqno`.execute(db)
  ).rows
  return { table, columns, uniqueIndexes: groupIndexes(indexRows, pkColumns), rewrites: true }
}

function groupIndexes(rows: readonly SqliteIndexRow[], pkColumns: readonly SqliteColumnRow[]): UniqueIndex[] {
  const byName = new Map<string, { columns: (string | null)[]; partial: boolean; loose: Map<string, string> }>()
  for (const row of rows) {
    const entry = byName.get(row.name) ?? { columns: [], partial: Number(row.partial) !== 0, loose: new Map<string, string>() }
    entry.columns.push(row.column)
    if (row.column !== null && row.coll !== null && row.coll.toUpperCase() !== 'BINARY') {
      entry.loose.set(row.column, `with the collation ${row.coll.toUpperCase()}`)
    }
    byName.set(row.name, entry)
  }
  const out: UniqueIndex[] = []
  const pk = [...pkColumns].sort((a, b) => Number(a.pk) - Number(b.pk)).map((c) => c.name)
  // (a text primary key also has its own index, sqlite_autoindex_…, which carries its collation)
  if (pk.length > 0) out.push({ name: 'PRIMARY KEY', columns: pk, primary: true, deferrable: false, looseColumns: new Map() })
  for (const [name, entry] of byName) {
    if (entry.partial || entry.columns.some((c) => c === null)) continue
    out.push({ name, columns: entry.columns as string[], primary: false, deferrable: false, looseColumns: entry.loose })
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
  base_formatted: string
  /** The typmod (less its 4-byte header) of the base type, also through domains: the n of `char(n)` and `varchar(n)`, numeric's precision and scale; `null` when none. */
  type_length: number | null
  /** `pg_type.typlen` of the base type: `name`'s is NAMEDATALEN (64), a byte more than it keeps. */
  type_bytes: number
  collation: string | null
  nondeterministic: boolean | null
  /** An array column (also a domain over one): its element's base type (through domains), whether the element is a domain, and that base type's array type; `null` otherwise. */
  element_type: string | null
  element_domain: boolean | null
  element_array: string | null
  /** The base type's oid (as text) and, for an enum, its labels in order; `null` for other types. */
  type_oid: string
  enum_labels: string[] | null
}

/** Element types (`typname`) whose arrays pg parses into arrays of what SqlStore reads the element as. */
const PARSED_ELEMENTS: ReadonlySet<string> = new Set(
  'bool bytea int2 int4 int8 oid float4 float8 numeric bpchar varchar text macaddr inet cidr timestamp date timestamptz json jsonb numrange uuid money time timetz'.split(
    ' ',
  ),
)

/**
 * The cast an array column is read through (see `ColumnInfo.readCast`): pg gives an array whose type it
 * has no parser for (arrays of enums, `citext`, `name`, domains, ranges, …) as its text `{a,b}`, which
 * a put would write back onto the object; and parses intervals and points into objects.
 */
function arrayReadCast(row: PgColumnRow): string | undefined {
  if (row.element_type === null) return undefined
  if (!PARSED_ELEMENTS.has(row.element_type)) return 'text[]'
  return row.element_domain === true && row.element_array !== null ? row.element_array : undefined
}

interface PgIndexRow {
  name: string
  primary: boolean
  deferrable: boolean
  columns: string[]
  loose_columns: string[]
  loose_collations: string[]
}

/** Why a PostgreSQL column's equality is not identity (see `ColumnInfo.looseEquality`). */
function pgLooseEquality(row: PgColumnRow): string | undefined {
  if (row.type === 'citext') return 'is citext, which compares case-insensitively'
  if (row.type === 'bpchar' && row.type_length === null) return 'is bpchar without a length, which ignores trailing spaces when comparing'
  if (row.nondeterministic === true) return `has the non-deterministic collation "${row.collation}"`
  return undefined
}

/** The scale of a numeric typmod (less its header): `(precision << 16) | scale`, the scale a signed 11-bit number (PostgreSQL 15 allows -1000..1000). */
function numericScale(typmod: number): number {
  const bits = typmod & 0x7ff
  return bits >= 0x400 ? bits - 0x800 : bits
}

async function postgresSchema(db: Kysely<any>, table: string): Promise<TableSchema | undefined> {
  const qualified = pgQualified(table)
  const columnRows =
    // A domain may be over another domain: its base type, and the typmod applied to it (the column's
    // own, else the one domain of the chain that has one), are found by walking pg_type.typbasetype.
    (
      await sql<PgColumnRow>`with recursive cols as (select a.* from pg_catalog.pg_attribute a
        where a.attrelid = to_regclass(${qualified}) and a.attnum > 0 and not a.attisdropped),
      chain(attnum, oid, typmod, depth) as (select c.attnum, c.atttypid, c.atttypmod, 0 from cols c
        union all select ch.attnum, t.typbasetype, case when ch.typmod >= 0 then ch.typmod else t.typtypmod end, ch.depth + 1
        from chain ch join pg_catalog.pg_type t on t.oid = ch.oid where t.typtype = 'd' and ch.depth < 100),
      base as (select distinct on (attnum) attnum, oid, typmod from chain order by attnum, depth desc),
      elem(attnum, oid, depth) as (select b.attnum, t.typelem, 0 from base b join pg_catalog.pg_type t on t.oid = b.oid
          where t.typcategory = 'A' and t.typlen = -1 and t.typelem <> 0
        union all select e.attnum, t.typbasetype, e.depth + 1
        from elem e join pg_catalog.pg_type t on t.oid = e.oid where t.typtype = 'd' and e.depth < 100),
      elem_base as (select distinct on (attnum) attnum, oid, depth from elem order by attnum, depth desc)
      select a.attname as name, bt.typname::text as type, bt.typtype = 'e' as is_enum, bt.typlen as type_bytes,
        bt.oid::text as type_oid, case when bt.typtype = 'e' then array(select e.enumlabel::text from pg_catalog.pg_enum e
          where e.enumtypid = bt.oid order by e.enumsortorder) end as enum_labels,
        et.typname::text as element_type, eb.depth > 0 as element_domain, format_type(et.typarray, null) as element_array,
        a.atthasdef as has_default, a.attidentity::text as identity, a.attgenerated::text as generated,
        format_type(a.atttypid, a.atttypmod) as formatted, format_type(b.oid, b.typmod) as base_formatted,
        case when b.typmod >= 4 then b.typmod - 4 end as type_length,
        co.collname::text as collation,
        (to_jsonb(co) ->> 'collisdeterministic') = 'false' as nondeterministic
      from cols a
      join base b on b.attnum = a.attnum
      join pg_catalog.pg_type bt on bt.oid = b.oid
      left join elem_base eb on eb.attnum = a.attnum
      left join pg_catalog.pg_type et on et.oid = eb.oid
      left join pg_catalog.pg_collation co on co.oid = a.attcollation
      order by a.attnum`.execute(db)
    ).rows
  if (columnRows.length === 0) return undefined
  const indexRows = (
    await sql<PgIndexRow>`with ix as (select ix.*, array(select a.attname::text
          from unnest(ix.indkey::int2[]) with ordinality k(attnum, n)
          join pg_catalog.pg_attribute a on a.attrelid = ix.indrelid and a.attnum = k.attnum
          where k.n <= ix.indnkeyatts order by k.n) as columns
        from pg_catalog.pg_index ix
        where ix.indrelid = to_regclass(${qualified}) and ix.indisunique and ix.indpred is null
          and ix.indexprs is null and ix.indisvalid),
      loose as (select ix.indexrelid, ix.columns[k.n] as col, co.collname::text as coll, k.n
        from ix cross join lateral unnest(ix.indcollation::oid[]) with ordinality k(coll, n)
        join pg_catalog.pg_collation co on co.oid = k.coll
        where (to_jsonb(co) ->> 'collisdeterministic') = 'false')
      select ix.indexrelid::regclass::text as name, ix.indisprimary as primary, not ix.indimmediate as deferrable, ix.columns,
        array(select l.col from loose l where l.indexrelid = ix.indexrelid order by l.n) as loose_columns,
        array(select l.coll from loose l where l.indexrelid = ix.indexrelid order by l.n) as loose_collations
      from ix`.execute(db)
  ).rows
  // Internal triggers (foreign keys, deferred constraints) never change a row; user triggers and rules may.
  const rewriteRows = (
    await sql<{ rewrites: boolean }>`select c.relhasrules or exists (select 1 from pg_catalog.pg_trigger tg
        where tg.tgrelid = c.oid and not tg.tgisinternal) as rewrites
      from pg_catalog.pg_class c where c.oid = to_regclass(${qualified})`.execute(db)
  ).rows
  const pk = new Set(indexRows.filter((i) => i.primary).flatMap((i) => i.columns))
  const columns = new Map<string, ColumnInfo>()
  // one set of labels per enum type, shared by its columns: reading them again updates them all
  const enums = new Map<string, EnumLabels>()
  for (const row of columnRows) {
    let labels: EnumLabels | undefined
    if (row.enum_labels !== null) {
      labels = enums.get(row.type_oid)
      if (labels === undefined) enums.set(row.type_oid, (labels = new EnumLabels(row.type_oid, row.base_formatted, row.enum_labels)))
    }
    columns.set(row.name, {
      name: row.name,
      dataType: row.type,
      kind: columnKind('postgres', row.type, row.is_enum),
      maxInteger: integerLimit('postgres', row.type),
      generated: row.has_default || row.identity !== '' || row.generated !== '',
      computed: row.generated !== '',
      primaryKey: pk.has(row.name),
      uuid: row.type === 'uuid',
      paddedLength: row.type === 'bpchar' && row.type_length !== null ? row.type_length : undefined,
      maxLength: row.type === 'varchar' && row.type_length !== null ? row.type_length : undefined,
      scale: row.type === 'numeric' && row.type_length !== null ? numericScale(row.type_length) : undefined,
      precision: row.type === 'numeric' && row.type_length !== null ? (row.type_length >> 16) & 0xffff : undefined,
      maxBytes: row.type === 'name' ? row.type_bytes - 1 : undefined,
      looseEquality: pgLooseEquality(row),
      sqlType: row.formatted,
      keyCast: row.base_formatted,
      exact: pgExact(row.formatted, row.is_enum),
      numericAffinity: false,
      readCast: arrayReadCast(row),
      elementType: row.element_type ?? undefined,
      enumLabels: labels,
    })
  }
  const uniqueIndexes = indexRows.map((i) => ({
    name: i.name,
    columns: i.columns,
    primary: i.primary,
    deferrable: i.deferrable,
    looseColumns: new Map(i.loose_columns.map((c, k) => [c, `with the non-deterministic collation "${i.loose_collations[k]}"`])),
  }))
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
    const err = new SchemaError(`${store} store: table \`${table}\` does not exist (create it with createTable() or a migration)`)
    missingTables.set(err, table)
    throw err
  }
  return schema
}

/** The errors of {@link introspectTable} for a table that does not exist, and that table. */
const missingTables = new WeakMap<object, string>()

/**
 * The table whose absence `err` reports, when it is {@link introspectTable}'s error for a missing
 * table (one error, cached and shared by every call that waited on that introspection); `undefined`
 * for any other error. Lets a call rethrow it in its own name, with its operation, model and key.
 */
export function missingTableOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? missingTables.get(err) : undefined
}
