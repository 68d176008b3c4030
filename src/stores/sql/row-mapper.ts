import { InvalidKeyError, MissingKeyAttributeError, SchemaError, SerializationError, show } from '../../core/errors.js'
import { isKeyValue, isOwnAttribute, notOwnKeyAttribute } from '../../core/key-encoding.js'
import { messageOf } from '../../core/unavailable-unless-ours.js'
import type { ColumnInfo, SqlDialect } from './column-kind.js'
import { toColumnValue, where } from './column-value.js'
import { type EnumLabels, type LabelView, labelsFor } from './enum-labels.js'
import { fromParsedJson, fromTaggedJson } from './json-codec.js'
import { checkKeyText } from './key-text.js'
import type { ModelMapping, RowValues } from './model-mapping-types.js'
import { arrayFromDriver } from './pg-array-value.js'
import { numericOverflows } from './pg-ranges.js'

export type { BytesType, ModelMapping, RowValues } from './model-mapping-types.js'
export { isKeyValue }

const INT64_MAX = 9223372036854775807n
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER)
const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i
const LOCAL_DATE_TIME = /^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$/

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
 * match are misses without a query (and never reach the database as a cast error): an enum column
 * matches only its labels as last read (see enum-label-checks.ts; callers read them again first when a
 * lookup names a string they lack): the shared ones, or those `view` holds for the call.
 */
export function canMatch(m: ModelMapping, column: ColumnInfo, value: unknown, view?: LabelView): boolean {
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
      return typeof value === 'number'
    case 'numeric':
      // numeric(p,s) refuses a number of more than p - s digits before the point (key values are finite)
      return (
        typeof value === 'number' &&
        (column.precision === undefined || column.scale === undefined || !numericOverflows(value, column.precision, column.scale))
      )
    case 'text':
      return (
        typeof value === 'string' &&
        !(m.dialect === 'postgres' && value.includes('\0')) &&
        (!column.uuid || UUID.test(value)) &&
        (column.enumLabels === undefined || (labelsFor(column.enumLabels, view) as EnumLabels).has(value))
      )
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
 * each into its column. Computed columns are skipped (the database fills them). `view`: the labels of
 * enum columns read for this call (see enum-labels.ts), `undefined` for the shared ones.
 * @throws StockpyleError `E_SCHEMA` for an attribute with no column; SerializationError for a value the column cannot store.
 */
export function objectToRow(m: ModelMapping, obj: object, view?: LabelView): PreparedRow {
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
    values[column.name] = toColumnValue(m, attribute, column, value, view)
    names.push(column.name)
  }
  const primary = m.keyColumns.get(m.info.primary) ?? []
  const generatedPrimary = primary.some((c) => !(c.name in values))
  names.sort()
  return new PreparedRow(values, names.join('\u0000'), generatedPrimary)
}
