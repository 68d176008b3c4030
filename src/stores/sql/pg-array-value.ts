/**
 * The values SqlStore binds for PostgreSQL array columns, and what it makes of the arrays pg returns.
 * pg sends an array as the text of an array literal, each element as its own text, which PostgreSQL
 * reads as the element type: `7` in a `text[]` would be stored as `'7'`, `'t'` or `1` in a `bool[]` as
 * true, `'"x"'` in a `jsonb[]` as the JSON string `x`. So an element must be what a column of the
 * element type takes (see {@link elementKind}), and a value for an array column must be an array;
 * anything else is refused before anything is sent.
 */
import { SerializationError, show } from '../../core/errors.js'
import { bytesClassRefusal } from './bytes-class.js'
import { type ColumnInfo, type ColumnKind, elementKind } from './column-kind.js'
import { fromTaggedJson } from './json-codec.js'
import { jsonText } from './json-text.js'
import { integerElementRange, realRange, timeRange } from './pg-ranges.js'
import { bigintElements, timestamptzText } from './pg-values.js'

/** What the elements of an array of each kind are (the end of a message naming the column). */
const ELEMENTS: Readonly<Record<ColumnKind, string>> = {
  text: 'whose elements are strings (another value would be stored as its text)',
  integer: 'whose elements are integer numbers',
  bigint: 'which holds 64-bit integers and gives them back as bigints (as an int8 column): store bigints (5n)',
  real: 'whose elements are numbers',
  numeric: 'whose elements are finite numbers (as a numeric column takes)',
  boolean: "whose elements are booleans (PostgreSQL would read 't' or 1 as true)",
  timestamp: 'whose elements are Dates',
  json: 'whose elements are any values a json column takes',
  bytes: 'whose elements are bytes (Uint8Array or Buffer)',
  other:
    'whose elements may be null, strings, numbers, booleans, bigints, bytes and arrays of those: declare it json to store nested values',
}

const NEGATIVE_ZERO = 'which gives it back as 0: store 0, or declare the column double precision[] or json to keep the sign'
const INVALID_DATE = 'which no column stores: store a valid Date or null'
const HOLE = 'which pg would send as NULL: store null'
const EMPTY_INNER = 'where an inner array must have elements: PostgreSQL stores [[]] as [] and refuses inner arrays of different lengths'
const LOCAL_DATE = 'where pg would send it as text in local time: store date.toISOString(), or declare the column timestamptz[]'

/**
 * Why `v` (neither null nor an array) cannot be an element of an array of `kind` whose elements' base
 * type is `type` (pg-ranges.ts: the ranges of PostgreSQL's types); `undefined` when it can.
 */
function refusal(kind: ColumnKind, type: string, buffers: boolean, v: unknown): string | undefined {
  switch (kind) {
    case 'text':
      return typeof v === 'string' ? undefined : ELEMENTS.text
    case 'integer':
      if (typeof v !== 'number' || !Number.isInteger(v)) return ELEMENTS.integer
      return Object.is(v, -0) ? NEGATIVE_ZERO : integerElementRange(type, v)
    case 'bigint':
      return typeof v === 'bigint' ? integerElementRange(type, v) : ELEMENTS.bigint
    case 'real':
      if (typeof v !== 'number') return ELEMENTS.real
      return type === 'float4' ? inRange(realRange(v)) : undefined
    case 'numeric':
      if (typeof v !== 'number' || !Number.isFinite(v)) return ELEMENTS.numeric
      return Object.is(v, -0) ? NEGATIVE_ZERO : undefined
    case 'boolean':
      return typeof v === 'boolean' ? undefined : ELEMENTS.boolean
    case 'timestamp':
      if (!(v instanceof Date)) return ELEMENTS.timestamp
      return Number.isNaN(v.getTime()) ? INVALID_DATE : inRange(timeRange(type, v))
    case 'bytes':
      if (!(v instanceof Uint8Array)) return ELEMENTS.bytes
      return bytesClassRefusal(v, buffers) === undefined ? undefined : `which ${bytesClassRefusal(v, buffers)}`
    case 'json':
      return v === undefined ? HOLE : undefined
    default:
      if (typeof v === 'string' || typeof v === 'bigint' || typeof v === 'boolean' || v instanceof Uint8Array) return undefined
      if (typeof v === 'number') return Object.is(v, -0) ? NEGATIVE_ZERO : undefined
      if (v instanceof Date) return Number.isNaN(v.getTime()) ? INVALID_DATE : LOCAL_DATE
      return ELEMENTS.other
  }
}

/** The end of a message for an element out of the range `range` of what the element type holds. */
function inRange(range: string | undefined): string | undefined {
  return range === undefined ? undefined : `whose elements are ${range}`
}

/** Where an array is written: the start of messages (store, operation, model, attribute), the table, and the check of a string element. */
interface Target {
  readonly where: string
  readonly table: string
  readonly column: ColumnInfo
  /** Whether a bytea array's elements come back as Buffer (option `bytes`), else as plain Uint8Array. */
  readonly buffers: boolean
  readonly text: (value: string) => void
}

function refuse(t: Target, holds: string, because: string): never {
  const type = t.column.sqlType ?? t.column.dataType
  throw new SerializationError(`${t.where} holds ${holds} but column \`${t.column.name}\` of table \`${t.table}\` is ${type}, ${because}`)
}

/** Checks every element (nested arrays included) of an array of `kind`; `path` is the enclosing arrays' indexes (`[1]`). */
function checkElements(t: Target, kind: ColumnKind, values: readonly unknown[], path: string): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (v === null) continue
    if (Array.isArray(v)) {
      if (v.length === 0) refuse(t, `an empty array in element ${path}[${i}]`, EMPTY_INNER)
      checkElements(t, kind, v, `${path}[${i}]`)
      continue
    }
    const why = v === undefined ? HOLE : refusal(kind, t.column.elementType ?? '', t.buffers, v)
    if (why !== undefined) refuse(t, `${show(v)} in element ${path}[${i}]`, why)
    if (typeof v === 'string' && kind !== 'json') t.text(v)
  }
}

/**
 * The value to bind for a PostgreSQL column of kind `other` given an array (`value`), or for an array
 * column given any value: an array column takes only arrays, whose elements (nested arrays included)
 * are null or what a column of the element type takes; a column that is not an array gets today's
 * check of what pg sends unchanged (null, strings, numbers but -0, booleans, bigints, bytes). The
 * result is what pg sends as the array literal: `int8` elements as their digits, `-0` in `float4[]`/
 * `float8[]` as the text `-0` (which they keep; pg would send 0), Dates of a `timestamptz[]` as UTC
 * text (pg would send local time, with an offset in whole minutes), json elements as their tagged JSON
 * text. `where` starts messages (store, operation, model, attribute); `buffers`: a bytea array's
 * elements come back as Buffer (option `bytes`), else as plain Uint8Array, and must be of that class;
 * `text` checks a string element.
 * @throws SerializationError naming the attribute, the element (`[1][0]`) and the column type for an
 *   element the column would store as another value (or not at all), undefined and holes (pg sends
 *   NULL), an empty inner array (`[[]]` is stored as `[]`), and a value other than an array for an array column.
 */
export function pgArrayValue(
  where: string,
  table: string,
  column: ColumnInfo,
  value: unknown,
  buffers: boolean,
  text: (value: string) => void,
): unknown {
  const t: Target = { where, table, column, buffers, text }
  const kind = elementKind(column) ?? 'other'
  if (!Array.isArray(value)) refuse(t, show(value), `an array column ${ELEMENTS[kind]}: store an array`)
  checkElements(t, kind, value, '')
  switch (kind) {
    case 'bigint':
      return value.map(int8Text)
    case 'real':
      return signedZeros(value)
    case 'json':
      return jsonElements(value, where, column.elementType === 'jsonb', '')
    case 'timestamp':
      return column.elementType === 'timestamptz' ? timestamptzArray(value) : value
    default:
      return value
  }
}

function int8Text(v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : Array.isArray(v) ? v.map(int8Text) : v
}

/** -0 anywhere in an array as the text `-0` (pg would send `String(-0)`, `0`). */
function signedZeros(values: readonly unknown[]): unknown[] {
  return values.map((v) => (Object.is(v, -0) ? '-0' : Array.isArray(v) ? signedZeros(v) : v))
}

/** Dates anywhere in an array for a `timestamptz[]` column, as {@link timestamptzText}. */
function timestamptzArray(values: readonly unknown[]): unknown[] {
  return values.map((v) => (v instanceof Date ? timestamptzText(v) : Array.isArray(v) ? timestamptzArray(v) : v))
}

/** Each element (not null, not an array: those are the array's own) as its tagged JSON text. */
function jsonElements(values: readonly unknown[], where: string, jsonb: boolean, path: string): unknown[] {
  return values.map((v, i) =>
    v === null
      ? null
      : Array.isArray(v)
        ? jsonElements(v, where, jsonb, `${path}[${i}]`)
        : jsonText(v, `${where} element ${path}[${i}]`, jsonb),
  )
}

/**
 * What SqlStore makes of the array pg returned for an array column: `int8` elements as bigints (pg's
 * own parser gives strings), json elements decoded from tagged JSON (`at` names the column in
 * messages), bytes as plain `Uint8Array`s unless `buffers` (how the option `bytes` reads a bytea).
 * @throws SerializationError for a json element whose tagged JSON is malformed.
 */
export function arrayFromDriver(column: ColumnInfo, raw: readonly unknown[], buffers: boolean, at: string): unknown {
  switch (elementKind(column)) {
    case 'bigint':
      return bigintElements(raw)
    case 'json':
      return fromTaggedJson(raw, at)
    case 'bytes':
      return buffers ? raw : plainBytes(raw)
    default:
      return raw
  }
}

function plainBytes(values: readonly unknown[]): unknown[] {
  return values.map((v) => (v instanceof Uint8Array ? new Uint8Array(v) : Array.isArray(v) ? plainBytes(v) : v))
}
