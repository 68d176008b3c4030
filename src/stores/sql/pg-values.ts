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

/** OIDs of the types pg parses into objects: `point`, `circle`, `interval`; and of arrays of points and intervals. */
const OBJECT_TYPES: ReadonlySet<number> = new Set([600, 718, 1186])
const OBJECT_ARRAYS: ReadonlySet<number> = new Set([1017, 1187])
type TypeOid = Parameters<PgModule['types']['getTypeParser']>[0]
type TypeFormat = Parameters<PgModule['types']['getTypeParser']>[1]
/** `text[]`, whose parser gives an array of strings. */
const TEXT_ARRAY = 1009
/** `int8[]`, whose elements pg gives as strings. */
const INT8_ARRAY = 1016

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
