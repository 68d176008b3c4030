import type { Kysely } from 'kysely'
import { SchemaError, type StockpyleError, show } from '../../core/errors.js'
import type { Model } from '../../core/model.js'
import type { KeyInfo, ModelInfo } from '../../core/registry.js'
import type { ColumnInfo, SqlDialect } from './column-kind.js'
import { camelCase, snakeCase, type TableNaming, tableNameOf } from './naming.js'
import type { BytesType, ModelMapping } from './row-mapper.js'
import { StatementCache } from './statement-cache.js'
import { introspectTable, type TableSchema } from './table-schema.js'

/** The options that decide how models map to tables. */
export interface MappingOptions {
  readonly tables: TableNaming | undefined
  readonly camelCase: boolean
  readonly checkUniqueKeys: boolean
  readonly bytes: BytesType | ((model: Model, attribute: string) => BytesType)
}

function schemaError(message: string): StockpyleError {
  return new SchemaError(message)
}

function indexSuggestion(table: string, columns: readonly string[]): string {
  const bare = table.split('.').pop() as string
  return `CREATE UNIQUE INDEX ${bare}_${columns.join('_')}_key ON ${table} (${columns.join(', ')})`
}

/**
 * Checks that every declared key is backed by the primary key or a unique index (not partial, no
 * expressions): the primary key exactly (it is the upsert's conflict target), an alternate key by any
 * unique index over a subset of its columns.
 * @throws StockpyleError `E_SCHEMA` naming the key and the index to create.
 */
function checkKeys(store: string, info: ModelInfo, schema: TableSchema, keyColumns: ReadonlyMap<KeyInfo, readonly ColumnInfo[]>): void {
  for (const [spec, columns] of keyColumns) {
    const names = columns.map((c) => c.name)
    const wanted = new Set(names)
    const backed = schema.uniqueIndexes.some((index) =>
      spec === info.primary
        ? index.columns.length === wanted.size && index.columns.every((c) => wanted.has(c))
        : index.columns.every((c) => wanted.has(c)),
    )
    if (!backed) {
      const role = spec === info.primary ? 'primary key' : 'key'
      throw schemaError(
        `${store} store: model \`${info.name}\` declares the ${role} ${show(spec.fields)} but table \`${schema.table}\` has no primary key or unique index on (${names.join(', ')}): create it, e.g. ${indexSuggestion(schema.table, names)}, or pass checkUniqueKeys: false`,
      )
    }
  }
}

/** Builds the mapping of a model onto its introspected table. @throws StockpyleError `E_SCHEMA` for a key attribute without a column or a key without a unique index. */
export function buildMapping(
  store: string,
  dialect: SqlDialect,
  info: ModelInfo,
  schema: TableSchema,
  options: MappingOptions,
): ModelMapping {
  const columnOf = new Map<string, ColumnInfo>()
  const attributeOf = new Map<string, string>()
  for (const column of schema.columns.values()) {
    const attribute = options.camelCase ? camelCase(column.name) : column.name
    const taken = columnOf.get(attribute)
    if (taken !== undefined && taken.name === attribute) continue
    columnOf.set(attribute, column)
    attributeOf.set(column.name, attribute)
  }
  const toColumnName = options.camelCase ? snakeCase : (attribute: string) => attribute
  const keyColumns = new Map<KeyInfo, ColumnInfo[]>()
  for (const spec of info.keys) {
    keyColumns.set(
      spec,
      spec.fields.map((field) => {
        const column = columnOf.get(field)
        if (column === undefined) {
          throw schemaError(
            `${store} store: model \`${info.name}\` has the key attribute \`${field}\` but table \`${schema.table}\` has no column \`${toColumnName(field)}\``,
          )
        }
        return column
      }),
    )
  }
  if (options.checkUniqueKeys) checkKeys(store, info, schema, keyColumns)
  const bufferColumns = new Set<string>()
  for (const column of schema.columns.values()) {
    if (column.kind !== 'bytes') continue
    const kind =
      typeof options.bytes === 'function' ? options.bytes(info.model, attributeOf.get(column.name) ?? column.name) : options.bytes
    if (kind === 'Buffer') bufferColumns.add(column.name)
  }
  return { store, info, dialect, schema, columnOf, attributeOf, keyColumns, bufferColumns, toColumnName, statements: new StatementCache() }
}

interface Pending<T> {
  readonly promise: Promise<T>
  readonly db: Kysely<any>
  done: boolean
}

/**
 * A promise cache keyed by `key`. A pending entry started on another executor is not shared: on SQLite a
 * transaction holds the only connection, so waiting for a query queued outside it would never end.
 */
function cached<K, T>(map: Map<K, Pending<T>>, key: K, db: Kysely<any>, build: () => Promise<T>): Promise<T> {
  const found = map.get(key)
  if (found !== undefined && (found.done || found.db === db)) return found.promise
  const promise = build()
  if (found === undefined) {
    const entry: Pending<T> = { promise, db, done: false }
    map.set(key, entry)
    promise.then(
      () => {
        entry.done = true
      },
      () => {
        if (map.get(key) === entry) map.delete(key)
      },
    )
  }
  return promise
}

/**
 * Caches table schemas and model mappings for one store. Introspection runs once per table (and
 * again after a failure, so a table created later is found).
 */
export class MappingCache {
  readonly #store: string
  readonly #dialect: SqlDialect
  readonly #options: MappingOptions
  readonly #schemas = new Map<string, Pending<TableSchema>>()
  readonly #mappings = new Map<ModelInfo, Pending<ModelMapping>>()

  constructor(store: string, dialect: SqlDialect, options: MappingOptions) {
    this.#store = store
    this.#dialect = dialect
    this.#options = options
  }

  /** The table a model maps to. @throws StockpyleError `E_SCHEMA` for an invalid name. */
  tableOf(info: ModelInfo): string {
    return tableNameOf(this.#store, info, this.#options.tables)
  }

  /** The options this cache maps with. */
  get options(): MappingOptions {
    return this.#options
  }

  /** The mapping of a model, introspecting its table on first use through `db` (a transaction, if one is open). */
  mapping(db: Kysely<any>, info: ModelInfo): Promise<ModelMapping> {
    return cached(this.#mappings, info, db, async () => {
      const table = this.tableOf(info)
      const schema = await cached(this.#schemas, table, db, () => introspectTable(this.#store, db, this.#dialect, table))
      try {
        return buildMapping(this.#store, this.#dialect, info, schema, this.#options)
      } catch (err) {
        // The schema may be fixed (an index created) before the next attempt: introspect again then.
        this.#schemas.delete(table)
        throw err
      }
    })
  }

  /** Forgets every cached schema, e.g. after a migration changed tables. */
  clear(): void {
    this.#schemas.clear()
    this.#mappings.clear()
  }
}
