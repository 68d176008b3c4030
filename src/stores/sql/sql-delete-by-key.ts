import { sql } from 'kysely'
import type { LookupRequest } from '../../contracts/base-store.js'
import { NonUniqueKeyError, StockpyleError, show } from '../../core/errors.js'
import { encodeLookup, keyOfObjectFor } from '../../core/key-encoding.js'
import type { KeyInfo, ModelInfo } from '../../core/registry.js'
import type { ColumnInfo } from './column-kind.js'
import { lookupKeyValues, withKnownLabels } from './enum-label-checks.js'
import type { LabelView } from './enum-labels.js'
import { checkKeyText } from './key-text.js'
import { mappingFor } from './mapping-for.js'
import { canMatch, keyParam, type ModelMapping } from './row-mapper.js'
import { rowToObject } from './row-reader.js'
import { selectList } from './select-list.js'
import { translateError } from './sql-errors.js'
import { chunk, type Executor, keyCondition, type OperationContext, PARAMETER_LIMIT } from './sql-operations.js'

type Row = Record<string, unknown>

/**
 * Delete by key: deletes the rows the lookups find with `DELETE … RETURNING *` (one statement per key
 * shape per chunk, all in one transaction or savepoint) and returns the deleted objects, one slot per
 * request, `undefined` where no row was found. A row deleted through one lookup also answers every
 * other lookup of the batch that names it by another key. Absent rows are a no-op, as are lookups no
 * row can match (a string that is not a label of an enum key column, after reading its labels again:
 * see enum-label-checks.ts).
 * @throws NonUniqueKeyError when a lookup matched several rows (nothing is deleted then).
 */
export async function removeByLookups(
  ctx: OperationContext,
  ex: Executor,
  info: ModelInfo,
  requests: readonly LookupRequest[],
): Promise<(object | undefined)[]> {
  const operation = `${ctx.name} store delete`
  const canonical = requests.map((r) => keyOfObjectFor(r.spec, r.lookup) ?? encodeLookup(info, r.lookup, operation))
  const m = await mappingFor(ctx.mappings, ex.db, info, operation, requests, undefined)
  if (!m.enumKeys) return removeMatching(ctx, ex, m, requests, canonical, undefined)
  // the statements run in a savepoint inside a transaction (ex.atomic): a refused one leaves it usable
  const values = lookupKeyValues(m, requests)
  const context = `${operation} of model \`${info.name}\``
  return withKnownLabels(ex.db, values, context, true, (view) => removeMatching(ctx, ex, m, requests, canonical, view))
}

/** {@link removeByLookups} with the mapping, the canonical keys, and the labels of enum key columns as `view` holds them for the call. */
async function removeMatching(
  ctx: OperationContext,
  ex: Executor,
  m: ModelMapping,
  requests: readonly LookupRequest[],
  canonical: readonly string[],
  view: LabelView | undefined,
): Promise<(object | undefined)[]> {
  const info = m.info
  const context = `${ctx.name} store delete of model \`${info.name}\``
  const bySpec = new Map<KeyInfo, Map<string, unknown[]>>()
  requests.forEach(({ spec, lookup }, i) => {
    const columns = m.keyColumns.get(spec) as readonly ColumnInfo[]
    const values = spec.fields.map((f) => lookup[f])
    values.forEach((v, j) => {
      checkKeyText(m, columns[j] as ColumnInfo, spec.fields[j] as string, v, 'delete')
    })
    if (!values.every((v, j) => canMatch(m, columns[j] as ColumnInfo, v, view))) return
    let wanted = bySpec.get(spec)
    if (wanted === undefined) bySpec.set(spec, (wanted = new Map()))
    wanted.set(
      canonical[i] as string,
      values.map((v) => keyParam(m, v)),
    )
  })
  if (bySpec.size === 0) return requests.map(() => undefined)
  // Each deleted row, under its key for every declared key shape: `spec index \0 canonical key`.
  const deleted = new Map<string, Row>()
  try {
    await ex.atomic(async (db) => {
      for (const [spec, wanted] of bySpec) {
        const columns = m.keyColumns.get(spec) as readonly ColumnInfo[]
        for (const part of chunk([...wanted.values()], Math.floor(PARAMETER_LIMIT[ctx.dialect] / columns.length))) {
          const { rows } =
            await sql<Row>`delete from ${sql.table(m.schema.table)} where ${keyCondition(ctx.dialect, columns, part)} returning ${selectList(m)}`.execute(
              db,
            )
          const seen = new Set<string>()
          for (const row of rows) {
            const obj = rowToObject(m, row)
            const key = keyOfObjectFor(spec, obj)
            if (key === undefined || !wanted.has(key)) {
              throw new StockpyleError(`${context} by ${show(spec.fields)} matched a row whose key is ${show(key)}, not one asked for`)
            }
            if (seen.has(key)) {
              throw new NonUniqueKeyError(
                `${context} by ${show(spec.fields)} matched more than one row of table \`${m.schema.table}\` (${show(key)}): add a unique index`,
              )
            }
            seen.add(key)
            info.keys.forEach((other, k) => {
              const otherKey = keyOfObjectFor(other, obj)
              if (otherKey !== undefined) deleted.set(`${k}\u0000${otherKey}`, row)
            })
          }
        }
      }
    })
  } catch (err) {
    throw translateError(err, context, true)
  }
  return requests.map((r, i) => {
    const row = deleted.get(`${info.keys.indexOf(r.spec)}\u0000${canonical[i]}`)
    return row === undefined ? undefined : rowToObject(m, row)
  })
}
