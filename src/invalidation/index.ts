/**
 * `stockpyle/invalidation`: keeping caches coherent across processes.
 *
 * - {@link RedisBus} (Redis pub/sub) and {@link PostgresBus} (LISTEN/NOTIFY): invalidation buses for
 *   `ProcessMemoryStore`'s `bus` option, so a put or delete in one process evicts the object from the
 *   memory layer of every other process.
 * - {@link installInvalidationTriggers} + {@link watchDatabase}: rows changed by any client of a
 *   PostgreSQL database are evicted from every cache layer of every process running a watcher.
 *
 * Drivers are loaded only when a bus or watcher first needs them: `ioredis` by RedisBus, and `pg` and
 * `kysely` through the SQL store's connection code (`stockpyle/sql`), which this module reuses.
 */

export type { InvalidationBus, InvalidationListener } from '../contracts/invalidation-bus.js'
export type { ListenConnectionOptions } from '../stores/sql/pg-driver.js'
export {
  type DatabaseWatcher,
  DEFAULT_ROWS_CHANNEL,
  type InstalledTrigger,
  type InvalidationTriggerOptions,
  installInvalidationTriggers,
  ROW_TRIGGER,
  type RowChange,
  removeInvalidationTriggers,
  TRUNCATE_TRIGGER,
  type WatchDatabaseOptions,
  watchDatabase,
} from './database-invalidation.js'
export { PostgresBus, type PostgresBusOptions } from './postgres-bus.js'
export { RedisBus } from './redis-bus.js'
export type { RedisBusOptions } from './redis-bus-options.js'
