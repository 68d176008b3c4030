import type { EnumLabels } from './enum-labels.js'

/** The SQL dialects SqlStore speaks. */
export type SqlDialect = 'sqlite' | 'postgres'

/**
 * How SqlStore reads and writes a column, derived from its declared type:
 *
 * | kind | JS value | SQLite declared type contains | PostgreSQL type |
 * |---|---|---|---|
 * | `integer` | `number` (integer) | `INT` (not `BIGINT`/`INT8`) | `int2`, `int4` |
 * | `bigint` | `bigint` | `BIGINT`, `INT8` | `int8` |
 * | `real` | `number` | `REAL`, `FLOA`, `DOUB` | `float4`, `float8` |
 * | `numeric` | `number` | `NUMERIC`, `DECIMAL` | `numeric` |
 * | `text` | `string` | `CHAR`, `CLOB`, `TEXT` | `text`, `varchar`, `bpchar`, `name`, `citext`, `uuid`, enums |
 * | `boolean` | `boolean` | `BOOL` | `bool` |
 * | `timestamp` | `Date` | `TIMESTAMP`, `DATETIME`, `DATE` | `timestamptz`, `timestamp`, `date` |
 * | `json` | anything (tagged JSON) | `JSON` | `json`, `jsonb` |
 * | `bytes` | `Uint8Array` / `Buffer` | `BLOB`, `BYTEA`, `BINARY` | `bytea` |
 * | `other` | what reads back exactly (see row-mapper.ts; PostgreSQL arrays: pg-array-value.ts) | anything else (or no type) | anything else |
 */
export type ColumnKind = 'integer' | 'bigint' | 'real' | 'numeric' | 'text' | 'boolean' | 'timestamp' | 'json' | 'bytes' | 'other'

/** One column of a table as SqlStore uses it. */
export interface ColumnInfo {
  readonly name: string
  /** The declared type as the database reports it (lowercased); PostgreSQL: the base type's `typname`, through any chain of domains. */
  readonly dataType: string
  readonly kind: ColumnKind
  /** Largest magnitude an integer column holds (PostgreSQL `int2`/`int4`/`int8`); `undefined` = no limit checked. */
  readonly maxInteger: bigint | undefined
  /** The database fills it when omitted (default, identity, autoincrement, SQLite rowid alias). */
  readonly generated: boolean
  /** Computed by the database (`GENERATED ALWAYS AS …`): never written, always read back. */
  readonly computed: boolean
  /** Part of the table's primary key. */
  readonly primaryKey: boolean
  /**
   * A `uuid` column (or a domain over it): PostgreSQL reads any spelling of a UUID and gives back the
   * lower-case, dashed one, so only that spelling is a key value.
   */
  readonly uuid: boolean
  /**
   * PostgreSQL `char(n)` (or a domain over it): the length n, in characters, every value comes back
   * padded to with spaces, so only strings of exactly n characters are key values. `undefined` for
   * other columns.
   */
  readonly paddedLength: number | undefined
  /**
   * PostgreSQL `varchar(n)` (or a domain over it): n, in characters. A longer value is refused by the
   * database, except that spaces beyond n are cut silently, so a longer string is never a key value.
   */
  readonly maxLength: number | undefined
  /**
   * PostgreSQL `numeric(p,s)` (or a domain over it): s, the decimals it keeps (it rounds the rest), so
   * a number with more decimals is never a key value; a negative s (PostgreSQL 15+) rounds to a
   * multiple of 10^-s. `undefined` for other columns.
   */
  readonly scale: number | undefined
  /**
   * PostgreSQL `numeric(p,s)` (or a domain over it): p, the digits it keeps in all (a number of more
   * than p - s digits before the point, once rounded to s decimals, is refused). `undefined` for other columns.
   */
  readonly precision: number | undefined
  /**
   * PostgreSQL `name` (or a domain over it): the bytes (UTF-8) it keeps, 63; it cuts longer values
   * silently, so a longer string is never a key value. `undefined` for other columns.
   */
  readonly maxBytes: number | undefined
  /**
   * Why the column's equality is not identity (`citext`, `bpchar` without a length, a non-deterministic
   * collation; SQLite: a collation that equates 'a' and 'A' or 'a' and 'a '), as a phrase for
   * messages: two key values the database treats as one would be two objects in the caches, so a key
   * column must not have one. `undefined` when equal values are the same text.
   */
  readonly looseEquality: string | undefined
  /** PostgreSQL's own spelling of the column type (`format_type`), used to cast key arrays; `undefined` on SQLite. */
  readonly sqlType: string | undefined
  /**
   * PostgreSQL: the type a lookup's array of key values is cast to — the column's base type through
   * every domain (`= ANY($1::base[])`: PostgreSQL has no equality for an array of a domain over an
   * enum). `undefined` on SQLite.
   */
  readonly keyCast: string | undefined
  /**
   * The database stores every value SqlStore accepts for this column exactly as sent, so a put need not
   * read it back (PostgreSQL: integers, `text`, `varchar` without a length, `citext`, enums, `boolean`,
   * `double precision`, `timestamptz` to the millisecond or finer, JSON and bytes). `false` for types
   * that round, pad, trim or normalise (`real`, `numeric`, `char(n)`, `varchar(n)` — trailing spaces
   * beyond n are cut silently —, `uuid`, `date`, `timestamp`, `interval`, domains, …) and for every
   * SQLite column.
   */
  readonly exact: boolean
  /**
   * SQLite, kind `other`: the column turns text that looks like a number, and integral reals, into
   * integers (NUMERIC affinity: a declared type SqlStore does not know, or `ANY` outside a STRICT
   * table). `false` for a column without a declared type or `ANY` in a STRICT table, which store every
   * value as it is bound, and for PostgreSQL.
   */
  readonly numericAffinity: boolean
  /**
   * PostgreSQL array columns pg cannot parse into what SqlStore reads: the array type reads and
   * RETURNING cast the column to (`text[]` for arrays of enums, `citext`, `name`, `circle`, ranges,
   * intervals, points, …; the base type's array for arrays of a domain over a type pg parses).
   * `undefined` for other columns.
   */
  readonly readCast: string | undefined
  /**
   * PostgreSQL array column (also a domain over an array, or an array of a domain): its elements' base
   * type (`typname`, through any domains: `int4` for `int4[]` and for an array of a domain over int4),
   * which decides what the elements may be (see {@link elementKind}). `undefined` for a column that is
   * not an array, and on SQLite.
   */
  readonly elementType: string | undefined
  /**
   * PostgreSQL enum column (also a domain over an enum): the type's labels, which a string must be one
   * of to be stored or to match a row (see enum-labels.ts, enum-label-checks.ts). `undefined` for other columns, arrays of
   * enums, and on SQLite.
   */
  readonly enumLabels: EnumLabels | undefined
}

const PG_KINDS: Record<string, ColumnKind> = {
  int2: 'integer',
  int4: 'integer',
  int8: 'bigint',
  float4: 'real',
  float8: 'real',
  numeric: 'numeric',
  text: 'text',
  varchar: 'text',
  bpchar: 'text',
  name: 'text',
  citext: 'text',
  uuid: 'text',
  bool: 'boolean',
  timestamptz: 'timestamp',
  timestamp: 'timestamp',
  date: 'timestamp',
  json: 'json',
  jsonb: 'json',
  bytea: 'bytes',
}

const PG_LIMITS: Record<string, bigint> = { int2: 32767n, int4: 2147483647n, int8: 9223372036854775807n }

/** The kind of a SQLite column from its declared type (SQLite's own affinity rules, refined). */
function sqliteKind(declared: string): ColumnKind {
  const t = declared.toLowerCase()
  if (t === '') return 'other'
  if (t.includes('bool')) return 'boolean'
  if (t.includes('json')) return 'json'
  if (t.includes('bigint') || t.includes('int8')) return 'bigint'
  if (t.includes('date') || t.includes('time')) return 'timestamp'
  if (t.includes('int')) return 'integer'
  if (t.includes('char') || t.includes('clob') || t.includes('text')) return 'text'
  if (t.includes('blob') || t.includes('bytea') || t.includes('binary')) return 'bytes'
  if (t.includes('real') || t.includes('floa') || t.includes('doub')) return 'real'
  if (t.includes('numeric') || t.includes('decimal')) return 'numeric'
  return 'other'
}

/**
 * The kind of a column. `dataType` is SQLite's declared type or PostgreSQL's base type name
 * (`typname`); `isEnum` marks a PostgreSQL enum (read and written as text).
 */
export function columnKind(dialect: SqlDialect, dataType: string, isEnum = false): ColumnKind {
  if (dialect === 'sqlite') return sqliteKind(dataType)
  if (isEnum) return 'text'
  return PG_KINDS[dataType] ?? 'other'
}

/**
 * The kind of the elements of a PostgreSQL array column, from {@link ColumnInfo.elementType}: an
 * element is what a column of that kind takes (`text[]` strings, `int4[]` integers, …). `undefined`
 * for a column that is not an array.
 */
export function elementKind(column: ColumnInfo): ColumnKind | undefined {
  return column.elementType === undefined ? undefined : (PG_KINDS[column.elementType] ?? 'other')
}

/** `format_type` spellings of the PostgreSQL types that store what SqlStore sends unchanged (see {@link ColumnInfo.exact}). */
const PG_EXACT =
  /^(smallint|integer|bigint|text|citext|boolean|double precision|jsonb?|bytea|character varying|timestamp(\([3-6]\))? with time zone)$/

/** Whether a PostgreSQL column stores every value SqlStore sends as is, from its `format_type` spelling. */
export function pgExact(formatted: string, isEnum: boolean): boolean {
  return isEnum || PG_EXACT.test(formatted)
}

/** The integer range of a PostgreSQL integer type (`undefined` for SQLite and other types). */
export function integerLimit(dialect: SqlDialect, dataType: string): bigint | undefined {
  if (dialect === 'sqlite') return sqliteKind(dataType) === 'integer' || sqliteKind(dataType) === 'bigint' ? PG_LIMITS.int8 : undefined
  return PG_LIMITS[dataType]
}
