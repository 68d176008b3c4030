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

/**
 * The exponent e of the last significant digit of a finite non-zero number in its shortest decimal
 * form (what pg sends): 1.25 → -2, 150 → 1, 1e-130 → -130, 1.5e21 → 20.
 */
function smallestPower(value: number): number {
  const [mantissa = '', exponent = '0'] = String(Math.abs(value)).split('e')
  const [whole = '', fraction = ''] = mantissa.split('.')
  const digits = (whole + fraction).replace(/0+$/, '')
  const trailingZeros = whole.length + fraction.length - digits.length
  return Number(exponent) - fraction.length + trailingZeros
}

function characters(text: string): number {
  let n = 0
  for (const _ of text) n++
  return n
}

/**
 * Refuses a key value the database would store or compare as another, so a row would come back under
 * another key than the one asked for or cached: a uuid not in PostgreSQL's output spelling (lower
 * case, dashed), a `char(n)` value of other than n characters (padded with spaces, or trailing spaces
 * dropped), a `varchar(n)` value longer than n (spaces beyond n cut), a `name` value longer than 63
 * bytes (cut), a number with more decimals than a `numeric(p,s)` keeps (with a negative s: not a
 * multiple of 10^-s). Other values pass (type mismatches are found elsewhere).
 * @throws InvalidKeyError naming the attribute, the column and the spelling to use.
 */
export function checkKeyText(m: Where, column: ColumnInfo, field: string, value: unknown, operation: string): void {
  const at = () =>
    `${m.store} store ${operation} of model \`${m.info.name}\`: key attribute \`${field}\` holds ${show(value)} but column \`${column.name}\` of table \`${m.schema.table}\``
  if (typeof value === 'number') {
    const s = column.scale
    if (s !== undefined && Number.isFinite(value) && value !== 0 && smallestPower(value) < -s) {
      const keeps = s >= 0 ? `rounds to ${s} decimal(s), so a number with more` : `rounds to a multiple of ${10 ** -s}, so another number`
      throw new InvalidKeyError(
        `${at()} is ${column.sqlType}, which ${keeps} is not a key (the row would be another key's): round it first`,
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
  if (column.maxBytes !== undefined && Buffer.byteLength(value) > column.maxBytes) {
    throw new InvalidKeyError(
      `${at()} is name, which keeps at most ${column.maxBytes} bytes (UTF-8) and cuts longer values silently, so a longer string is not a key: shorten it, or declare the column text`,
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
