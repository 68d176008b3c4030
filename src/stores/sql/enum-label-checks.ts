import { type Kysely, sql } from 'kysely'
import type { LookupRequest } from '../../contracts/base-store.js'
import { SerializationError, show } from '../../core/errors.js'
import type { ColumnInfo } from './column-kind.js'
import type { EnumLabels } from './enum-labels.js'
import type { ModelMapping } from './model-mapping-types.js'
import { translateError } from './sql-errors.js'

/** How many labels a message lists before saying how many more there are. */
const LISTED = 20

/**
 * Adds to `found` (created when first needed, and returned) the labels of each enum column of
 * `columns` whose value in `source` — `source[fields[j]]` for `columns[j]` — is a string they lack.
 * Returns `found` unchanged when there is none.
 */
export function staleLabels(
  found: Set<EnumLabels> | undefined,
  columns: readonly ColumnInfo[],
  fields: readonly string[],
  source: Record<string, unknown>,
): Set<EnumLabels> | undefined {
  for (let j = 0; j < columns.length; j++) {
    const labels = (columns[j] as ColumnInfo).enumLabels
    if (labels === undefined) continue
    const value = source[fields[j] as string]
    if (typeof value === 'string' && !labels.has(value)) (found ??= new Set()).add(labels)
  }
  return found
}

/**
 * Reads the labels of `types` from the catalog again (one query, through `db`: a transaction's own
 * connection when one is open), so labels added since (`ALTER TYPE … ADD VALUE`) are known. A type
 * that no longer exists keeps the labels it had.
 * @param context starts the message of an error (store, operation, model).
 * @throws the translated database error (StoreUnavailableError when the database cannot be reached).
 */
export async function rereadLabels(db: Kysely<any>, types: ReadonlySet<EnumLabels>, context: string): Promise<void> {
  const oids = [...types].map((t) => t.oid)
  let rows: { oid: string; labels: string[] }[]
  try {
    rows = (
      await sql<{ oid: string; labels: string[] }>`select t.oid::text as oid, array(select e.enumlabel::text
          from pg_catalog.pg_enum e where e.enumtypid = t.oid order by e.enumsortorder) as labels
        from pg_catalog.pg_type t where t.oid = any(${oids}::oid[])`.execute(db)
    ).rows
  } catch (err) {
    throw translateError(err, context)
  }
  for (const type of types) {
    const row = rows.find((r) => r.oid === type.oid)
    if (row !== undefined) type.replace(row.labels)
  }
}

/**
 * Reads the labels of the enum key columns again when `requests` look up by a string they lack (one
 * catalog query; none when every such string is a known label), so a label added since introspection
 * (`ALTER TYPE … ADD VALUE`) is found; a string that still is not a label then matches no row.
 * @throws the translated database error of that query.
 */
export async function relearnLabels(db: Kysely<any>, m: ModelMapping, requests: readonly LookupRequest[], context: string): Promise<void> {
  let stale: Set<EnumLabels> | undefined
  for (const { spec, lookup } of requests) stale = staleLabels(stale, m.keyColumns.get(spec) ?? [], spec.fields, lookup)
  if (stale !== undefined) await rereadLabels(db, stale, context)
}

/** The refusals of {@link notALabel}, and the labels each was judged by. */
const refusals = new WeakMap<object, EnumLabels>()

/**
 * The error refusing a put of `value` into an enum column (or a domain over an enum) whose labels lack
 * it, naming the column, the table and the labels. `at` names the store, operation, model and attribute.
 */
export function notALabel(at: string, column: ColumnInfo, table: string, value: string, labels: EnumLabels): SerializationError {
  const all = labels.labels
  const listed = all
    .slice(0, LISTED)
    .map((l) => `'${l.replaceAll("'", "''")}'`)
    .join(', ')
  const more = all.length > LISTED ? ` and ${all.length - LISTED} more` : ''
  const through = column.sqlType !== undefined && column.sqlType !== labels.type ? ` (through the domain ${column.sqlType})` : ''
  const err = new SerializationError(
    `${at} holds ${show(value)} but column \`${column.name}\` of table \`${table}\` is the enum ${labels.type}${through}, whose labels are ${listed}${more} (compared exactly, case-sensitively): store one of them, or add the label (ALTER TYPE ${labels.type} ADD VALUE …)`,
  )
  refusals.set(err, labels)
  return err
}

/**
 * The labels `err` was judged by, when it is {@link notALabel}'s refusal; `undefined` for any other
 * error. Lets a put read the labels again (a label added since introspection) and try once more.
 */
export function refusedLabelsOf(err: unknown): EnumLabels | undefined {
  return typeof err === 'object' && err !== null ? refusals.get(err) : undefined
}
