import { type Kysely, sql } from 'kysely'
import type { WriteItem } from '../../contracts/base-store.js'
import { keyOfObjectFor } from '../../core/key-encoding.js'
import type { ModelInfo } from '../../core/registry.js'
import type { ColumnInfo } from './column-kind.js'
import { type KeyValues, withKnownLabels } from './enum-label-checks.js'
import type { LabelView } from './enum-labels.js'
import { canMatch, checkKeyAttributes, keyParam, type ModelMapping } from './row-mapper.js'
import { translateError } from './sql-errors.js'
import { chunk, type Executor, keyCondition, mappingsOf, type OperationContext, PARAMETER_LIMIT, runAll } from './sql-operations.js'

/**
 * Deletes every object's row by primary key: one statement per table per chunk, several atomically.
 * Absent rows are a no-op, as are keys no row can hold (a string that is not a label of an enum key
 * column, after reading its labels again: see enum-label-checks.ts). Returns the objects deleted
 * (each once, in order).
 * @throws MissingKeyAttributeError / InvalidKeyError when an object lacks its primary key.
 */
export async function removeObjects(ctx: OperationContext, ex: Executor, items: readonly WriteItem[]): Promise<object[]> {
  const mappings = await mappingsOf(ctx, ex, items, 'delete')
  const context = `${ctx.name} store delete of model \`${(items[0] as WriteItem).info.name}\``
  let values: KeyValues[] | undefined
  for (const { obj, info } of items) {
    const m = mappings.get(info) as ModelMapping
    if (!m.enumKeys) continue
    ;(values ??= []).push({
      columns: m.keyColumns.get(info.primary) ?? [],
      fields: info.primary.fields,
      source: obj as Record<string, unknown>,
    })
  }
  if (values === undefined) return removeRows(ctx, ex, mappings, items, context, undefined)
  // PostgreSQL (enums): inside a transaction the statements run in a savepoint (atomicWrites), so a refused one leaves it usable
  return withKnownLabels(ex.db, values, context, true, (view) => removeRows(ctx, ex, mappings, items, context, view))
}

/** {@link removeObjects} with the mappings, and the labels of enum key columns as `view` holds them for the call (see enum-labels.ts). */
async function removeRows(
  ctx: OperationContext,
  ex: Executor,
  mappings: ReadonlyMap<ModelInfo, ModelMapping>,
  items: readonly WriteItem[],
  context: string,
  view: LabelView | undefined,
): Promise<object[]> {
  const keys = new Map<ModelMapping, Map<string, unknown[]>>()
  const removed: object[] = []
  const seen = new Set<object>()
  for (const { obj, info } of items) {
    const m = mappings.get(info) as ModelMapping
    checkKeyAttributes(m, obj, 'delete')
    if (!seen.has(obj)) {
      seen.add(obj)
      removed.push(obj)
    }
    const columns = m.keyColumns.get(info.primary) as readonly ColumnInfo[]
    const values = info.primary.fields.map((f) => (obj as Record<string, unknown>)[f])
    if (!values.every((v, j) => canMatch(m, columns[j] as ColumnInfo, v, view))) continue
    let wanted = keys.get(m)
    if (wanted === undefined) keys.set(m, (wanted = new Map()))
    wanted.set(
      keyOfObjectFor(info.primary, obj) as string,
      values.map((v) => keyParam(m, v)),
    )
  }
  const statements: ((db: Kysely<any>) => Promise<unknown>)[] = []
  for (const [m, wanted] of keys) {
    const columns = m.keyColumns.get(m.info.primary) as readonly ColumnInfo[]
    for (const part of chunk([...wanted.values()], Math.floor(PARAMETER_LIMIT[ctx.dialect] / columns.length))) {
      statements.push((db) => sql`delete from ${sql.table(m.schema.table)} where ${keyCondition(ctx.dialect, columns, part)}`.execute(db))
    }
  }
  try {
    await runAll(ex, statements)
  } catch (err) {
    throw translateError(err, context, true)
  }
  return removed
}
