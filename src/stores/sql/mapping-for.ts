import type { Kysely } from 'kysely'
import type { LookupRequest, WriteItem } from '../../contracts/base-store.js'
import { SchemaError, show } from '../../core/errors.js'
import type { ModelInfo } from '../../core/registry.js'
import type { MappingCache } from './model-mapping.js'
import type { ModelMapping } from './row-mapper.js'
import { translateError } from './sql-errors.js'
import { missingTableOf } from './table-schema.js'

/**
 * What a call is about, for a message: ` by <lookup>` for one lookup, ` with key <primary key>` for
 * one object whose primary key is known, ` (batch of N)` for several; `''` otherwise.
 */
function subjectOf(info: ModelInfo, lookups: readonly LookupRequest[] | undefined, items: readonly WriteItem[] | undefined): string {
  if (lookups !== undefined) return lookups.length === 1 ? ` by ${show(lookups[0]?.lookup)}` : ` (batch of ${lookups.length})`
  const own = items?.filter((item) => item.info === info) ?? []
  if (own.length > 1) return ` (batch of ${own.length})`
  const obj = own[0]?.obj as Record<string, unknown> | undefined
  if (obj === undefined) return ''
  const fields = info.primary.fields
  if (fields.some((field) => obj[field] === undefined)) return ''
  return ` with key ${show(Object.fromEntries(fields.map((field) => [field, obj[field]])))}`
}

/**
 * The mapping of `info`'s model onto its table, introspecting the table on first use through `db`.
 * A failure is thrown in the call's name (DESIGN §5): a missing table as a `SchemaError` naming the
 * store, the operation, the model and the lookup or key (`sql store get of model `User` by `{id:7}`:
 * table `users` does not exist …`, the shared introspection error as `cause`); a database error
 * translated as every statement's is. Pass `lookups` for a read or delete by key, `items` for a write
 * or delete of objects: they are read only when the call fails.
 * @param operation `<store> store <operation>`, e.g. `sql store get`.
 * @throws SchemaError (`E_SCHEMA`) for a missing table, column or unique index, or an invalid table
 *   name; StoreUnavailableError when the database cannot be reached.
 */
export async function mappingFor(
  mappings: MappingCache,
  db: Kysely<any>,
  info: ModelInfo,
  operation: string,
  lookups: readonly LookupRequest[] | undefined,
  items: readonly WriteItem[] | undefined,
): Promise<ModelMapping> {
  try {
    return await mappings.mapping(db, info)
  } catch (err) {
    const context = `${operation} of model \`${info.name}\`${subjectOf(info, lookups, items)}`
    const table = missingTableOf(err)
    if (table === undefined) throw translateError(err, context)
    throw new SchemaError(`${context}: table \`${table}\` does not exist (create it with createTable() or a migration)`, { cause: err })
  }
}
