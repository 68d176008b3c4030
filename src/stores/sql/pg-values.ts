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
export function timestamptzArray(values: readonly unknown[]): unknown[] {
  return values.map((v) => (v instanceof Date ? timestamptzText(v) : Array.isArray(v) ? timestamptzArray(v) : v))
}

/** OIDs of the types pg parses into objects: `point`, `circle`, `interval`; and of arrays of points and intervals. */
const OBJECT_TYPES: ReadonlySet<number> = new Set([600, 718, 1186])
const OBJECT_ARRAYS: ReadonlySet<number> = new Set([1017, 1187])
type TypeOid = Parameters<PgModule['types']['getTypeParser']>[0]
type TypeFormat = Parameters<PgModule['types']['getTypeParser']>[1]
/** `text[]`, whose parser gives an array of strings. */
const TEXT_ARRAY = 1009

/**
 * The type parsers of the pool SqlStore opens for a `postgres://` URL: pg's own, except that the types
 * pg parses into objects come back as PostgreSQL's text (arrays of them as arrays of text), which a cache
 * keeps and a put sends back as it is.
 */
export function storeTypeParsers(types: PgModule['types']): CustomTypesConfig {
  const text = (value: string) => value
  const textArray = types.getTypeParser(TEXT_ARRAY as TypeOid, 'text')
  return {
    getTypeParser: (oid: TypeOid, format?: TypeFormat) => {
      if (format === undefined || format === 'text') {
        if (OBJECT_TYPES.has(oid)) return text
        if (OBJECT_ARRAYS.has(oid)) return textArray
      }
      return types.getTypeParser(oid, format)
    },
  }
}

/**
 * Checks the elements of an array for a PostgreSQL array column (nested arrays included), which pg
 * sends as text and would change: objects (sent as their JSON: a Map as `{}`, a Date inside as a
 * string), `undefined` and holes (sent as NULL), -0 (sent as 0). `text` checks each string;
 * `refuse` is called with the first element that cannot be sent as it is (`undefined` for a hole).
 */
export function checkArrayElements(values: readonly unknown[], text: (value: string) => void, refuse: (element: unknown) => never): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (v === null || typeof v === 'bigint' || typeof v === 'boolean' || v instanceof Date || v instanceof Uint8Array) continue
    if (typeof v === 'string') text(v)
    else if (Array.isArray(v)) checkArrayElements(v, text, refuse)
    else if (typeof v !== 'number' || Object.is(v, -0)) refuse(v)
  }
}
