import { InvalidKeyError, show } from '../../core/errors.js'
import type { ColumnInfo } from './column-kind.js'

/** What messages name: the store, the model and its table (a `ModelMapping`). */
interface Where {
  readonly store: string
  readonly info: { readonly name: string }
  readonly schema: { readonly table: string }
}

/** PostgreSQL's output spelling of a uuid. */
const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

function characters(text: string): number {
  let n = 0
  for (const _ of text) n++
  return n
}

/**
 * Refuses a key value the database would store or compare as another, so a row would come back under
 * another key than the one asked for or cached: a uuid not in PostgreSQL's output spelling (lower
 * case, dashed), a `char(n)` value of other than n characters (padded with spaces, or trailing spaces
 * dropped), a `varchar(n)` value longer than n (spaces beyond n cut), a number with more decimals than
 * a `numeric(p,s)` keeps. Other values pass (type mismatches are found elsewhere).
 * @throws InvalidKeyError naming the attribute, the column and the spelling to use.
 */
export function checkKeyText(m: Where, column: ColumnInfo, field: string, value: unknown, operation: string): void {
  const at = () =>
    `${m.store} store ${operation} of model \`${m.info.name}\`: key attribute \`${field}\` holds ${show(value)} but column \`${column.name}\` of table \`${m.schema.table}\``
  if (typeof value === 'number') {
    const s = column.scale
    if (s !== undefined && Number.isFinite(value) && Number(value.toFixed(s)) !== value) {
      throw new InvalidKeyError(
        `${at()} is ${column.sqlType}, which rounds to ${s} decimal(s), so a number with more is not a key (the row would be another key's): round it first`,
      )
    }
    return
  }
  if (typeof value !== 'string') return
  if (column.maxLength !== undefined && characters(value) > column.maxLength) {
    throw new InvalidKeyError(
      `${at()} is ${column.sqlType}, which holds at most ${column.maxLength} characters (and cuts spaces beyond them silently), so a longer string is not a key`,
    )
  }
  if (column.uuid && !CANONICAL_UUID.test(value)) {
    throw new InvalidKeyError(
      `${at()} is uuid, which PostgreSQL gives back lower-case with dashes (8-4-4-4-12 hex digits), so only that spelling is a key: write it so (e.g. value.toLowerCase())`,
    )
  }
  if (column.paddedLength !== undefined && characters(value) !== column.paddedLength) {
    const n = column.paddedLength
    throw new InvalidKeyError(
      `${at()} is character(${n}), which pads shorter values with spaces and ignores trailing spaces when comparing, so only strings of exactly ${n} characters are keys: pad the value with spaces to ${n} characters, or declare the column varchar or text`,
    )
  }
}
