/**
 * Database-driven invalidation for PostgreSQL: {@link installInvalidationTriggers} makes every row
 * change NOTIFY a channel (transactionally: at commit, in commit order, never for a rollback), and
 * {@link watchDatabase} LISTENs and evicts the changed rows from every cache layer of a process.
 */
export {
  DEFAULT_ROWS_CHANNEL,
  type InstalledTrigger,
  type InvalidationTriggerOptions,
  installInvalidationTriggers,
  ROW_TRIGGER,
  removeInvalidationTriggers,
  TRUNCATE_TRIGGER,
} from './invalidation-triggers.js'
export type { RowChange } from './row-change.js'
export { type DatabaseWatcher, type WatchDatabaseOptions, watchDatabase } from './watch-database.js'
