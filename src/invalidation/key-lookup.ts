import type { Lookup, Model } from '../core/model.js'
import type { PgModule } from '../stores/sql/pg-driver.js'
import { fromColumnValue, isKeyValue } from '../stores/sql/row-mapper.js'
import type { WatchedTable } from './sql-tables.js'

/**
 * The primary-key lookup of a key a trigger notified: each value's text (the type's output) parsed as
 * pg parses that column's text in query results (`types`: pg's type parsers; undefined: the text as it
 * is), then converted as SqlStore converts what pg gives it.
 * @returns the lookup, or (a string) the name of the first key column without a usable value (absent,
 *   null, or not a key value: the triggers were installed for other key columns).
 */
export function keyLookup(
  t: WatchedTable,
  pk: Readonly<Record<string, string | null>>,
  types: PgModule['types'] | undefined,
): Lookup<Model> | string {
  const lookup: Record<string, unknown> = {}
  for (const { field, column, typeOid } of t.key) {
    const text = pk[column.name] ?? null
    const raw = text === null || types === undefined ? text : types.getTypeParser(typeOid, 'text')(text)
    const value = fromColumnValue(t.mapping, column, raw)
    if (!isKeyValue(value)) return column.name
    lookup[field] = value
  }
  return lookup as Lookup<Model>
}
