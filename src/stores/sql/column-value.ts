import { SerializationError, show } from '../../core/errors.js'
import { bytesClassRefusal } from './bytes-class.js'
import type { ColumnInfo } from './column-kind.js'
import { notALabel } from './enum-label-checks.js'
import { type EnumLabels, type LabelView, labelsFor } from './enum-labels.js'
import { jsonText } from './json-text.js'
import type { ModelMapping } from './model-mapping-types.js'
import { pgArrayValue } from './pg-array-value.js'
import { lengthRange, numericRange, realRange, timeRange } from './pg-ranges.js'
import { timestamptzText } from './pg-values.js'

const INT64_MAX = 9223372036854775807n
/** Text a SQLite column of NUMERIC affinity stores as a number (SQLite's whitespace around a decimal literal). */
const SQLITE_NUMERIC_TEXT = /^[ \t\n\v\f\r]*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[ \t\n\v\f\r]*$/

/** How messages of a put name an attribute: store, operation, model and attribute. */
export function where(m: ModelMapping, attribute: string): string {
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

/** @throws SerializationError naming the attribute and column when `range` says what the column stores instead. */
function checkRange(m: ModelMapping, attribute: string, column: ColumnInfo, value: unknown, range: string | undefined): void {
  if (range !== undefined) throw mismatch(m, attribute, column, value, range)
}

/** What a PostgreSQL `real` or `numeric(p,s)` column stores, when it does not store the finite number `value`. */
function numberRange(column: ColumnInfo, value: number): string | undefined {
  if (column.dataType === 'float4') return realRange(value)
  if (column.precision === undefined || column.scale === undefined) return undefined
  return numericRange(value, column.precision, column.scale, column.sqlType ?? 'numeric')
}

/** Bytes as the Buffer the drivers bind (a view of the same memory). */
function asBuffer(value: Uint8Array): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)
}

/** @throws SerializationError naming the attribute, the column and option `bytes` for bytes of another class than the column reads back. */
function checkBytesClass(m: ModelMapping, attribute: string, column: ColumnInfo, value: Uint8Array): void {
  const why = bytesClassRefusal(value, m.bufferColumns.has(column.name))
  if (why !== undefined) {
    throw new SerializationError(
      `${where(m, attribute)} holds ${show(value)} but column \`${column.name}\` of table \`${m.schema.table}\` ${why}`,
    )
  }
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
 * @throws SerializationError naming the attribute and column on a type mismatch, a value outside the
 *   range of the PostgreSQL type (pg-ranges.ts), a string that is not a label of an enum column as
 *   last read (the shared labels, or those `view` holds for the call: enum-labels.ts; enum-label-checks.ts:
 *   `notALabel`, which a put reads the labels again for), bytes of another class than the column reads back
 *   (bytes-class.ts), or an unstorable value.
 */
export function toColumnValue(m: ModelMapping, attribute: string, column: ColumnInfo, value: unknown, view?: LabelView): unknown {
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
      if (!sqlite) checkRange(m, attribute, column, value, numberRange(column, value))
      if (Object.is(value, -0)) {
        // PostgreSQL's float4/float8 keep the sign when sent as text; pg would send String(-0), "0"
        if (!sqlite && column.kind === 'real') return '-0'
        throw negativeZero(m, attribute, column)
      }
      return value
    case 'text':
      if (typeof value !== 'string') throw mismatch(m, attribute, column, value, 'strings')
      if (column.enumLabels !== undefined) {
        const labels = labelsFor(column.enumLabels, view) as EnumLabels
        if (!labels.has(value)) throw notALabel(where(m, attribute), column, m.schema.table, value, labels)
      }
      if (!sqlite) {
        const n = column.maxLength ?? column.paddedLength
        if (n !== undefined) checkRange(m, attribute, column, value, lengthRange(value, n, column.sqlType ?? column.dataType))
      }
      return checkText(m, attribute, value)
    case 'boolean':
      if (typeof value !== 'boolean') throw mismatch(m, attribute, column, value, 'booleans')
      return sqlite ? (value ? 1 : 0) : value
    case 'timestamp':
      if (!(value instanceof Date)) throw mismatch(m, attribute, column, value, 'Dates')
      if (Number.isNaN(value.getTime())) throw mismatch(m, attribute, column, value, 'valid Dates')
      if (sqlite) return value.toISOString()
      checkRange(m, attribute, column, value, timeRange(column.dataType, value))
      return column.dataType === 'timestamptz' ? timestamptzText(value) : value
    case 'json':
      return jsonText(value, where(m, attribute), m.dialect === 'postgres' && column.dataType === 'jsonb')
    case 'bytes':
      if (!(value instanceof Uint8Array)) throw mismatch(m, attribute, column, value, 'Uint8Array or Buffer bytes')
      checkBytesClass(m, attribute, column, value)
      return asBuffer(value)
    default:
      return otherValue(m, attribute, column, value)
  }
}

function otherValue(m: ModelMapping, attribute: string, column: ColumnInfo, value: unknown): unknown {
  if (m.dialect === 'sqlite') return untypedSqliteValue(m, attribute, column, value)
  if (column.elementType !== undefined || Array.isArray(value)) {
    return pgArrayValue(where(m, attribute), m.schema.table, column, value, m.bufferColumns.has(column.name), (text) =>
      checkText(m, attribute, text),
    )
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
      // pg sends bytes in binary, which only a bytea reads: the database refuses them (08P01, see sql-errors.ts)
      if (value instanceof Uint8Array) return asBuffer(value)
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
