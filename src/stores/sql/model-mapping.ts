import type { Kysely } from 'kysely'
import { SchemaError, type StockpyleError, show } from '../../core/errors.js'
import type { Model } from '../../core/model.js'
import type { KeyInfo, ModelInfo } from '../../core/registry.js'
import { type ColumnInfo, elementKind, type SqlDialect } from './column-kind.js'
import { camelCase, snakeCase, type TableNaming, tableNameOf } from './naming.js'
import type { BytesType, ModelMapping } from './row-mapper.js'
import { StatementCache } from './statement-cache.js'
import { introspectTable, type TableSchema, type UniqueIndex } from './table-schema.js'

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

const DEFERRABLE_FIX = 'drop it and create it again without DEFERRABLE'

/**
 * Checks that every declared key is backed by the primary key or a unique index (not partial, no
 * expressions, not deferrable): the primary key exactly (it is the upsert's conflict target), an
 * alternate key by any unique index over a subset of its columns. A deferrable index on exactly the
 * primary key's columns is refused even beside another: PostgreSQL refuses it as an ON CONFLICT target.
 * @throws StockpyleError `E_SCHEMA` naming the key and the index to create.
 */
function checkKeys(store: string, info: ModelInfo, schema: TableSchema, keyColumns: ReadonlyMap<KeyInfo, readonly ColumnInfo[]>): void {
  for (const [spec, columns] of keyColumns) {
    const names = columns.map((c) => c.name)
    const wanted = new Set(names)
    const primary = spec === info.primary
    const role = primary ? 'primary key' : 'key'
    const fits = (index: UniqueIndex) =>
      primary
        ? index.columns.length === wanted.size && index.columns.every((c) => wanted.has(c))
        : index.columns.every((c) => wanted.has(c))
    const deferrable = schema.uniqueIndexes.find((index) => index.deferrable && fits(index))
    if (primary && deferrable !== undefined) {
      throw schemaError(
        `${store} store: model \`${info.name}\` declares the primary key ${show(spec.fields)} but table \`${schema.table}\` has the deferrable unique constraint \`${deferrable.name}\` on (${names.join(', ')}), which PostgreSQL refuses as the conflict target of the upsert (INSERT … ON CONFLICT): ${DEFERRABLE_FIX}`,
      )
    }
    if (!schema.uniqueIndexes.some((index) => !index.deferrable && fits(index))) {
      const why =
        deferrable === undefined
          ? ''
          : ` (\`${deferrable.name}\` is deferrable: duplicates may exist until COMMIT, so it backs no key; ${DEFERRABLE_FIX})`
      throw schemaError(
        `${store} store: model \`${info.name}\` declares the ${role} ${show(spec.fields)} but table \`${schema.table}\` has no primary key or unique index on (${names.join(', ')})${why}: create it, e.g. ${indexSuggestion(schema.table, names)}, or pass checkUniqueKeys: false`,
      )
    }
  }
}

/** What to do about a key column or index that equates different texts, per dialect. */
const LOOSE_FIX: Readonly<Record<SqlDialect, { column: string; index: string }>> = {
  sqlite: { column: 'declare it TEXT without COLLATE (BINARY)', index: 'create the index without COLLATE' },
  postgres: { column: 'declare it text or varchar with a deterministic collation', index: 'create the index without that collation' },
}
const NORMALISE = 'and normalise the values in the model if they should match (e.g. lower-case them)'

/**
 * Checks that every key column, and every unique index over key columns, compares by identity (and,
 * on PostgreSQL, is of a type SqlStore maps, whose key values it can check): the caches do, so two key values the database treats as one would be two objects there, and an upsert
 * by one would update the row of the other.
 * @throws StockpyleError `E_SCHEMA` naming the column (and index), why, and what to do.
 */
function checkKeyEquality(
  store: string,
  dialect: SqlDialect,
  info: ModelInfo,
  schema: TableSchema,
  keyColumns: ReadonlyMap<KeyInfo, readonly ColumnInfo[]>,
): void {
  const what = `${store} store: model \`${info.name}\``
  const consequence = 'so two key values the database treats as one would be two objects in the caches'
  for (const [spec, columns] of keyColumns) {
    columns.forEach((column, i) => {
      if (column.dataType === 'float4') {
        throw schemaError(
          `${what} has the key attribute \`${spec.fields[i]}\` but column \`${column.name}\` of table \`${schema.table}\` is real (single precision), which rounds many numbers to one, ${consequence}: declare it double precision, numeric or an integer type`,
        )
      }
      if (dialect === 'postgres' && column.kind === 'other') {
        // interval, inet, cidr, macaddr, money, time, oid, ranges, composite types, …: PostgreSQL reads
        // different texts as one value ('1 day' and '24 hours'; '10.0.0.1' and '10.0.0.1/32'), and
        // SqlStore cannot tell the spellings apart, so two keys would land on one row.
        throw schemaError(
          `${what} has the key attribute \`${spec.fields[i]}\` but column \`${column.name}\` of table \`${schema.table}\` is ${column.sqlType ?? column.dataType}, a type SqlStore does not map: PostgreSQL reads different texts as one value of it (as '1 day' and '24 hours' for interval), so two keys would land on one row: declare the key column text, varchar, an integer type, numeric, double precision, boolean, uuid or an enum, or do not declare it as a key`,
        )
      }
      if (column.looseEquality === undefined) return
      throw schemaError(
        `${what} has the key attribute \`${spec.fields[i]}\` but column \`${column.name}\` of table \`${schema.table}\` ${column.looseEquality}, ${consequence}: ${LOOSE_FIX[dialect].column}, ${NORMALISE}`,
      )
    })
    const names = new Set(columns.map((c) => c.name))
    for (const index of schema.uniqueIndexes) {
      if (!index.columns.every((c) => names.has(c))) continue
      for (const [column, why] of index.looseColumns) {
        throw schemaError(
          `${what} declares the key ${show(spec.fields)} but the unique index \`${index.name}\` of table \`${schema.table}\` compares column \`${column}\` ${why}, ${consequence}: ${LOOSE_FIX[dialect].index}, ${NORMALISE}`,
        )
      }
    }
  }
}

/**
 * Builds the mapping of a model onto its introspected table.
 * @throws StockpyleError `E_SCHEMA` for two columns that map to one attribute (with `camelCase`:
 *   `foo_bar` and `foo__bar`, or `orgId` and `org_id`), a key attribute without a column, a key column
 *   (or unique index) whose equality is not identity, or a key without a unique index.
 */
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
    if (taken !== undefined) {
      // (only with camelCase: column names of a table are distinct)
      throw schemaError(
        `${store} store: model \`${info.name}\`: columns \`${taken.name}\` and \`${column.name}\` of table \`${schema.table}\` both map to the attribute \`${attribute}\` (option camelCase): rename one of the columns (ALTER TABLE ${schema.table} RENAME COLUMN …), or read the table without camelCase`,
      )
    }
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
  checkKeyEquality(store, dialect, info, schema, keyColumns)
  if (options.checkUniqueKeys) checkKeys(store, info, schema, keyColumns)
  const bufferColumns = new Set<string>()
  for (const column of schema.columns.values()) {
    if (column.kind !== 'bytes' && elementKind(column) !== 'bytes') continue
    const kind =
      typeof options.bytes === 'function' ? options.bytes(info.model, attributeOf.get(column.name) ?? column.name) : options.bytes
    if (kind === 'Buffer') bufferColumns.add(column.name)
  }
  const enumKeys = [...keyColumns.values()].some((columns) => columns.some((c) => c.enumLabels !== undefined))
  return {
    store,
    info,
    dialect,
    schema,
    columnOf,
    attributeOf,
    keyColumns,
    enumKeys,
    bufferColumns,
    toColumnName,
    statements: new StatementCache(),
  }
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
