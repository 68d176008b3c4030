import type { KeyInfo, ModelInfo } from '../../core/registry.js'
import type { ColumnInfo, SqlDialect } from './column-kind.js'
import type { StatementCache } from './statement-cache.js'
import type { TableSchema } from './table-schema.js'

/** How a bytes column comes back: Node's `Buffer` (default) or a plain `Uint8Array`. */
export type BytesType = 'Uint8Array' | 'Buffer'

/** Everything needed to turn a model's objects into rows of its table and back. */
export interface ModelMapping {
  readonly store: string
  readonly info: ModelInfo
  readonly dialect: SqlDialect
  readonly schema: TableSchema
  /** Column of each attribute that has one. */
  readonly columnOf: ReadonlyMap<string, ColumnInfo>
  /** Attribute of each column. */
  readonly attributeOf: ReadonlyMap<string, string>
  /** For each declared key (same order as `info.keys`), the columns of its fields (same order as `spec.fields`). */
  readonly keyColumns: ReadonlyMap<KeyInfo, readonly ColumnInfo[]>
  /** Some key column is an enum (or a domain over one): lookups by a string its labels lack read them again first (enum-label-checks.ts). */
  readonly enumKeys: boolean
  /** Columns whose bytes (PostgreSQL: also a bytea array's elements) come back as `Buffer`. */
  readonly bufferColumns: ReadonlySet<string>
  /** Maps an attribute name to its column name (identity, or snake_case with `camelCase`). */
  readonly toColumnName: (attribute: string) => string
  /** The table's statements compiled once per shape (one-row upserts). */
  readonly statements: StatementCache
}

/** A row to write: column name → driver value, for the attributes the object defines. */
export type RowValues = Record<string, unknown>
