import { sql } from 'kysely'
import type { LookupRequest, StoreEntry } from '../../contracts/base-store.js'
import { Entry } from '../../contracts/batch-records.js'
import { NonUniqueKeyError, show } from '../../core/errors.js'
import { encodeLookup, keyOfObjectFor } from '../../core/key-encoding.js'
import type { KeyInfo, ModelInfo } from '../../core/registry.js'
import type { ColumnInfo } from './column-kind.js'
import { lookupKeyValues, withKnownLabels } from './enum-label-checks.js'
import type { LabelView } from './enum-labels.js'
import { checkKeyText } from './key-text.js'
import { mappingFor } from './mapping-for.js'
import { canMatch, isKeyValue, keyParam } from './row-mapper.js'
import { rowToObject } from './row-reader.js'
import { selectList } from './select-list.js'
import { translateError } from './sql-errors.js'
import { chunk, type Executor, keyCondition, type OperationContext, PARAMETER_LIMIT, type Row } from './sql-operations.js'

/**
 * Reads one entry per request, in request order, `undefined` at each miss. One query per lookup shape
 * (declared key) per chunk of distinct values; each slot gets its own instance. A row matches a lookup
 * only when its key values have the lookup's types too (`{id: '1'}` never finds id 1), as in the caches.
 * A string that is not a label of an enum key column is a miss (see enum-label-checks.ts).
 * @param labels the labels of the enum key columns for this call, once read: omitted by callers (the
 *   function passes them to itself, see `withKnownLabels`).
 * @throws NonUniqueKeyError when a lookup matches several rows.
 */
export async function readEntries(
  ctx: OperationContext,
  ex: Executor,
  info: ModelInfo,
  requests: readonly LookupRequest[],
  labels?: { readonly view: LabelView | undefined },
): Promise<(StoreEntry | undefined)[]> {
  const operation = `${ctx.name} store get`
  const m = await mappingFor(ctx.mappings, ex.db, info, operation, requests, undefined)
  const context = `${operation} of model \`${info.name}\``
  if (m.enumKeys && labels === undefined) {
    // a read inside a transaction that the database refuses aborts it: no second try there
    const values = lookupKeyValues(m, requests)
    return withKnownLabels(ex.db, values, context, false, (view) => readEntries(ctx, ex, info, requests, { view }))
  }
  const view = labels?.view
  // Rows are matched to lookups by identity: the key value itself for a one-field key (Map keys compare
  // type and value, as canonical keys do: 1 is not '1' nor 1n, -0 is 0), the canonical key otherwise.
  const ids: unknown[] = new Array(requests.length)
  const groups = new Map<KeyInfo, ReadGroup>()
  let last: ReadGroup | undefined
  for (let i = 0; i < requests.length; i++) {
    const { spec, lookup } = requests[i] as LookupRequest
    const fields = spec.fields
    const single = fields.length === 1
    const id = single ? lookup[fields[0] as string] : keyOfObjectFor(spec, lookup)
    // The field set is already matched to a key (BaseStore); encodeLookup throws InvalidKeyError.
    if (single ? !isKeyValue(id) : id === undefined) encodeLookup(info, lookup, operation)
    ids[i] = id
    if (last?.spec !== spec) {
      last = groups.get(spec)
      if (last === undefined) {
        last = { spec, columns: m.keyColumns.get(spec) as readonly ColumnInfo[], wanted: new Map(), found: new Map() }
        groups.set(spec, last)
      }
    }
    if (last.wanted.has(id)) continue
    if (single) {
      // one field: the bound value itself, no tuple
      const v = lookup[fields[0] as string]
      checkKeyText(m, last.columns[0] as ColumnInfo, fields[0] as string, v, 'get')
      if (canMatch(m, last.columns[0] as ColumnInfo, v, view)) last.wanted.set(id, keyParam(m, v))
      continue
    }
    const tuple: unknown[] = new Array(fields.length)
    let matchable = true
    for (let j = 0; j < fields.length; j++) {
      const v = lookup[fields[j] as string]
      checkKeyText(m, last.columns[j] as ColumnInfo, fields[j] as string, v, 'get')
      if (!canMatch(m, last.columns[j] as ColumnInfo, v, view)) {
        matchable = false
        break
      }
      tuple[j] = keyParam(m, v)
    }
    if (matchable) last.wanted.set(id, tuple)
  }
  try {
    for (const { spec, columns, wanted, found } of groups.values()) {
      if (wanted.size === 0) continue
      const field = spec.fields.length === 1 ? (spec.fields[0] as string) : undefined
      const size = Math.floor(PARAMETER_LIMIT[ctx.dialect] / columns.length)
      for (const part of chunk([...wanted.values()], size)) {
        // SQLite, one column: the builder's `in` list compiles as one node, a raw list as one node per value
        const rows: Row[] =
          ctx.dialect === 'sqlite' && field !== undefined
            ? await ex.db
                .selectFrom(m.schema.table)
                .selectAll()
                .where(sql.id((columns[0] as ColumnInfo).name), 'in', part)
                .execute()
            : (
                await sql<Row>`select ${selectList(m)} from ${sql.table(m.schema.table)} where ${keyCondition(
                  ctx.dialect,
                  columns,
                  field === undefined ? (part as unknown[][]) : part.map((v) => [v]),
                )}`.execute(ex.db)
              ).rows
        for (const row of rows) {
          const obj = rowToObject(m, row)
          const id = field === undefined ? keyOfObjectFor(spec, obj) : (obj as Row)[field]
          if (id === undefined || !wanted.has(id)) continue
          if (found.has(id)) {
            throw new NonUniqueKeyError(
              `${operation} of model \`${info.name}\` by ${show(spec.fields)} matched more than one row of table \`${m.schema.table}\` (${show(keyOfObjectFor(spec, obj))}): add a unique index`,
            )
          }
          found.set(id, new Hit(row, obj))
        }
      }
    }
  } catch (err) {
    throw translateError(err, context, true)
  }
  const out: (StoreEntry | undefined)[] = new Array(requests.length)
  let group: ReadGroup | undefined
  for (let i = 0; i < requests.length; i++) {
    const spec = (requests[i] as LookupRequest).spec
    if (group?.spec !== spec) group = groups.get(spec) as ReadGroup
    const hit = group.found.get(ids[i])
    if (hit === undefined) {
      out[i] = undefined
      continue
    }
    // each slot gets its own instance: the first one converted, then new ones from the row
    let value = hit.first
    if (value === undefined) value = rowToObject(m, hit.row)
    else hit.first = undefined
    out[i] = new Entry(value, undefined)
  }
  return out
}

/** The lookups of one declared key in a read, and what was found for them. */
interface ReadGroup {
  readonly spec: KeyInfo
  readonly columns: readonly ColumnInfo[]
  /** Identity (key value, or canonical key of a composite key) → bound value (one field) or values (composite) of the key columns. */
  readonly wanted: Map<unknown, unknown>
  /** Identity → the row found, and the instance made while matching. */
  readonly found: Map<unknown, Hit>
}

/** A row found, and the instance made from it while matching (handed to the first slot that asks for it); a class, see batch-records.ts. */
class Hit {
  constructor(
    readonly row: Row,
    public first: object | undefined,
  ) {}
}
