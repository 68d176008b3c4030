import {
  AliasNode,
  ColumnNode,
  DeleteQueryNode,
  IdentifierNode,
  InsertQueryNode,
  MergeQueryNode,
  type OperationNode,
  RawNode,
  ReferenceNode,
  ReturningNode,
  type RootOperationNode,
  SelectionNode,
  SelectQueryNode,
  sql,
  TableNode,
  UpdateQueryNode,
} from 'kysely'
import { UnsupportedOperationError } from '../../core/errors.js'
import type { ModelInfo } from '../../core/registry.js'
import { type OldKeys, rowTextSelections, sqliteTypeSelections } from './cache-sync-restrict.js'

/**
 * One mapped table as the plugin sees it: its models and the columns of all their declared keys, as
 * the SqlStore's mapping of the table names them (introspected: see `CacheSyncPlugin`; a table not yet
 * introspected has none, enough to tell whether a statement writes it).
 */
export interface WatchedTable {
  readonly table: string
  readonly models: readonly ModelInfo[]
  /** Every key column of every model of the table. */
  readonly keyColumns: readonly string[]
  /** Primary-key columns of every model of the table (an UPDATE may not set them). */
  readonly primaryColumns: ReadonlySet<string>
  /** The primary key of each model of the table, as its columns (each distinct list once). */
  readonly primaryKeys: readonly (readonly string[])[]
  /**
   * SQLite: the names of the rowid (lower case) that the table does not hide behind a declared column
   * of that name ({@link sqliteRowidNames}); setting one counts as setting a primary-key column. Empty
   * on PostgreSQL, and while the table's columns are not known.
   */
  readonly rowidNames: ReadonlySet<string>
}

/** The watched tables, by {@link keyOf} their name. */
export type WatchedTables = Pick<ReadonlyMap<string, WatchedTable>, 'get' | 'has'>

/** What a statement on a watched table must report after it ran. */
export interface SyncPlan {
  readonly watched: WatchedTable
  /** Our RETURNING aliases → key column. */
  readonly aliases: ReadonlyMap<string, string>
  /** `true`: the RETURNING was added as an end modifier (the statement had none): rows are ours alone. */
  readonly ownReturning: boolean
  readonly insert: boolean
  /**
   * An UPDATE that sets primary-key columns: a SELECT of the key columns of the rows it will change
   * (same table, same WHERE, under the same aliases), run just before it on the same connection, so the
   * old primary keys are invalidated too; the UPDATE is then restricted to the rows it read (see
   * `restrictToRows`).
   */
  readonly before?: OldKeys & { readonly select: SelectQueryNode }
}

const ALIAS = '__stockpyle_key_'

/** The `schema.table` (or `table`) name of a table node, and the name a RETURNING refers to it by. */
function tableOf(node: OperationNode | undefined): { name: string; table: TableNode; alias: string | undefined } | undefined {
  if (node === undefined) return undefined
  if (TableNode.is(node)) {
    const { schema, identifier } = node.table
    return { name: schema === undefined ? identifier.name : `${schema.name}.${identifier.name}`, table: node, alias: undefined }
  }
  // `sql.table('t')` (and sql`${sql.table('t')}`): a raw node wrapping nothing but a table
  if (RawNode.is(node) && node.parameters.length === 1 && node.sqlFragments.every((f) => f.trim() === '')) {
    return tableOf(node.parameters[0])
  }
  if (AliasNode.is(node) && IdentifierNode.is(node.alias)) {
    const inner = tableOf(node.node)
    return inner === undefined || inner.alias !== undefined ? undefined : { ...inner, alias: node.alias.name }
  }
  return undefined
}

/**
 * The table a write targets; `undefined` only when there is no target node at all.
 * @throws UnsupportedOperationError for a target that is not a table (raw SQL, a subquery, a list):
 *   whether it is a watched table cannot be told.
 */
function targetOf(node: OperationNode | undefined, statement: 'INSERT' | 'UPDATE' | 'DELETE' | 'MERGE'): ReturnType<typeof tableOf> {
  if (node === undefined) return undefined
  const target = tableOf(node)
  if (target !== undefined) return target
  throw new UnsupportedOperationError(
    `stockpyle cache sync: ${withArticle(statement)} whose target is not a table (${withArticle(node.kind)}: raw SQL, a subquery or a list) cannot be followed: which table it writes cannot be told; name the table (its name, or sql.table(name), with or without .as(alias)), or run it on a Kysely instance without the plugin, then call chain.batchInvalidate() or chain.clearCaches()`,
  )
}

/** `word` after its indefinite article, as it is read out ("an UPDATE", "a DELETE", "an AliasNode"). */
function withArticle(word: string): string {
  return `${/^[aeiou]/i.test(word) ? 'an' : 'a'} ${word}`
}

/** SQLite's names of the rowid, which an `INTEGER PRIMARY KEY` column aliases. */
const SQLITE_ROWID = ['rowid', '_rowid_', 'oid']

/**
 * The names of the rowid (lower case) that still name it in a SQLite table with these declared
 * `columns`: setting one renumbers the row, and its `INTEGER PRIMARY KEY` with it, so it counts as a
 * primary-key column. A declared column of one of those names (any case) hides that alias: it is then
 * that column. (A table WITHOUT ROWID rejects them all.)
 */
export function sqliteRowidNames(columns: Iterable<string>): ReadonlySet<string> {
  const declared = new Set([...columns].map((c) => c.toLowerCase()))
  return new Set(SQLITE_ROWID.filter((name) => !declared.has(name)))
}

/** The name a table is watched under: SQLite compares identifiers case-insensitively, even quoted ones. */
export function keyOf(table: string, dialect: 'sqlite' | 'postgres'): string {
  return dialect === 'sqlite' ? table.toLowerCase() : table
}

function columnName(node: OperationNode): string | undefined {
  if (ColumnNode.is(node)) return node.column.name
  if (ReferenceNode.is(node) && ColumnNode.is(node.column)) return node.column.column.name
  // `set(sql.ref('id'), …)`: a raw node wrapping nothing but a reference
  if (RawNode.is(node) && node.parameters.length === 1 && node.sqlFragments.every((f) => f.trim() === '')) {
    return columnName(node.parameters[0] as OperationNode)
  }
  return undefined
}

/** The columns a statement sets; refused when one is an expression it cannot name (it may be a primary key). */
function namedColumns(table: string, columns: readonly OperationNode[]): string[] {
  return columns.map(
    (column) =>
      columnName(column) ??
      refuse(table, 'a write setting a column given as an expression', 'its column cannot be named, and its old keys may not be learned'),
  )
}

function refuse(table: string, what: string, why = 'its old keys are not returned'): never {
  throw new UnsupportedOperationError(
    `stockpyle cache sync: ${what} on table \`${table}\` cannot be followed (${why}); run it on a Kysely instance without the plugin, then call chain.batchInvalidate() or chain.clearCaches()`,
  )
}

/**
 * SQLite's `INSERT OR <action>` the plugin cannot follow: REPLACE deletes conflicting rows without
 * returning them; FAIL keeps the rows inserted before the failing one but the statement returns none;
 * ROLLBACK ends the transaction behind the plugin's back. ABORT (the default) and IGNORE return every
 * row they leave inserted.
 */
const UNFOLLOWED_OR = new Map([
  ['replace', 'it deletes conflicting rows without returning them'],
  ['fail', 'the rows it inserted before failing stay, but it returns none of them'],
  ['rollback', 'it rolls the whole transaction back behind the plugin'],
])

/**
 * Plans a statement: for an INSERT, UPDATE or DELETE on a watched table, the node with RETURNING of
 * every key column added (appended to the statement's own RETURNING under private aliases, or as an
 * end modifier when it has none, so the builder's result type does not change) and the plan to read
 * them back. An UPDATE that sets a primary-key column (on SQLite also the table's `rowidNames`) also
 * gets a SELECT of the old keys to run first (`before`), and is then restricted to the rows it read.
 * Statements it cannot follow are refused before they run: such an UPDATE joining other tables, an
 * upsert whose DO UPDATE sets a primary-key column, `REPLACE`/`INSERT OR REPLACE` (it deletes
 * conflicting rows unseen), `INSERT OR FAIL` / `OR ROLLBACK`, `MERGE`, a multi-table DELETE, and any
 * INSERT, UPDATE, DELETE or MERGE whose target is not a table (a table name or `sql.table()`, aliased
 * or not), watched or not. Anything else is returned untouched (`plan` undefined).
 * @throws UnsupportedOperationError for a statement it cannot follow.
 */
export function planStatement(
  node: RootOperationNode,
  watched: WatchedTables,
  dialect: 'sqlite' | 'postgres',
): { node: RootOperationNode; plan: SyncPlan | undefined } {
  const untouched = { node, plan: undefined }
  if (MergeQueryNode.is(node)) {
    const target = targetOf(node.into, 'MERGE')
    if (target !== undefined && watched.has(keyOf(target.name, dialect))) refuse(target.name, 'MERGE')
    return untouched
  }
  let target: ReturnType<typeof tableOf>
  let setColumns: readonly string[] = []
  if (InsertQueryNode.is(node)) {
    target = targetOf(node.into, 'INSERT')
    if (target === undefined || !watched.has(keyOf(target.name, dialect))) return untouched
    if (node.replace === true) refuse(target.name, 'REPLACE', UNFOLLOWED_OR.get('replace'))
    const or = node.orAction?.action.toLowerCase().replace(/^or\s+/, '')
    const why = or === undefined ? undefined : UNFOLLOWED_OR.get(or)
    if (why !== undefined) refuse(target.name, `INSERT OR ${or?.toUpperCase()}`, why)
    setColumns = namedColumns(
      target.name,
      (node.onConflict?.updates ?? []).map((u) => u.column),
    )
  } else if (UpdateQueryNode.is(node)) {
    target = targetOf(node.table, 'UPDATE')
    if (target === undefined || !watched.has(keyOf(target.name, dialect))) return untouched
    setColumns = namedColumns(
      target.name,
      (node.updates ?? []).map((u) => u.column),
    )
  } else if (DeleteQueryNode.is(node)) {
    target = targetOf(node.from.froms[0], 'DELETE')
    if (target === undefined || !watched.has(keyOf(target.name, dialect))) return untouched
    if (node.from.froms.length > 1) refuse(target.name, 'a DELETE of several tables')
  } else {
    return untouched
  }
  const explain = (node as InsertQueryNode | UpdateQueryNode | DeleteQueryNode).explain
  if (explain !== undefined) {
    // A plain EXPLAIN (in any format; SQLite's QUERY PLAN too) runs nothing and returns the plan: left
    // alone. Any other options may hold ANALYZE (however the SQL was put together), which runs the
    // write but returns the plan, not its rows: refused.
    const options = explain.options
    const plain =
      options === undefined ||
      (RawNode.is(options) && options.parameters.length === 0 && /^\s*query\s+plan\s*$/i.test(options.sqlFragments.join('')))
    if (plain) return untouched
    refuse(target.name, 'EXPLAIN with options (ANALYZE, or options it cannot read) of a write', 'it may run the write but returns the plan')
  }
  const table = watched.get(keyOf(target.name, dialect)) as WatchedTable
  const primary = new Set([...table.primaryColumns].map((c) => keyOf(c, dialect)))
  for (const name of table.rowidNames) primary.add(name)
  const primaryUpdate = setColumns.find((c) => primary.has(keyOf(c, dialect)))
  const aliases = new Map(table.keyColumns.map((column, i) => [`${ALIAS}${i}`, column]))
  const insert = InsertQueryNode.is(node)
  // PostgreSQL: UPDATE/DELETE may name other tables (FROM, USING), so qualify the columns. SQLite's
  // RETURNING sees only the modified table and rejects an alias, so its columns stay bare.
  const tableRef = target.alias ?? target.table
  const refTo = (column: string, qualifier: string | TableNode | undefined) =>
    qualifier === undefined
      ? ReferenceNode.create(ColumnNode.create(column))
      : ReferenceNode.create(ColumnNode.create(column), typeof qualifier === 'string' ? TableNode.create(qualifier) : qualifier)
  const selections = (qualifier: string | TableNode | undefined) =>
    [...aliases].map(([alias, column]) => SelectionNode.create(AliasNode.create(refTo(column, qualifier), IdentifierNode.create(alias))))
  let before: SyncPlan['before']
  if (primaryUpdate !== undefined) {
    if (!UpdateQueryNode.is(node) || node.from !== undefined || node.joins !== undefined || node.table === undefined) {
      refuse(
        target.name,
        `${insert ? 'an upsert' : 'an UPDATE joining other tables'} that sets the primary-key column \`${primaryUpdate}\``,
      )
    }
    // its WITH too (the WHERE may read a CTE), unless a CTE writes: it would run twice
    const writingCte = node.with?.expressions.find((cte) => !SelectQueryNode.is(cte.expression))
    if (writingCte !== undefined) refuse(target.name, 'an UPDATE that sets a primary-key column and has a CTE other than a SELECT')
    const old: OldKeys = { primaryKeys: table.primaryKeys }
    const ref = (c: string) => refTo(c, tableRef)
    const extra = dialect === 'postgres' ? rowTextSelections(old, ref) : sqliteTypeSelections(old, aliases, ref)
    const read = [...selections(tableRef), ...extra]
    const select = SelectQueryNode.cloneWithSelections(SelectQueryNode.createFrom([node.table], node.with), read)
    before = { ...old, select: node.where === undefined ? select : { ...select, where: node.where } }
  }
  const qualifier = insert || dialect === 'sqlite' ? undefined : tableRef
  let transformed: RootOperationNode
  if (node.returning !== undefined) {
    const added = selections(qualifier)
    const returning = ReturningNode.cloneWithSelections(node.returning, added)
    transformed = { ...node, returning } as RootOperationNode
  } else {
    const prefix =
      qualifier === undefined
        ? []
        : typeof qualifier === 'string'
          ? [qualifier]
          : [...(qualifier.table.schema === undefined ? [] : [qualifier.table.schema.name]), qualifier.table.identifier.name]
    const list = sql.join([...aliases].map(([alias, column]) => sql`${sql.id(...prefix, column)} as ${sql.id(alias)}`))
    // on a line of its own: a line comment ending the statement (`modifyEnd(sql`-- trace`)`) must not hide it
    const modifier = sql`\nreturning ${list}`.toOperationNode()
    transformed = { ...node, endModifiers: [...(node.endModifiers ?? []), modifier] } as RootOperationNode
  }
  const plan: SyncPlan = { watched: table, aliases, ownReturning: node.returning === undefined, insert }
  return { node: transformed, plan: before === undefined ? plan : { ...plan, before } }
}
