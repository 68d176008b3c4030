/**
 * `stockpyle/sql`: SqlStore, the authoritative layer on SQLite or PostgreSQL through Kysely. Loads
 * `kysely`, and `better-sqlite3` or `pg` for a URL connection; none of them is loaded by `stockpyle`.
 */
export { type CacheSyncOptions, CacheSyncPlugin } from './cache-sync-plugin.js'
export type { ColumnKind, SqlDialect } from './column-kind.js'
export type { SqlConnection } from './connect.js'
export { type ColumnType, type CreateTableOptions, createTable } from './create-table.js'
export { fromTaggedJson, type TaggedJson, toTaggedJson } from './json-codec.js'
export type { TableNaming } from './naming.js'
export type { BytesType } from './row-mapper.js'
export { SqlStore, type SqlStoreOptions } from './sql-store.js'
export { type AfterCommit, SqlTransaction, type TransactionChange } from './sql-transaction.js'
