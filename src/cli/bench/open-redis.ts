import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { redactUrl } from '../../core/redact-url.js'
import type { RedisStore } from '../../stores/redis/redis-store.js'
import { BENCH_TTL_SECONDS, type OpenContext, type RedisEnv } from './bench-env.js'
import { BenchSetupError, needed } from './bench-setup-error.js'
import { answered, unlessAborted } from './connect-timeout.js'
import { deleteRunKeys } from './delete-run-keys.js'

/**
 * Connects the floor's ioredis client to `url` (no retries, no reconnecting: a server that cannot
 * be reached fails the run at once) and registers the clean-up: close the run's connections, then
 * delete every key under `<prefix>:` (see {@link deleteRunKeys}).
 * @throws BenchSetupError when the server cannot be reached, or does not answer within 5 s
 */
export async function openRedis(url: string, run: OpenContext): Promise<RedisEnv> {
  const { prefix } = run
  const shown = redactUrl(url)
  // every connection of the run that writes keys carries it: the clean-up closes them on the server
  const connectionName = `${prefix}-${randomUUID()}`
  const { Redis } = await needed(() => import('ioredis'), 'ioredis', 'redis')
  const { RedisStore } = await needed(() => import('../../stores/redis/index.js'), 'ioredis', 'redis')
  let client: Redis
  try {
    client = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: true,
      retryStrategy: () => null,
      // closing drops the socket at once (ioredis waits 2 s for a server that never answers to close it)
      disconnectTimeout: 0,
      connectionName,
    })
  } catch (err) {
    // a URL it cannot read: thrown here, before any connection
    throw new BenchSetupError(`cannot connect to Redis at ${shown}: ${(err as Error).message}`)
  }
  let lastError: Error | undefined
  client.on('error', (err: Error) => {
    lastError = err
  })
  let connected = false
  run.onCleanUp(`delete this run's keys (${prefix}:*) from Redis at ${shown}`, async () => {
    // what the scenarios still send fails from now on (and a connection still being made is
    // dropped); the keys are deleted on a connection of its own, after the server closed the run's
    client.disconnect()
    if (connected)
      await deleteRunKeys(client.duplicate({ connectionName: `${connectionName}-cleanup`, commandTimeout: 5000 }), prefix, connectionName)
  })
  const info = await unlessAborted(
    answered(
      (async () => {
        try {
          await client.connect()
        } catch (err) {
          throw new BenchSetupError(`cannot connect to Redis at ${shown}: ${(lastError ?? (err as Error)).message}`)
        }
        connected = true
        return client.info('server')
      })(),
      `Redis at ${shown}`,
    ),
    run.signal,
  )
  const opened: RedisStore[] = []
  run.onClose(async () => {
    await Promise.allSettled(opened.map((s) => s.close()))
  })
  const redis: RedisEnv = {
    url,
    client,
    version: `Redis ${/redis_version:(\S+)/.exec(info)?.[1] ?? '?'}`,
    newStore: (own) => {
      run.notClosed()
      const store = new RedisStore({
        url,
        prefix: own ?? prefix,
        lifetime: BENCH_TTL_SECONDS,
        timeout: 5000,
        redisOptions: { connectionName },
      })
      opened.push(store)
      return store
    },
  }
  run.log(`  redis: ${shown} (${redis.version})`)
  return redis
}
