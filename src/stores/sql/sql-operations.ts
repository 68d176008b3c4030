import { type Kysely, type RawBuilder, sql } from 'kysely'
import type { WriteItem } from '../../contracts/base-store.js'
import { keyOfObjectFor } from '../../core/key-encoding.js'
import type { ModelInfo } from '../../core/registry.js'
import type { ColumnInfo, SqlDialect } from './column-kind.js'
import { refusedLabelsOf, rereadLabels } from './enum-label-checks.js'
import type { EnumLabels, LabelView } from './enum-labels.js'
import { mappingFor } from './mapping-for.js'
import type { MappingCache } from './model-mapping.js'
import { type ModelMapping, objectToRow, type PreparedRow } from './row-mapper.js'
import { rowToAttributes } from './row-reader.js'
import { readsAsText, selections } from './select-list.js'
import { translateError } from './sql-errors.js'

/** Bound parameters per statement: SQLite's SQLITE_MAX_VARIABLE_NUMBER (32766), PostgreSQL's protocol limit (65535). */
export const PARAMETER_LIMIT: Readonly<Record<SqlDialect, number>> = { sqlite: 32766, postgres: 65535 }

/** Where statements run: the store's database or an open transaction. */
export interface Executor {
  /** The Kysely instance (or transaction) statements run on. */
  readonly db: Kysely<any>
  /** Runs several statements atomically: in a new transaction, or a savepoint of the open one. */
  atomic<T>(fn: (db: Kysely<any>) => Promise<T>): Promise<T>
  /**
   * Wrap even a single write statement in `atomic` (PostgreSQL transactions: a failed statement would
   * otherwise abort the whole transaction, where SQLite undoes only that statement).
   */
  readonly atomicWrites?: boolean
}

/** What the operations need from their store. */
export interface OperationContext {
  readonly name: string
  readonly dialect: SqlDialect
  readonly mappings: MappingCache
}

/** A row as the driver returns it. */
export type Row = Record<string, unknown>

/** Splits `items` into lists of at most `size`. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/**
 * The condition matching rows whose key columns equal one of `tuples`. SQLite: `col IN (?, …)`, or
 * `(a, b) IN (VALUES (?, ?), …)` for a composite key. PostgreSQL: one array parameter per column,
 * `col = ANY($1::type[])` or `(a, b) IN (SELECT * FROM unnest($1::t1[], $2::t2[]))`, which PostgreSQL
 * plans as an index nested loop (a literal row list of 1,000 tuples plans ~30× slower).
 */
export function keyCondition(
  dialect: SqlDialect,
  columns: readonly ColumnInfo[],
  tuples: readonly (readonly unknown[])[],
): RawBuilder<boolean> {
  if (dialect === 'postgres') {
    const arrays = columns.map((c, j) => sql`${tuples.map((t) => t[j])}::${sql.raw(c.keyCast ?? 'text')}[]`)
    // a domain column is compared as its base type (no = exists between a domain over an enum and itself)
    const column = (c: ColumnInfo) =>
      c.keyCast !== undefined && c.keyCast !== c.sqlType ? sql`${sql.id(c.name)}::${sql.raw(c.keyCast)}` : sql.id(c.name)
    if (columns.length === 1) return sql<boolean>`${column(columns[0] as ColumnInfo)} = any(${arrays[0]})`
    return sql<boolean>`(${sql.join(columns.map(column))}) in (select * from unnest(${sql.join(arrays)}))`
  }
  if (columns.length === 1) {
    const column = columns[0] as ColumnInfo
    return sql<boolean>`${sql.id(column.name)} in (${sql.join(tuples.map((t) => t[0]))})`
  }
  const left = sql.join(columns.map((c) => sql.id(c.name)))
  const rows = sql.join(tuples.map((t) => sql`(${sql.join(t as unknown[])})`))
  return sql<boolean>`(${left}) in (values ${rows})`
}

/** Runs statements: directly when there is one, atomically when there are several. */
export async function runAll<T>(ex: Executor, statements: readonly ((db: Kysely<any>) => Promise<T>)[]): Promise<T[]> {
  if (statements.length === 0) return []
  if (statements.length === 1 && ex.atomicWrites !== true) return [await (statements[0] as (db: Kysely<any>) => Promise<T>)(ex.db)]
  return ex.atomic(async (db) => {
    const out: T[] = []
    for (const statement of statements) out.push(await statement(db))
    return out
  })
}

/** The mapping of each model of `items`, failing in the name of the model whose mapping failed. */
export async function mappingsOf(
  ctx: OperationContext,
  ex: Executor,
  items: readonly WriteItem[],
  operation: string,
): Promise<Map<ModelInfo, ModelMapping>> {
  const distinct = [...new Set(items.map((i) => i.info))]
  const where = `${ctx.name} store ${operation}`
  const mappings = await Promise.all(distinct.map((info) => mappingFor(ctx.mappings, ex.db, info, where, undefined, items)))
  return new Map(distinct.map((info, i) => [info, mappings[i] as ModelMapping]))
}

/** One row to write (a class: see contracts/batch-records.ts). */
class PlannedRow {
  constructor(
    readonly prepared: PreparedRow,
    /** The objects this row is written for (several when a batch repeats a primary key: the last wins). */
    readonly objects: object[],
    /** Canonical primary key, `undefined` when the database generates it. */
    readonly primary: string | undefined,
    /** A chain's backfill: insert only where no row holds any of its keys, never replace. */
    readonly backfill: boolean,
  ) {}
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime()
  return Object.is(a, b)
}

/**
 * Writes a row's stored values back onto an object: every attribute the object left undefined
 * (defaults, generated ids, columns it never had) and every scalar the database changed (a trigger, a
 * rounding). JSON and bytes attributes the object set keep their own (equal) values, unless `all`
 * (an object whose row another one of the batch replaced): then every attribute takes the row's value.
 */
function writeBack(m: ModelMapping, obj: object, attributes: Record<string, unknown>, all = false): void {
  const target = obj as Record<string, unknown>
  for (const attribute of Object.keys(attributes)) {
    const value = attributes[attribute]
    const current = target[attribute]
    const kind = m.columnOf.get(attribute)?.kind
    if (!all && current !== undefined && (kind === 'json' || kind === 'bytes' || sameValue(current, value))) continue
    if (attribute === '__proto__') Object.defineProperty(target, attribute, { value, enumerable: true, writable: true, configurable: true })
    else target[attribute] = value
  }
}

function upsert(m: ModelMapping, rows: readonly PlannedRow[]): (db: Kysely<any>) => Promise<Row[]> {
  if ((rows[0] as PlannedRow).backfill) {
    return (db) => {
      const insert = db
        .insertInto(m.schema.table)
        .values(rows.map((r) => r.prepared.values))
        .onConflict((oc) => oc.doNothing())
      return (
        readsAsText(m) ? insert.returning(selections(m, [...m.schema.columns.keys()]) as never) : insert.returningAll()
      ).execute() as Promise<Row[]>
    }
  }
  const primary = (m.keyColumns.get(m.info.primary) as readonly ColumnInfo[]).map((c) => c.name)
  const columns = Object.keys((rows[0] as PlannedRow).prepared.values)
  // (built only when the statement is: a put whose shape is compiled already sends its SQL as it is)
  const statement = (db: Kysely<any>) => {
    const updates = columns.filter((c) => !primary.includes(c))
    const set = Object.fromEntries((updates.length > 0 ? updates : primary).map((c) => [c, sql.id('excluded', c)]))
    return db
      .insertInto(m.schema.table)
      .values(rows.map((r) => r.prepared.values))
      .onConflict((oc) => oc.columns(primary as never).doUpdateSet(set as never))
  }
  // A row written for several objects (a batch repeating a primary key) is read back whole: the
  // objects before the last get all of it (see applyReturned).
  const back = rows.some((r) => r.objects.length > 1) ? undefined : readBack(m, columns, primary)
  const all = back === undefined && readsAsText(m) ? [...m.schema.columns.keys()] : back
  const build = (db: Kysely<any>) =>
    all === undefined
      ? statement(db).returningAll()
      : all.length === 0
        ? statement(db)
        : statement(db).returning(selections(m, all) as never)
  if (rows.length > 1) return async (db) => (await db.executeQuery<Row>(build(db))).rows
  // One row (a put of one object): its SQL is the same for every object with the same columns.
  const values = (rows[0] as PlannedRow).prepared.values
  const parameters = columns.map((c) => values[c])
  // JSON: column names may hold any character (`a` + `b,c` must not read as `a,b` + `c`)
  const shape = JSON.stringify(['upsert', columns, back ?? '*'])
  return async (db) => (await m.statements.execute<Row>(db, shape, parameters, build)).rows
}

/**
 * The columns a put must read back to hold what the database holds: all of them (`undefined`) when the
 * table may rewrite values (triggers, rules, SQLite); otherwise the columns the statement leaves to the
 * database (defaults, generated and unsent columns) and those whose type may change a value (see
 * `ColumnInfo.exact`), with the primary key to match rows. Empty: nothing to read back.
 */
function readBack(m: ModelMapping, sent: readonly string[], primary: readonly string[]): string[] | undefined {
  if (m.schema.rewrites) return undefined
  const written = new Set(sent)
  const back: string[] = []
  for (const column of m.schema.columns.values()) if (!written.has(column.name) || !column.exact) back.push(column.name)
  if (back.length === 0) return back
  for (const column of primary) if (!back.includes(column)) back.push(column)
  return back
}

/**
 * Upserts every object (insert, or replace on the primary key) and writes the stored values back onto
 * it. Every object is validated before anything is written; several statements run atomically.
 * Backfill items (a chain copying from a layer below) are inserted only where no row conflicts, and
 * never replace one.
 * Attributes that are `undefined` are left out: the column default applies to a new row and an
 * existing row keeps its value. A string that is not a label of an enum column (as last read) makes
 * the put read that type's labels again once before refusing it. Returns the objects written (each
 * once, in order). A string the database rejects as a label (renamed since) makes the put read the
 * labels again once, after the failure, to name the attribute and column in its refusal.
 * @throws StockpyleError `E_KEY_CONFLICT` when a row collides with another on an alternate unique key;
 *   `E_SCHEMA` for an attribute without a column; SerializationError for an unstorable value.
 */
export async function writeObjects(ctx: OperationContext, ex: Executor, items: readonly WriteItem[]): Promise<object[]> {
  const mappings = await mappingsOf(ctx, ex, items, 'put')
  const first = items[0] as WriteItem
  const context = `${ctx.name} store put of model \`${first.info.name}\`${items.length > 1 ? ` (batch of ${items.length})` : ''}`
  let planned: Map<ModelMapping, PlannedRow[]>
  let written: object[]
  // A string an enum column's labels lack is refused, after reading them again once (a label added
  // since); read inside a transaction, they hold for this call only (see enum-labels.ts)
  let view: Map<EnumLabels, EnumLabels> | undefined
  for (let reread: Set<EnumLabels> | undefined; ; ) {
    try {
      written = []
      planned = planWrites(mappings, items, written, view)
      break
    } catch (err) {
      const labels = refusedLabelsOf(err)
      if (labels === undefined || reread?.has(labels)) throw err
      ;(reread ??= new Set()).add(labels)
      for (const [shared, read] of (await rereadLabels(ex.db, new Set([labels]), context)) ?? []) (view ??= new Map()).set(shared, read)
    }
  }
  const statements: ((db: Kysely<any>) => Promise<Row[]>)[] = []
  const statementRows: { m: ModelMapping; rows: PlannedRow[] }[] = []
  for (const [m, rows] of planned) {
    const groups = new Map<string, PlannedRow[]>()
    for (const row of rows) {
      const signature = `${row.backfill}\u0000${row.prepared.signature}`
      const group = groups.get(signature)
      if (group === undefined) groups.set(signature, [row])
      else group.push(row)
    }
    for (const group of groups.values()) {
      const width = Math.max(1, Object.keys((group[0] as PlannedRow).prepared.values).length)
      for (const part of chunk(group, Math.floor(PARAMETER_LIMIT[ctx.dialect] / width))) {
        statements.push(upsert(m, part))
        statementRows.push({ m, rows: part })
      }
    }
  }
  let results: Row[][]
  try {
    results = await runAll(ex, statements)
  } catch (err) {
    throw (await renamedLabel(err, ex, mappings, items, view, context)) ?? translateError(err, context)
  }
  for (let s = 0; s < statementRows.length; s++) {
    const { m, rows } = statementRows[s] as { m: ModelMapping; rows: PlannedRow[] }
    applyReturned(m, rows, results[s] ?? [])
  }
  return written
}

/**
 * After a put failed with `err`: when the database rejected a value as input of a type (22P02, "invalid
 * input value for enum": a label renamed since the store read it) and the connection is still usable
 * (outside a transaction, or in a savepoint of one), reads the labels of the enum columns of the
 * models written again, once, and returns the refusal of a string they now lack ({@link notALabel}:
 * attribute, column, table, labels); `undefined` otherwise (or when reading them failed).
 */
async function renamedLabel(
  err: unknown,
  ex: Executor,
  mappings: ReadonlyMap<ModelInfo, ModelMapping>,
  items: readonly WriteItem[],
  view: LabelView | undefined,
  context: string,
): Promise<unknown> {
  if ((err as { code?: unknown } | undefined)?.code !== '22P02' || (ex.db.isTransaction && ex.atomicWrites !== true)) return undefined
  const types = new Set<EnumLabels>()
  for (const m of mappings.values()) for (const c of m.schema.columns.values()) if (c.enumLabels !== undefined) types.add(c.enumLabels)
  if (types.size === 0) return undefined
  try {
    const again = await rereadLabels(ex.db, types, context)
    planWrites(mappings, items, [], again === undefined ? view : new Map([...(view ?? []), ...again]))
  } catch (refusal) {
    if (refusedLabelsOf(refusal) !== undefined) return refusal
  }
  return undefined
}

/**
 * Prepares every object's row, per table (a batch repeating a primary key writes the last one's, for
 * all of them), and appends to `written` the objects written (each once, in order).
 * @throws as {@link objectToRow}.
 */
function planWrites(
  mappings: ReadonlyMap<ModelInfo, ModelMapping>,
  items: readonly WriteItem[],
  written: object[],
  view: LabelView | undefined,
): Map<ModelMapping, PlannedRow[]> {
  const planned = new Map<ModelMapping, PlannedRow[]>()
  const byPrimary = new Map<string, PlannedRow>()
  const seen = new Set<object>()
  for (const { obj, info, backfill } of items) {
    const m = mappings.get(info) as ModelMapping
    const prepared = objectToRow(m, obj, view)
    if (!seen.has(obj)) {
      seen.add(obj)
      written.push(obj)
    }
    const primary = prepared.generatedPrimary ? undefined : `${info.name}\u0000${keyOfObjectFor(info.primary, obj)}`
    const earlier = primary === undefined ? undefined : byPrimary.get(primary)
    const objects = earlier === undefined ? [obj] : [...earlier.objects, obj]
    const row = new PlannedRow(prepared, objects, primary, backfill === true)
    let list = planned.get(m)
    if (list === undefined) planned.set(m, (list = []))
    if (earlier !== undefined) list.splice(list.indexOf(earlier), 1)
    list.push(row)
    if (primary !== undefined) byPrimary.set(primary, row)
  }
  return planned
}

/** A RETURNING row and its attributes. */
interface Returned {
  readonly row: Row
  readonly attributes: Record<string, unknown>
}

/** Matches RETURNING rows to planned rows (by primary key; generated keys by position) and writes them back. */
function applyReturned(m: ModelMapping, rows: readonly PlannedRow[], returned: readonly Row[]): void {
  const byKey = new Map<string, Returned>()
  const loose: Returned[] = []
  for (const row of returned) {
    const entry = { row, attributes: rowToAttributes(m, row) }
    const key = keyOfObjectFor(m.info.primary, entry.attributes)
    if (key !== undefined) byKey.set(`${m.info.name}\u0000${key}`, entry)
    loose.push(entry)
  }
  const claimed = new Set<Returned>()
  for (const row of rows) {
    if (row.primary === undefined) continue
    const entry = byKey.get(row.primary)
    if (entry === undefined) continue
    claimed.add(entry)
    writeBackAll(m, row.objects, entry)
  }
  const remaining = loose.filter((a) => !claimed.has(a))
  let next = 0
  for (const row of rows) {
    if (row.primary !== undefined) continue
    const entry = remaining[next++]
    if (entry === undefined) break
    writeBackAll(m, row.objects, entry)
  }
}

/**
 * Writes a stored row back onto the objects it was written for: the last one (whose values the row
 * holds) as {@link writeBack} does; the ones before it, which a batch repeating the primary key
 * replaced, get the whole row, each as values of its own (the row is read again for each).
 */
function writeBackAll(m: ModelMapping, objects: readonly object[], entry: Returned): void {
  const last = objects.length - 1
  for (let i = 0; i < last; i++) writeBack(m, objects[i] as object, rowToAttributes(m, entry.row), true)
  writeBack(m, objects[last] as object, entry.attributes)
}
