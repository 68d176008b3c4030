/**
 * The cases `stockpyle bench --profile ROW/CASE` can name, known before anything connects, so that a
 * row or case the run would not have is a usage error rather than a failure after loading the data.
 * Keep in step with the rows and libraries the scenario files build (the peers are left out: the CLI
 * runs none). S7 is measured in child processes and is never profiled.
 */
import type { StoreName } from '../env.js'

/**
 * The rows the scenarios S1–S6 build for `stores`, each with the names of its cases (contenders), in
 * the order the table prints them. S4's `floor` and `stockpyle` write Redis and exist only with it;
 * S5 and S6 run on PostgreSQL when it is selected, else on SQLite.
 */
export function profileCases(stores: ReadonlySet<StoreName>): ReadonlyMap<string, readonly string[]> {
  const rows = new Map<string, readonly string[]>()
  if (stores.has('memory')) rows.set('S1 memory', ['floor', 'stockpyle', 'ProcessMemoryStore alone', 'stockpyle by email'])
  for (const scenario of ['S2', 'S3']) {
    if (stores.has('redis')) rows.set(`${scenario} redis`, ['floor', 'stockpyle', 'RedisStore alone'])
    if (stores.has('memcached')) rows.set(`${scenario} memcached`, ['floor', 'stockpyle', 'MemcacheStore alone'])
  }
  for (const dialect of ['sqlite', 'postgres'] as const) {
    if (stores.has(dialect))
      rows.set(`S4 ${dialect}`, [...(stores.has('redis') ? ['floor', 'stockpyle'] : []), 'query + mapping', 'SqlStore alone'])
  }
  const db = stores.has('postgres') ? 'postgres' : stores.has('sqlite') ? 'sqlite' : undefined
  if (db !== undefined) {
    rows.set(`S5 ${db}`, ['floor', 'stockpyle'])
    rows.set(`S6 ${db}`, ['floor', 'stockpyle'])
  }
  return rows
}
