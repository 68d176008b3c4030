/**
 * Values SqlStore hands to pg and takes from it on PostgreSQL where pg's own conversions would change
 * them: Dates for `timestamptz`, and the types pg parses into objects of its own (`interval`, `point`,
 * `circle`), which neither a cache nor a later put could carry (SqlStore's reads cast them to text,
 * see select-list.ts; the parsers here keep the store's pool giving text to `tx.kysely()` queries too).
 */
import type { CustomTypesConfig } from 'pg'
import type { PgModule } from './pg-driver.js'

/**
 * The text PostgreSQL reads as the instant of `date`, in UTC (`2024-01-02T03:04:05.678+00`; a year
 * before 1 AD as `0001-…+00 BC`, PostgreSQL having no year 0: JavaScript's year 0 is 1 BC). pg itself
 * sends a Date in the process's local time with an offset in whole minutes, which moves instants whose
 * local offset had seconds (local mean time before standard zones: 1800 in Amsterdam, 1900 in Kolkata).
 */
export function timestamptzText(date: Date): string {
  const year = date.getUTCFullYear()
  const iso = date.toISOString()
  // `-MM-DDTHH:MM:SS.mmm` of `…Z`, whatever the width and sign of the year before it
  const rest = iso.slice(iso.length - 20, iso.length - 1)
  return `${String(year <= 0 ? 1 - year : year).padStart(4, '0')}${rest}+00${year <= 0 ? ' BC' : ''}`
}

/** Dates anywhere in an array for a `timestamptz[]` column, as {@link timestamptzText}. */
function timestamptzArray(values: readonly unknown[]): unknown[] {
  return values.map((v) => (v instanceof Date ? timestamptzText(v) : Array.isArray(v) ? timestamptzArray(v) : v))
}

/** OIDs of the types pg parses into objects: `point`, `circle`, `interval`; and of arrays of points and intervals. */
const OBJECT_TYPES: ReadonlySet<number> = new Set([600, 718, 1186])
const OBJECT_ARRAYS: ReadonlySet<number> = new Set([1017, 1187])
type TypeOid = Parameters<PgModule['types']['getTypeParser']>[0]
type TypeFormat = Parameters<PgModule['types']['getTypeParser']>[1]
/** `text[]`, whose parser gives an array of strings. */
const TEXT_ARRAY = 1009
/** `int8[]`, whose elements pg gives as strings. */
const INT8_ARRAY = 1016

/** A PostgreSQL `int8[]` column, or an array of a domain over int8 (read through a cast to `bigint[]`). */
export function int8Array(column: { readonly dataType: string; readonly readCast: string | undefined }): boolean {
  return column.dataType === '_int8' || column.readCast === 'bigint[]'
}

/** The strings of 64-bit integers anywhere in `values` as bigints (how SqlStore reads an int8), also numbers a pool's parser made. */
export function bigintElements(values: readonly unknown[]): unknown[] {
  return values.map((v) => {
    if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v)
    if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v)
    return Array.isArray(v) ? bigintElements(v) : v
  })
}

/**
 * The type parsers of the pool SqlStore opens for a `postgres://` URL: pg's own, except that the types
 * pg parses into objects come back as PostgreSQL's text (arrays of them as arrays of text), which a cache
 * keeps and a put sends back as it is, and `int8[]` as an array of bigints (as an `int8` is read).
 */
export function storeTypeParsers(types: PgModule['types']): CustomTypesConfig {
  const text = (value: string) => value
  const textArray = types.getTypeParser(TEXT_ARRAY as TypeOid, 'text')
  return {
    getTypeParser: (oid: TypeOid, format?: TypeFormat) => {
      if (format === undefined || format === 'text') {
        if (OBJECT_TYPES.has(oid)) return text
        if (OBJECT_ARRAYS.has(oid)) return textArray
        if ((oid as number) === INT8_ARRAY) return (value: string) => bigintElements(textArray(value) as unknown[])
      }
      return types.getTypeParser(oid, format)
    },
  }
}

/** Why an array element cannot be sent as it is (see {@link arrayValue}). */
export type ArrayRefusal = 'negative zero' | 'invalid date' | 'date' | 'not bigint' | 'other'

/** What an element refused for `why` is, and why (the end of a message naming the column). */
export const ARRAY_REFUSALS: Readonly<Record<Exclude<ArrayRefusal, 'other'>, { holds: string; because: string }>> = {
  'negative zero': {
    holds: '-0',
    because: 'which gives it back as 0: store 0, or declare the column double precision[] or json to keep the sign',
  },
  'not bigint': {
    holds: 'a value other than a bigint',
    because: 'which holds 64-bit integers and gives them back as bigints (as an int8 column): store bigints (5n)',
  },
  'invalid date': { holds: 'an Invalid Date', because: 'which no column stores: store a valid Date or null' },
  date: {
    holds: 'a Date',
    because: 'where pg would send it as text in local time: store date.toISOString(), or declare the column timestamptz[]',
  },
}

/** Array types whose elements are instants: a Date there is what the column holds. */
const DATE_ARRAYS: ReadonlySet<string> = new Set(['_timestamptz', '_timestamp', '_date'])
/** Array types that keep the sign of -0, when it is sent as the text `-0`. */
const FLOAT_ARRAYS: ReadonlySet<string> = new Set(['_float8', '_float4'])

/**
 * The value to bind for a PostgreSQL array column of type `dataType` (`_` and the element type,
 * nested arrays included), after checking its elements: pg sends an array as text and would change
 * objects (sent as their JSON: a Map as `{}`), `undefined` and holes (sent as NULL), -0 (sent as 0:
 * `float8[]`/`float4[]` get the text `-0`, which they keep; other types refuse it), an Invalid Date
 * (sent as junk such as `0NaN-NaN-…`) and a Date in an array of another type than timestamps or dates
 * (sent as local-time text: a `text[]` would hold that text, not the Date). `text` checks each string;
 * `refuse` is called with the first element that cannot be sent as it is (`undefined` for a hole).
 */
export function arrayValue(
  dataType: string,
  values: readonly unknown[],
  text: (value: string) => void,
  refuse: (element: unknown, why: ArrayRefusal) => never,
): unknown[] {
  if (dataType === '_int8') {
    checkBigints(values, refuse)
    return values.map(int8Text)
  }
  const floats = FLOAT_ARRAYS.has(dataType)
  checkElements(values, text, refuse, DATE_ARRAYS.has(dataType), floats)
  if (dataType === '_timestamptz') return timestamptzArray(values)
  return floats ? signedZeros(values) : (values as unknown[])
}

function checkElements(
  values: readonly unknown[],
  text: (value: string) => void,
  refuse: (element: unknown, why: ArrayRefusal) => never,
  dates: boolean,
  floats: boolean,
): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (v === null || typeof v === 'bigint' || typeof v === 'boolean' || v instanceof Uint8Array) continue
    if (typeof v === 'string') text(v)
    else if (Array.isArray(v)) checkElements(v, text, refuse, dates, floats)
    else if (v instanceof Date) {
      if (Number.isNaN(v.getTime())) refuse(v, 'invalid date')
      if (!dates) refuse(v, 'date')
    } else if (typeof v !== 'number') refuse(v, 'other')
    else if (!floats && Object.is(v, -0)) refuse(v, 'negative zero')
  }
}

/** An `int8[]` holds only bigints (and nulls, nested arrays): a number or string would come back as a bigint. */
function checkBigints(values: readonly unknown[], refuse: (element: unknown, why: ArrayRefusal) => never): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (Array.isArray(v)) checkBigints(v, refuse)
    else if (v !== null && typeof v !== 'bigint') refuse(v, 'not bigint')
  }
}

function int8Text(v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : Array.isArray(v) ? v.map(int8Text) : v
}

/** -0 anywhere in an array as the text `-0` (pg would send `String(-0)`, `0`). */
function signedZeros(values: readonly unknown[]): unknown[] {
  return values.map((v) => (Object.is(v, -0) ? '-0' : Array.isArray(v) ? signedZeros(v) : v))
}
