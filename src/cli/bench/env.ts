/**
 * Connections of one benchmark run: the raw clients the floors use (ioredis, memcache-client,
 * Kysely) and factories for stockpyle's stores. Drivers are imported only for the stores selected,
 * so `stockpyle bench` needs nothing that the chosen stores do not.
 */
import { randomBytes } from 'node:crypto'
import { Packr } from 'msgpackr'
import type { BenchEnv, OpenContext, Targets } from './bench-env.js'
import { openMemcached } from './open-memcached.js'
import { openRedis } from './open-redis.js'
import { openSql } from './open-sql.js'

export {
  BENCH_TTL_SECONDS,
  type BenchEnv,
  type MemcachedEnv,
  type RedisEnv,
  ROWS,
  type SqlEnv,
  STORE_NAMES,
  type StoreName,
  type Targets,
} from './bench-env.js'
export { BenchSetupError } from './bench-setup-error.js'

/**
 * The names of one run: a random id (8 hex digits), the prefix of its cache keys
 * (`stockpyle-bench-<id>`, or `prefix` when given) and its table (`stockpyle_bench_users_<id>`), so
 * that runs sharing a server never read, delete or drop each other's data.
 */
export function runNames(prefix?: string): { id: string; prefix: string; table: string } {
  const id = randomBytes(4).toString('hex')
  return { id, prefix: prefix ?? `stockpyle-bench-${id}`, table: `stockpyle_bench_users_${id}` }
}

/**
 * Opens the connections for the selected stores and loads the SQL tables. When `signal` aborts
 * (SIGINT) — while a server is being reached included — the opening stops at once and the
 * environment is closed (see {@link BenchEnv.close}: connections still being made are dropped), so
 * that the work still running fails fast and leaves nothing behind.
 * @param log progress lines (the run's key prefix and table first)
 * @param warn a clean-up step that failed, one line (`cannot delete this run's keys (…) from Redis at …: NOPERM …`); default `log`
 * @throws BenchSetupError when a server cannot be reached or does not answer within 5 s, or the
 *   SQLite file cannot be opened; the signal's reason when it aborts
 */
export async function openEnv(
  targets: Targets,
  log: (line: string) => void,
  signal?: AbortSignal,
  warn: (line: string) => void = log,
): Promise<BenchEnv> {
  signal?.throwIfAborted()
  const { prefix, table } = runNames(targets.prefix)
  const closers: { close: () => Promise<void> | void; what?: string }[] = []
  const packr = new Packr({ moreTypes: true, useRecords: true } as ConstructorParameters<typeof Packr>[0])
  let closing: Promise<void> | undefined
  const onAbort = (): void => void env.close()
  const env: { -readonly [K in keyof BenchEnv]: BenchEnv[K] } = {
    targets,
    prefix,
    table,
    packr,
    close: () => {
      signal?.removeEventListener('abort', onAbort)
      closing ??= (async () => {
        for (const { close, what } of closers.reverse()) {
          try {
            await close()
          } catch (err) {
            if (what !== undefined) warn(`cannot ${what}: ${String((err as Error)?.message ?? err).replace(/\s+/g, ' ')}`)
          }
        }
      })()
      return closing
    },
  }
  const run: OpenContext = {
    prefix,
    table,
    signal,
    log,
    onClose: (close) => closers.push({ close }),
    onCleanUp: (what, close) => closers.push({ close, what }),
    notClosed: () => {
      if (closing !== undefined) throw new Error('the benchmark environment is closed (interrupted)')
    },
  }
  // from the first connection on: closing drops what is still connecting
  signal?.addEventListener('abort', onAbort, { once: true })
  const { stores } = targets
  const writes = [
    ...(stores.has('redis') || stores.has('memcached') ? [`cache keys under ${prefix}:`] : []),
    ...(stores.has('sqlite') || stores.has('postgres') ? [`table ${table}`] : []),
  ]
  if (writes.length > 0) log(`  this run: ${writes.join(' and ')}`)
  try {
    if (stores.has('redis')) {
      env.redis = await openRedis(targets.redisUrl ?? 'redis://127.0.0.1:6379', run)
      signal?.throwIfAborted()
    }
    if (stores.has('memcached')) {
      env.memcached = await openMemcached(targets.memcached ?? ['127.0.0.1:11211'], run)
      signal?.throwIfAborted()
    }
    if (stores.has('sqlite')) env.sqlite = await openSql('sqlite', targets.sqlitePath, run)
    if (stores.has('postgres')) env.postgres = await openSql('postgres', targets.postgresUrl, run)
    signal?.throwIfAborted()
  } catch (err) {
    await env.close()
    throw err
  }
  return env
}
