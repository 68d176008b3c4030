import { type Kysely, sql } from 'kysely'
import type { LookupRequest } from '../../contracts/base-store.js'
import { SerializationError, show } from '../../core/errors.js'
import type { ColumnInfo } from './column-kind.js'
import { EnumLabels, type LabelView, labelsFor } from './enum-labels.js'
import type { ModelMapping } from './model-mapping-types.js'
import { translateError } from './sql-errors.js'

/** How many labels a message lists before saying how many more there are. */
const LISTED = 20

/** Key values of a call, for the enum checks: the key columns, the fields naming them, and the lookup or object holding them. */
export interface KeyValues {
  readonly columns: readonly ColumnInfo[]
  readonly fields: readonly string[]
  readonly source: Record<string, unknown>
}

/** The {@link KeyValues} of lookups (`m` has enum key columns: only then are they needed). */
export function lookupKeyValues(m: ModelMapping, requests: readonly LookupRequest[]): KeyValues[] {
  return requests.map(({ spec, lookup }) => ({ columns: m.keyColumns.get(spec) ?? [], fields: spec.fields, source: lookup }))
}

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
 * Reads the labels of `types` (shared ones) from the catalog again, one query through `db`, so labels
 * added since (`ALTER TYPE … ADD VALUE`) are known. Outside a transaction the shared labels are replaced
 * (what the pool reads is committed) and the result is `undefined`; inside one (on its connection,
 * where a label it added and has not committed shows too, and would stay after a rollback) the shared
 * labels are left alone and the result is a {@link LabelView} for the call. A type that no longer
 * exists keeps the labels it had.
 * @param context starts the message of an error (store, operation, model).
 * @throws the translated database error (StoreUnavailableError when the database cannot be reached).
 */
export async function rereadLabels(db: Kysely<any>, types: ReadonlySet<EnumLabels>, context: string): Promise<LabelView | undefined> {
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
  const view = db.isTransaction ? new Map<EnumLabels, EnumLabels>() : undefined
  for (const type of types) {
    const row = rows.find((r) => r.oid === type.oid)
    if (row === undefined) continue
    if (view === undefined) type.replace(row.labels)
    else view.set(type, new EnumLabels(type.oid, type.type, row.labels))
  }
  return view
}

/**
 * Reads the labels of the enum key columns again when `values` hold a string they lack (one catalog
 * query; none when every such string is a known label), so a label added since introspection
 * (`ALTER TYPE … ADD VALUE`) is found; a string that still is not a label then matches no row.
 * @returns the labels for the call, as {@link rereadLabels}.
 * @throws the translated database error of that query.
 */
export async function relearnLabels(db: Kysely<any>, values: readonly KeyValues[], context: string): Promise<LabelView | undefined> {
  let stale: Set<EnumLabels> | undefined
  for (const { columns, fields, source } of values) stale = staleLabels(stale, columns, fields, source)
  return stale === undefined ? undefined : rereadLabels(db, stale, context)
}

/** Whether each string of `values` in an enum column is a label, as `view` says (in order). */
function labelsMet(values: readonly KeyValues[], view: LabelView | undefined): boolean[] {
  const met: boolean[] = []
  for (const { columns, fields, source } of values) {
    for (let j = 0; j < columns.length; j++) {
      const labels = labelsFor((columns[j] as ColumnInfo).enumLabels, view)
      const value = source[fields[j] as string]
      if (labels !== undefined && typeof value === 'string') met.push(labels.has(value))
    }
  }
  return met
}

/**
 * Runs `call` (a lookup by `values`) with the labels of their enum key columns read again first where
 * they lack a string ({@link relearnLabels}). When the database rejects a key value ("invalid input
 * value for enum", 22P02: a label renamed since the store read it) and the statement left the
 * connection usable — outside a transaction, or inside one when `savepoint` (the statement ran in a
 * savepoint, rolled back) — reads every label again and, when a string sent as a label no longer is
 * one, runs `call` once more, where it matches no row.
 * @throws what `call` throws otherwise.
 */
export async function withKnownLabels<T>(
  db: Kysely<any>,
  values: readonly KeyValues[],
  context: string,
  savepoint: boolean,
  call: (view: LabelView | undefined) => Promise<T>,
): Promise<T> {
  const view = await relearnLabels(db, values, context)
  try {
    return await call(view)
  } catch (err) {
    const code = ((err as { cause?: { code?: unknown } }).cause ?? (err as { code?: unknown }))?.code
    if (code !== '22P02' || (db.isTransaction && !savepoint)) throw err
    const types = new Set<EnumLabels>()
    for (const { columns } of values) for (const c of columns) if (c.enumLabels !== undefined) types.add(c.enumLabels)
    const before = labelsMet(values, view)
    const again = await rereadLabels(db, types, context)
    const after = labelsMet(values, again)
    if (!before.some((sent, i) => sent && !after[i])) throw err
    return call(again)
  }
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
  refusals.set(err, column.enumLabels ?? labels)
  return err
}

/**
 * The shared labels of the column `err` refused a value for, when it is {@link notALabel}'s refusal;
 * `undefined` for any other error. Lets a put read the labels again (a label added since
 * introspection) and try once more.
 */
export function refusedLabelsOf(err: unknown): EnumLabels | undefined {
  return typeof err === 'object' && err !== null ? refusals.get(err) : undefined
}
