import {
  AliasNode,
  AndNode,
  IdentifierNode,
  type OperationNode,
  ParensNode,
  type RawBuilder,
  SelectionNode,
  sql,
  type UpdateQueryNode,
  WhereNode,
} from 'kysely'
import { show, UnsupportedOperationError } from '../../core/errors.js'

/**
 * What an UPDATE that sets primary-key columns is restricted by: the primary key of each model of its
 * table, as its columns (each distinct list once).
 */
export interface OldKeys {
  readonly primaryKeys: readonly (readonly string[])[]
}

type Row = Record<string, unknown>

const KEYS = '__stockpyle_keys'
/** The alias of PostgreSQL's text of the i-th primary key, read with the old keys. */
const ROW_TEXT = '__stockpyle_row_'

/** `row(<columns>)`: on PostgreSQL, compared as its text, which each column's type writes exactly. */
function rowText(columns: readonly OperationNode[]): RawBuilder<string> {
  return sql<string>`cast(row(${sql.join(columns.map((c) => sql`${toSource(c)}`))}) as text)`
}

function toSource(node: OperationNode): { toOperationNode(): OperationNode } {
  return { toOperationNode: () => node }
}

/**
 * PostgreSQL: what the SELECT of old keys also reads, for each primary key of `old`: the text of the
 * row of its columns (`ref` names a column the way that SELECT does), which {@link restrictToRows}
 * compares the UPDATE's rows with.
 */
export function rowTextSelections(old: OldKeys, ref: (column: string) => OperationNode): SelectionNode[] {
  return old.primaryKeys.map((columns, i) =>
    SelectionNode.create(AliasNode.create(rowText(columns.map(ref)).toOperationNode(), IdentifierNode.create(`${ROW_TEXT}${i}`))),
  )
}

/** The alias SQLite's `typeof()` of a primary-key column is read under: its key alias and this. */
const TYPE = '_type'

/**
 * SQLite: what the SELECT of old keys also reads, for each column of a primary key of `old`: its
 * `typeof()` (under its alias in `aliases`, which maps each alias to its column, followed by `_type`),
 * which tells {@link restrictToRows} whether a number beyond ±2^53 was an INTEGER the driver may have
 * rounded or a REAL it read exactly.
 */
export function sqliteTypeSelections(
  old: OldKeys,
  aliases: ReadonlyMap<string, string>,
  ref: (column: string) => OperationNode,
): SelectionNode[] {
  const primary = new Set(old.primaryKeys.flat())
  return [...aliases]
    .filter(([, column]) => primary.has(column))
    .map(([alias, column]) =>
      SelectionNode.create(
        AliasNode.create(sql`typeof(${toSource(ref(column))})`.toOperationNode(), IdentifierNode.create(`${alias}${TYPE}`)),
      ),
    )
}

/**
 * `node` (an UPDATE of primary keys) restricted to exactly the rows the SELECT before it read (`rows`,
 * as that SELECT returned them; `aliases` maps the alias it read each key column under to the column): its WHERE,
 * in parentheses, AND for each primary key of the table's models a condition that only those rows meet.
 * A row another client made match the WHERE after that SELECT is not updated (as if that write landed
 * after this one), so every row the UPDATE changes has an old key that is invalidated. The keys go as
 * one JSON parameter, whatever their number (no bind-parameter limit), read as a semi-join:
 * - PostgreSQL: `cast(row(<columns>) as text) in (select … from json_array_elements_text($1))`, the
 *   texts the SELECT read (exact for every type, domains and enums included; a NULL in a key column is
 *   part of the text too);
 * - SQLite: `(<columns>) in (select json_extract(value, '$[i]'), … from json_each(?))`, the values
 *   read (integers, reals, text as they are stored), `or <column> is null` added when some row read had
 *   a NULL there (such a row is no model's object under that key).
 * With no row read, the UPDATE changes none.
 * @throws UnsupportedOperationError, before the UPDATE runs (SQLite), for a key value JSON cannot carry
 *   exactly: an INTEGER beyond ±2^53 read as a number (a driver that rounds, e.g. better-sqlite3
 *   without `safeIntegers`; a REAL that large is exact, as its `typeof()` read with it tells), NaN, or
 *   a value that is not a string, number, bigint or boolean.
 */
export function restrictToRows(
  node: UpdateQueryNode,
  old: OldKeys,
  rows: readonly Row[],
  aliases: ReadonlyMap<string, string>,
  dialect: 'sqlite' | 'postgres',
): UpdateQueryNode {
  const aliasOf = new Map([...aliases].map(([alias, column]) => [column, alias]))
  const conditions = old.primaryKeys.map((columns, i) =>
    dialect === 'postgres' ? pgRestriction(columns, rows, `${ROW_TEXT}${i}`) : sqliteRestriction(columns, rows, aliasOf),
  )
  const restricted = sql`${sql.join(conditions, sql` and `)}`.toOperationNode()
  const where = node.where === undefined ? restricted : AndNode.create(ParensNode.create(node.where.where), restricted)
  return { ...node, where: WhereNode.create(where) }
}

function pgRestriction(columns: readonly string[], rows: readonly Row[], alias: string): RawBuilder<unknown> {
  const texts = JSON.stringify(rows.map((row) => row[alias]))
  const current = rowText(columns.map((c) => sql.id(c).toOperationNode()))
  return sql`(${current} in (select value from json_array_elements_text(cast(${texts} as json))))`
}

function sqliteRestriction(columns: readonly string[], rows: readonly Row[], aliasOf: ReadonlyMap<string, string>): RawBuilder<unknown> {
  let nulls = false
  const tuples: string[] = []
  for (const row of rows) {
    const values = columns.map((column) => row[aliasOf.get(column) as string])
    const types = columns.map((column) => row[`${aliasOf.get(column)}${TYPE}`])
    if (values.some((v) => v === null || v === undefined)) nulls = true
    else tuples.push(`[${values.map((v, i) => json(v, columns[i] as string, types[i])).join(',')}]`)
  }
  const refs = sql.join(columns.map((c) => sql.id(c)))
  const fields = sql.join(columns.map((_, i) => sql`json_extract(${sql.id(KEYS, 'value')}, ${sql.lit(`$[${i}]`)})`))
  const orNull = nulls
    ? sql.join(
        columns.map((c) => sql` or ${sql.id(c)} is null`),
        sql``,
      )
    : sql``
  return sql`((${refs}) in (select ${fields} from json_each(${`[${tuples.join(',')}]`}) as ${sql.id(KEYS)})${orNull})`
}

/**
 * One SQLite key value as JSON that `json_extract` gives back as that same value (bigints as their
 * digits). `type` is what SQLite's `typeof()` read for it: a number beyond ±2^53 is exact when it was
 * stored as a REAL (a double, as read), and may have been rounded by the driver when it was an INTEGER.
 */
function json(value: unknown, column: string, type: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value)
    case 'bigint':
      return value.toString()
    case 'boolean':
      return value ? '1' : '0'
    case 'number':
      if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
        if (type !== 'real') break
        // with an exponent, so that SQLite reads it back as a REAL (digits alone may read as an INTEGER)
        if (Number.isFinite(value)) return value.toExponential()
      }
      if (Number.isFinite(value)) return JSON.stringify(value)
      // SQLite reads an overflowing literal as an infinity (it writes them so); it stores no NaN
      if (!Number.isNaN(value)) return value > 0 ? '9e999' : '-9e999'
  }
  throw new UnsupportedOperationError(
    `stockpyle cache sync: an UPDATE of primary keys read ${show(value)} from key column \`${column}\`, which it cannot match exactly to restrict the UPDATE to the rows it read (an integer beyond ±2^53 read as a number was rounded by the driver: read such columns as bigint, e.g. better-sqlite3's safeIntegers); nothing was updated`,
  )
}
