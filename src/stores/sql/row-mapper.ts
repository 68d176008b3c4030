import { InvalidKeyError, MissingKeyAttributeError, SchemaError, SerializationError, show } from '../../core/errors.js'
import { isKeyValue, isOwnAttribute, notOwnKeyAttribute } from '../../core/key-encoding.js'
import { messageOf } from '../../core/unavailable-unless-ours.js'

export { isKeyValue }

import type { KeyInfo, ModelInfo } from '../../core/registry.js'
import type { ColumnInfo, SqlDialect } from './column-kind.js'
import { fromParsedJson, fromTaggedJson } from './json-codec.js'
import { jsonText } from './json-text.js'
import { checkKeyText } from './key-text.js'
import { arrayFromDriver, pgArrayValue } from './pg-array-value.js'
import { timestamptzText } from './pg-values.js'
import type { StatementCache } from './statement-cache.js'
import type { TableSchema } from './table-schema.js'

/** How a bytes column comes back: Node's `Buffer` (default) or a plain `Uint8Array`. */
export type BytesType = 'Uint8Array' | 'Buffer'

/** Everything needed to turn a model's objects into rows of its table and back. */
export interface ModelMapping {
  readonly store: string
  readonly info: ModelInfo
  readonly dialect: SqlDialect
  readonly schema: TableSchema
  /** Column of each attribute that has one. */
  readonly columnOf: ReadonlyMap<string, ColumnInfo>
  /** Attribute of each column. */
  readonly attributeOf: ReadonlyMap<string, string>
  /** For each declared key (same order as `info.keys`), the columns of its fields (same order as `spec.fields`). */
  readonly keyColumns: ReadonlyMap<KeyInfo, readonly ColumnInfo[]>
  /** Columns whose bytes (PostgreSQL: also a bytea array's elements) come back as `Buffer`. */
  readonly bufferColumns: ReadonlySet<string>
  /** Maps an attribute name to its column name (identity, or snake_case with `camelCase`). */
  readonly toColumnName: (attribute: string) => string
  /** The table's statements compiled once per shape (one-row upserts). */
  readonly statements: StatementCache
}

/** A row to write: column name → driver value, for the attributes the object defines. */
export type RowValues = Record<string, unknown>

const INT64_MAX = 9223372036854775807n
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER)
/** Text a SQLite column of NUMERIC affinity stores as a number (SQLite's whitespace around a decimal literal). */
const SQLITE_NUMERIC_TEXT = /^[ \t\n\v\f\r]*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[ \t\n\v\f\r]*$/
const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i
const LOCAL_DATE_TIME = /^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$/

function where(m: ModelMapping, attribute: string): string {
  return `${m.store} store put of model \`${m.info.name}\`: attribute \`${attribute}\``
}

function mismatch(m: ModelMapping, attribute: string, column: ColumnInfo, value: unknown, expected: string): SerializationError {
  return new SerializationError(
    `${where(m, attribute)} holds ${show(value)} but column \`${column.name}\` of table \`${m.schema.table}\` is ${column.dataType || 'untyped'} (${column.kind}), which stores ${expected}`,
  )
}

/** -0 into a column that gives it back as 0 (SQLite numbers, integer and numeric types, pg's `String(-0)`). */
function negativeZero(m: ModelMapping, attribute: string, column: ColumnInfo): SerializationError {
  const keep = m.dialect === 'postgres' ? 'declare the column double precision or json' : 'use a json column'
  return new SerializationError(
    `${where(m, attribute)} holds -0 but column \`${column.name}\` of table \`${m.schema.table}\` is ${column.dataType || 'untyped'} (${column.kind}), which gives it back as 0: store 0, or ${keep} to keep the sign`,
  )
}

function checkText(m: ModelMapping, attribute: string, value: string): string {
  if (!value.isWellFormed())
    throw new SerializationError(`${where(m, attribute)} holds a string that is not well-formed UTF-16 ${show(value)}`)
  if (m.dialect === 'postgres' && value.includes('\0')) {
    throw new SerializationError(`${where(m, attribute)} holds a string with a NUL character, which PostgreSQL text cannot store`)
  }
  return value
}

/**
 * Converts one attribute value into what the driver binds for `column`. Values must have the JS type
 * of the column's kind (see {@link ColumnKind}); nothing is coerced silently.
 * @throws SerializationError naming the attribute and column on a type mismatch or an unstorable value.
 */
export function toColumnValue(m: ModelMapping, attribute: string, column: ColumnInfo, value: unknown): unknown {
  if (value === null) return null
  const sqlite = m.dialect === 'sqlite'
  switch (column.kind) {
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) throw mismatch(m, attribute, column, value, 'integer numbers')
      if (
        !Number.isSafeInteger(value) ||
        (column.maxInteger !== undefined && Math.abs(value) > Number(column.maxInteger) + (value < 0 ? 1 : 0))
      ) {
        throw mismatch(m, attribute, column, value, `integers up to ${column.maxInteger ?? Number.MAX_SAFE_INTEGER}`)
      }
      if (Object.is(value, -0)) throw negativeZero(m, attribute, column)
      return value
    case 'bigint':
      if (typeof value !== 'bigint') throw mismatch(m, attribute, column, value, 'bigints')
      if (value > INT64_MAX || value < -INT64_MAX - 1n) throw mismatch(m, attribute, column, value, '64-bit integers')
      return sqlite ? value : value.toString()
    case 'real':
    case 'numeric':
      if (typeof value !== 'number' || !Number.isFinite(value)) throw mismatch(m, attribute, column, value, 'finite numbers')
      if (Object.is(value, -0)) {
        // PostgreSQL's float4/float8 keep the sign when sent as text; pg would send String(-0), "0"
        if (!sqlite && column.kind === 'real') return '-0'
        throw negativeZero(m, attribute, column)
      }
      return value
    case 'text':
      if (typeof value !== 'string') throw mismatch(m, attribute, column, value, 'strings')
      return checkText(m, attribute, value)
    case 'boolean':
      if (typeof value !== 'boolean') throw mismatch(m, attribute, column, value, 'booleans')
      return sqlite ? (value ? 1 : 0) : value
    case 'timestamp':
      if (!(value instanceof Date)) throw mismatch(m, attribute, column, value, 'Dates')
      if (Number.isNaN(value.getTime())) throw mismatch(m, attribute, column, value, 'valid Dates')
      if (sqlite) return value.toISOString()
      return column.dataType === 'timestamptz' ? timestamptzText(value) : value
    case 'json':
      return jsonText(value, where(m, attribute), m.dialect === 'postgres' && column.dataType === 'jsonb')
    case 'bytes':
      if (!(value instanceof Uint8Array)) throw mismatch(m, attribute, column, value, 'Uint8Array or Buffer bytes')
      return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)
    default:
      return otherValue(m, attribute, column, value)
  }
}

function otherValue(m: ModelMapping, attribute: string, column: ColumnInfo, value: unknown): unknown {
  if (m.dialect === 'sqlite') return untypedSqliteValue(m, attribute, column, value)
  if (column.elementType !== undefined || Array.isArray(value)) {
    return pgArrayValue(where(m, attribute), m.schema.table, column, value, (text) => checkText(m, attribute, text))
  }
  switch (typeof value) {
    case 'string':
      return checkText(m, attribute, value)
    case 'number':
      if (Object.is(value, -0)) throw negativeZero(m, attribute, column)
      return value
    case 'bigint':
    case 'boolean':
      return value
    default:
      if (value instanceof Uint8Array) return toColumnValue(m, attribute, { ...column, kind: 'bytes' }, value)
      if (value instanceof Date) return toColumnValue(m, attribute, { ...column, kind: 'timestamp' }, value)
      throw mismatch(m, attribute, column, value, 'plain values; declare it json to store nested values')
  }
}

/**
 * A value for a SQLite column of kind `other`, which keeps no type of its own: only what reads back
 * exactly (see {@link fromColumnValue}) is accepted. Without a declared type (or `ANY` in a STRICT
 * table) SQLite stores values as bound: text, numbers (also `-0`) and Buffers come back; with NUMERIC
 * affinity numeric text and integral numbers become integers.
 */
function untypedSqliteValue(m: ModelMapping, attribute: string, column: ColumnInfo, value: unknown): unknown {
  const refuse = (why: string, declare: string) =>
    new SerializationError(
      `${where(m, attribute)} holds ${show(value)} but column \`${column.name}\` of table \`${m.schema.table}\` has ${
        column.dataType === '' ? 'no declared type' : `the declared type ${column.dataType} (NUMERIC affinity)`
      }, ${why}: declare it ${declare}`,
    )
  switch (typeof value) {
    case 'string':
      if (column.numericAffinity && SQLITE_NUMERIC_TEXT.test(value)) throw refuse('where SQLite stores numeric text as a number', 'TEXT')
      return checkText(m, attribute, value)
    case 'number':
      if (Number.isNaN(value)) throw refuse('where SQLite stores NaN as NULL', 'JSON')
      if (column.numericAffinity && Object.is(value, -0)) throw refuse('where SQLite stores it as the integer 0', 'JSON')
      if (column.numericAffinity && Number.isInteger(value) && !Number.isSafeInteger(value) && Math.abs(value) <= 2 ** 63) {
        throw refuse('where SQLite stores it as an integer, which reads back as a bigint', 'REAL')
      }
      return value
    case 'bigint':
      throw refuse('which reads integers back as numbers up to 2^53', 'BIGINT')
    case 'boolean':
      throw refuse('where SQLite stores it as the integer 1 or 0', 'BOOLEAN')
    default:
      if (Buffer.isBuffer(value)) return value
      if (value instanceof Uint8Array) throw refuse('which reads bytes back as a Buffer', "BLOB (with the option bytes: 'Uint8Array')")
      if (value instanceof Date) throw refuse('where it would be stored as text', 'TIMESTAMP')
      throw mismatch(m, attribute, column, value, 'plain values; declare it json to store nested values')
  }
}

/** How messages name a column when reading it. */
export function columnWhere(m: ModelMapping, column: ColumnInfo): string {
  return `${m.store} store: column \`${column.name}\` of table \`${m.schema.table}\``
}

/**
 * Decodes a JSON column's value: SQLite text is parsed (a bigint is a number) and decoded in place,
 * as nobody else holds the parse; PostgreSQL's json/jsonb comes parsed by the driver, as part of a row
 * that may be read again, so it is decoded into new arrays and objects. `at` names the column for
 * messages.
 * @throws SerializationError when SQLite text is not JSON.
 */
export function readJson(dialect: SqlDialect, at: string, raw: unknown): unknown {
  let parsed = raw
  if (dialect === 'sqlite') {
    if (typeof raw === 'bigint') return Number(raw)
    if (typeof raw !== 'string') return raw
    try {
      parsed = JSON.parse(raw)
    } catch (err) {
      throw new SerializationError(`${at} holds text that is not JSON ${show(raw)}`, { cause: err })
    }
    return fromParsedJson(parsed, at)
  }
  return fromTaggedJson(parsed, at)
}

function parseDate(text: string): Date | undefined {
  // What SqlStore writes ends in Z; SQLite's CURRENT_TIMESTAMP and datetime() give UTC without a zone.
  const zoned = text.endsWith('Z') || !(text.length > 10 && LOCAL_DATE_TIME.test(text))
  const date = new Date(zoned ? text : `${text.replace(' ', 'T')}Z`)
  return Number.isNaN(date.getTime()) ? undefined : date
}

function toNumber(raw: unknown): unknown {
  if (typeof raw === 'bigint' || (typeof raw === 'string' && raw.trim() !== '' && !Number.isNaN(Number(raw)))) return Number(raw)
  return raw
}

/**
 * Converts what the driver returned for `column` into the attribute's value: int8 → `bigint` (also
 * from pg's strings), SQLite 0/1 → boolean, SQLite text → `Date`, JSON → tagged-JSON-decoded value,
 * bytes → a fresh `Uint8Array` (or `Buffer`); PostgreSQL arrays as {@link arrayFromDriver}. `null` stays `null`.
 * @throws SerializationError when a JSON column holds text that is not JSON (or a json array malformed
 *   tagged JSON), or an int8 column comes back as a number past 2^53 (a driver that rounds 64-bit integers).
 */
export function fromColumnValue(m: ModelMapping, column: ColumnInfo, raw: unknown): unknown {
  if (raw === null || raw === undefined) return null
  switch (column.kind) {
    case 'integer':
    case 'real':
    case 'numeric':
      return toNumber(raw)
    case 'bigint':
      if (typeof raw === 'number' && Number.isInteger(raw)) {
        // A driver that returns 64-bit integers as numbers has already rounded those past 2^53.
        if (!Number.isSafeInteger(raw)) {
          throw new SerializationError(
            `${columnWhere(m, column)} came back from the driver as the number ${raw}, past 2^53, so its exact value is lost: make the driver return 64-bit integers as bigints (better-sqlite3: database.defaultSafeIntegers(true))`,
          )
        }
        return BigInt(raw)
      }
      if (typeof raw === 'string' && /^-?\d+$/.test(raw)) return BigInt(raw)
      return raw
    case 'boolean':
      if (typeof raw === 'number' || typeof raw === 'bigint') return raw !== 0 && raw !== 0n
      if (typeof raw === 'string' && /^(t|true|1|f|false|0)$/i.test(raw)) return /^(t|true|1)$/i.test(raw)
      return raw
    case 'timestamp':
      if (raw instanceof Date) return raw
      if (typeof raw === 'string') return parseDate(raw) ?? raw
      if (typeof raw === 'number' || typeof raw === 'bigint') return new Date(Number(raw))
      return raw
    case 'json':
      return readJson(m.dialect, columnWhere(m, column), raw)
    case 'bytes':
      if (raw instanceof Uint8Array) return m.bufferColumns.has(column.name) ? Buffer.from(raw) : new Uint8Array(raw)
      return raw
    case 'text':
      return raw
    default:
      if (column.elementType !== undefined && Array.isArray(raw)) {
        return arrayFromDriver(column, raw, m.bufferColumns.has(column.name), columnWhere(m, column))
      }
      return typeof raw === 'bigint' && raw >= BigInt(Number.MIN_SAFE_INTEGER) && raw <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(raw) : raw
  }
}

/**
 * Whether a key value could equal a value of `column` as SqlStore reads it back. Lookups that cannot
 * match are misses without a query (and never reach the database as a cast error).
 */
export function canMatch(m: ModelMapping, column: ColumnInfo, value: unknown): boolean {
  switch (column.kind) {
    case 'integer':
      return (
        typeof value === 'number' &&
        Number.isSafeInteger(value) &&
        (column.maxInteger === undefined || Math.abs(value) <= Number(column.maxInteger))
      )
    case 'bigint':
      return typeof value === 'bigint' && value <= INT64_MAX && value >= -INT64_MAX - 1n
    case 'real':
    case 'numeric':
      return typeof value === 'number'
    case 'text':
      return typeof value === 'string' && !(m.dialect === 'postgres' && value.includes('\0')) && (!column.uuid || UUID.test(value))
    case 'boolean':
      return typeof value === 'boolean'
    case 'other':
      if (m.dialect === 'postgres') return !(typeof value === 'string' && value.includes('\0'))
      // SQLite reads an integer back as a number up to 2^53 and as a bigint beyond, never as a boolean
      if (typeof value === 'bigint') return (value > SAFE_MAX || value < -SAFE_MAX) && value <= INT64_MAX && value >= -INT64_MAX - 1n
      return typeof value !== 'boolean'
    default:
      return false
  }
}

/** The driver value of a key value for `column` (what a WHERE clause binds). */
export function keyParam(m: ModelMapping, value: unknown): unknown {
  if (typeof value === 'boolean' && m.dialect === 'sqlite') return value ? 1 : 0
  if (typeof value === 'bigint' && m.dialect === 'postgres') return value.toString()
  return value
}

/** The result of preparing an object for writing (a class: see contracts/batch-records.ts). */
export class PreparedRow {
  constructor(
    readonly values: RowValues,
    /** Sorted column names present in `values` (rows with the same set share one INSERT). */
    readonly signature: string,
    /** True when the primary key is left to the database. */
    readonly generatedPrimary: boolean,
  ) {}
}

function missingKey(m: ModelMapping, field: string, value: unknown, operation: string): never {
  if (value === undefined || value === null) {
    throw new MissingKeyAttributeError(
      `${m.store} store ${operation} of model \`${m.info.name}\` got an object without key attribute \`${field}\` (${show(value)})`,
    )
  }
  throw new InvalidKeyError(
    `${m.store} store ${operation} of model \`${m.info.name}\` got an object whose key attribute \`${field}\` holds ${show(value)}: key values are strings (well-formed), finite numbers, bigints or booleans`,
  )
}

/**
 * Checks an object's key attributes. A key attribute may be `undefined` on put only when its column
 * is filled by the database (a default, identity or rowid); never on delete.
 * @throws MissingKeyAttributeError / InvalidKeyError naming the attribute (see also {@link checkKeyText}).
 */
export function checkKeyAttributes(m: ModelMapping, obj: object, operation: 'put' | 'delete'): void {
  const source = obj as Record<string, unknown>
  for (const [spec, columns] of m.keyColumns) {
    if (operation === 'delete' && spec !== m.info.primary) continue
    for (let i = 0; i < spec.fields.length; i++) {
      const field = spec.fields[i] as string
      const value = source[field]
      if (value === undefined && operation === 'put' && columns[i]?.generated === true) continue
      if (!isKeyValue(value)) missingKey(m, field, value, operation)
      if (!isOwnAttribute(obj, field)) throw notOwnKeyAttribute(`${m.store} store ${operation} of model \`${m.info.name}\``, field)
      checkKeyText(m, columns[i] as ColumnInfo, field, value, operation)
    }
  }
}

/**
 * `source[attribute]`.
 * @throws SerializationError naming the attribute when reading it throws (a getter), the error as cause.
 */
function readAttribute(m: ModelMapping, source: Record<string, unknown>, attribute: string): unknown {
  try {
    return source[attribute]
  } catch (err) {
    const getter = typeof Object.getOwnPropertyDescriptor(source, attribute)?.get === 'function'
    throw new SerializationError(
      `${where(m, attribute)} could not be read: ${getter ? 'its getter' : 'reading it'} threw (${messageOf(err)})`,
      {
        cause: err,
      },
    )
  }
}

/**
 * Converts an object into the row to upsert: every own enumerable attribute that is not `undefined`,
 * each into its column. Computed columns are skipped (the database fills them).
 * @throws StockpyleError `E_SCHEMA` for an attribute with no column; SerializationError for a value the column cannot store.
 */
export function objectToRow(m: ModelMapping, obj: object): PreparedRow {
  checkKeyAttributes(m, obj, 'put')
  const source = obj as Record<string, unknown>
  const values: RowValues = {}
  const names: string[] = []
  for (const attribute of Object.keys(source)) {
    const value = readAttribute(m, source, attribute)
    if (value === undefined) continue
    const column = m.columnOf.get(attribute)
    if (column === undefined) {
      const expected = m.toColumnName(attribute)
      throw new SchemaError(
        `${where(m, attribute)} has no column in table \`${m.schema.table}\` (expected a column \`${expected}\`): add the column, or remove the attribute; it would be lost`,
      )
    }
    if (column.computed) continue
    values[column.name] = toColumnValue(m, attribute, column, value)
    names.push(column.name)
  }
  const primary = m.keyColumns.get(m.info.primary) ?? []
  const generatedPrimary = primary.some((c) => !(c.name in values))
  names.sort()
  return new PreparedRow(values, names.join('\u0000'), generatedPrimary)
}
