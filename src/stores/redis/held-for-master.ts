import type { Cluster, Redis } from 'ioredis'

/** What a cluster client holds for one master, read when that master's part of a call ran late. */
export interface HeldForMaster {
  /**
   * The master's connection is ready and holds nothing of it: no command awaits its reply, none is
   * queued offline, no byte is unsent — the master answered everything it was sent.
   */
  readonly idle: boolean
  /**
   * Commands the client holds back to retry after `TRYAGAIN` (a multi-key command on a slot whose keys
   * a migration split between two masters); for the whole client, not this master only.
   */
  readonly retrying: number
}

/**
 * What `cluster` holds for master `node` (`host:port`). Reads ioredis internals (5.x), as
 * `describeConnection` does: a master unknown to the pool, or internals that changed, read as not idle
 * (the caller then treats the master as silent, which it was before this was read).
 */
export function heldForMaster(cluster: Cluster, node: string): HeldForMaster {
  const internal = cluster as unknown as {
    connectionPool?: { getInstanceByKey(key: string): Redis | undefined }
    delayQueue?: { queues: Record<string, { length: number } | null | undefined> }
  }
  const retrying = internal.delayQueue?.queues.tryagain?.length ?? 0
  const redis = internal.connectionPool?.getInstanceByKey(node)
  if (redis === undefined) return { idle: false, retrying }
  const conn = redis as unknown as {
    commandQueue?: { length: number }
    offlineQueue?: { length: number }
    stream?: { writableLength?: number }
  }
  const idle =
    redis.status === 'ready' &&
    conn.commandQueue?.length === 0 &&
    conn.offlineQueue?.length === 0 &&
    (conn.stream?.writableLength ?? 0) === 0
  return { idle, retrying }
}
