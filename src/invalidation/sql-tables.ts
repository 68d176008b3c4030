import { InvalidOptionError, SchemaError, show } from '../core/errors.js'
import type { Model } from '../core/model.js'
import { describeModel, type ModelInfo } from '../core/registry.js'
import type { ColumnInfo } from '../stores/sql/column-kind.js'
import { checkTableNaming, type TableNaming, tableNameOf } from '../stores/sql/naming.js'
import { quoteIdent } from '../stores/sql/pg-driver.js'
import { type Kysely, queryRows, resolveTable } from '../stores/sql/postgres-access.js'
import type { ModelMapping } from '../stores/sql/row-mapper.js'
import type { SqlStore } from '../stores/sql/sql-store.js'

/** Where table names, the attribute↔column mapping and the database come from. */
export interface SqlSource {
  /** Name for messages. */
  readonly name: string
  /** The database to introspect (and to install triggers through). */
  db(): Promise<Kysely<any>>
  /** The table of a model, as configured (`table` or `schema.table`). */
  tableOf(model: Model): string
  /** Attributes are camelCase, columns snake_case. */
  readonly camelCase: boolean
}

/** A model's table as the database knows it, with the columns of the model's primary key. */
export interface WatchedTable {
  /** The model. */
  readonly info: ModelInfo
  /** The table name as configured. */
  readonly label: string
  /** Schema and name as PostgreSQL resolved `label`. */
  readonly schema: string
  readonly relname: string
  /** `schema.relname`: what the trigger reports as `table` (also for a row of one of its partitions). */
  readonly qualified: string
  /** A partitioned table: its rows live in partitions, whose triggers are clones of its own. */
  readonly partitioned: boolean
  /**
   * The primary key's attributes (sorted, as `info.primary.fields`), their columns, and the OID of each
   * column's type (of a domain's base type: the type the driver is told and parses the column's text with).
   */
  readonly key: readonly { readonly field: string; readonly column: ColumnInfo; readonly typeOid: number }[]
  /** SqlStore's mapping of the model onto the table (for value conversion). */
  readonly mapping: ModelMapping
}

/** True when `value` looks like a SqlStore (duck-typed, so no driver is loaded to check). */
export function isSqlStore(value: unknown): value is SqlStore {
  const s = value as Partial<SqlStore> | null
  return typeof s === 'object' && s !== null && typeof s.kysely === 'function' && typeof s.tableOf === 'function' && 'camelCase' in s
}

/** True when `value` looks like a Kysely instance. */
export function isKysely(value: unknown): value is Kysely<any> {
  const k = value as Partial<Kysely<any>> | null
  return typeof k === 'object' && k !== null && typeof k.executeQuery === 'function' && typeof k.selectFrom === 'function'
}

/** The naming options a caller may give for a source without a SqlStore. */
export interface NamingOptions {
  readonly tables?: TableNaming | undefined
  readonly camelCase?: boolean | undefined
}

/**
 * Checks `tables` and `camelCase`, whichever source will supply the naming.
 * @throws InvalidOptionError for a value of the wrong type.
 */
export function checkNaming(owner: string, options: NamingOptions): TableNaming | undefined {
  const naming = checkTableNaming(owner, options.tables)
  if (options.camelCase !== undefined && typeof options.camelCase !== 'boolean') {
    throw new InvalidOptionError(`${owner}: option \`camelCase\` must be a boolean, got ${show(options.camelCase)}`)
  }
  return naming
}

/**
 * A source from a SqlStore on PostgreSQL (its naming, camelCase and connection). The store supplies
 * the naming: `tables` and `camelCase` given besides are refused, not ignored (they would have to agree
 * with it, and the triggers and the watchers must map tables as the store does).
 * @throws InvalidOptionError for a SqlStore on another dialect, or `tables`/`camelCase` given.
 */
export function sourceOfStore(owner: string, store: SqlStore, given: NamingOptions = {}): SqlSource {
  checkNaming(owner, given)
  for (const option of ['tables', 'camelCase'] as const) {
    if (given[option] !== undefined) {
      throw new InvalidOptionError(
        `${owner}: option \`${option}\` is refused: it was given with a SqlStore, which supplies it (SqlStore ${show(store.name).slice(1, -1)}${option === 'camelCase' ? ` has camelCase ${store.camelCase}` : ''}); configure it on the SqlStore, or give it only with a Kysely instance or a connection`,
      )
    }
  }
  if (store.dialect !== 'postgres') {
    throw new InvalidOptionError(
      `${owner}: SqlStore ${show(store.name).slice(1, -1)} is on ${store.dialect}; database-driven invalidation needs PostgreSQL`,
    )
  }
  return { name: store.name, db: () => store.kysely(), tableOf: (model) => store.tableOf(model), camelCase: store.camelCase }
}

/**
 * A source from a Kysely instance (or a function opening one) and SqlStore-style naming options.
 * @throws InvalidOptionError for invalid `tables`/`camelCase`, or a Kysely on SQLite.
 */
export function sourceOfKysely(
  owner: string,
  db: Kysely<any> | (() => Promise<Kysely<any>>),
  tables: TableNaming | undefined,
  camelCase: boolean | undefined,
): SqlSource {
  const naming = checkNaming(owner, { tables, camelCase })
  if (typeof db !== 'function') {
    let adapter = ''
    try {
      adapter = db.getExecutor().adapter.constructor.name
    } catch {}
    if (/sqlite/i.test(adapter))
      throw new InvalidOptionError(`${owner}: the Kysely instance is on SQLite; database-driven invalidation needs PostgreSQL`)
  }
  return {
    name: owner,
    db: typeof db === 'function' ? db : async () => db,
    tableOf: (model) => tableNameOf(owner, describeModel(model), naming),
    camelCase: camelCase ?? false,
  }
}

/**
 * Checks a list of models.
 * @throws InvalidOptionError for an empty list or a non-model.
 */
export function checkModels(owner: string, models: unknown): ModelInfo[] {
  if (!Array.isArray(models) || models.length === 0) {
    throw new InvalidOptionError(`${owner}: option \`models\` must be a non-empty array of model classes, got ${show(models)}`)
  }
  return models.map((model, i) => {
    try {
      return describeModel(model as Model)
    } catch (err) {
      throw new InvalidOptionError(`${owner}: option \`models\`[${i}] is not a model: ${(err as Error).message}`, { cause: err })
    }
  })
}

const KEY_KINDS = new Set(['integer', 'bigint', 'real', 'numeric', 'text', 'boolean', 'other'])

/**
 * Introspects each model's table the way SqlStore maps it and resolves its schema-qualified name.
 * @throws StockpyleError `E_SCHEMA` for a missing table, a key attribute without a column, or a primary-key column that cannot hold key values.
 */
export async function describeTables(source: SqlSource, infos: readonly ModelInfo[]): Promise<WatchedTable[]> {
  const db = await source.db()
  // loaded here, not at the top: they load kysely, an optional peer dependency
  const [{ introspectTable }, { buildMapping }] = await Promise.all([
    import('../stores/sql/table-schema.js'),
    import('../stores/sql/model-mapping.js'),
  ])
  const out: WatchedTable[] = []
  for (const info of infos) {
    const label = source.tableOf(info.model)
    const schema = await introspectTable(source.name, db, 'postgres', label)
    const mapping = buildMapping(source.name, 'postgres', info, schema, {
      tables: undefined,
      camelCase: source.camelCase,
      checkUniqueKeys: false,
      bytes: 'Buffer',
    })
    const resolved = await resolveTable(source.name, db, label)
    if (resolved === undefined) {
      throw new SchemaError(`${source.name}: table \`${label}\` of model \`${info.name}\` does not exist`)
    }
    const columns = mapping.keyColumns.get(info.primary) ?? []
    const oids = await baseTypeOids(source.name, db, resolved)
    const key = info.primary.fields.map((field, i) => {
      const column = columns[i] as ColumnInfo
      if (!KEY_KINDS.has(column.kind)) {
        throw new SchemaError(
          `${source.name}: the primary key column \`${column.name}\` of table \`${label}\` (model \`${info.name}\`) is ${column.dataType}, which cannot hold key values`,
        )
      }
      return { field, column, typeOid: oids.get(column.name) ?? 0 }
    })
    out.push({
      info,
      label,
      schema: resolved.schema,
      relname: resolved.relname,
      qualified: `${resolved.schema}.${resolved.relname}`,
      partitioned: resolved.partitioned,
      key,
      mapping,
    })
  }
  return out
}

/** The OID of each column's type, of a domain's base type (through domains over domains), by column name. */
async function baseTypeOids(owner: string, db: Kysely<any>, table: { schema: string; relname: string }): Promise<Map<string, number>> {
  const rows = await queryRows<{ name: string; oid: string }>(
    owner,
    db,
    `with recursive t(name, type, depth) as (
        select a.attname::text, a.atttypid, 0 from pg_catalog.pg_attribute a
        where a.attrelid = to_regclass($1) and a.attnum > 0 and not a.attisdropped
        union all
        select t.name, d.typbasetype, t.depth + 1 from t join pg_catalog.pg_type d on d.oid = t.type where d.typtype = 'd')
      select distinct on (name) name, type::int8::text as oid from t order by name, depth desc`,
    [`${quoteIdent(table.schema)}.${quoteIdent(table.relname)}`],
  )
  return new Map(rows.map((r) => [r.name, Number(r.oid)]))
}
