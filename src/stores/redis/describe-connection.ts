import type { Cluster, Redis } from 'ioredis'

/**
 * A cluster master's connection as ioredis holds it: its state, how many commands await a reply, and
 * what the cluster client is doing (refreshing its slot map, holding commands back for a retry). Reads
 * ioredis internals (5.x), for error messages only: a timeout then tells a silent server (commands
 * awaiting replies) from a command ioredis never sent.
 */
export function describeConnection(cluster: Cluster, node: string): string {
  const internal = cluster as unknown as {
    connectionPool?: { getInstanceByKey(key: string): Redis | undefined }
    _refreshSlotsCacheCallbacks?: unknown[]
    delayQueue?: { queues: Record<string, { length: number } | undefined> }
  }
  const redis = internal.connectionPool?.getInstanceByKey(node)
  const refreshing = internal._refreshSlotsCacheCallbacks !== undefined && internal._refreshSlotsCacheCallbacks !== null
  const delayed = Object.entries(internal.delayQueue?.queues ?? {})
    .filter(([, q]) => (q?.length ?? 0) > 0)
    .map(([bucket, q]) => `${q?.length} ${bucket}`)
  const client = `cluster ${cluster.status}${refreshing ? ', refreshing its slot map' : ''}${delayed.length > 0 ? `, delaying ${delayed.join(', ')}` : ''}`
  if (redis === undefined) return `${client}; no connection to the master in its pool`
  const conn = redis as unknown as {
    commandQueue?: { length: number }
    offlineQueue?: { length: number }
    stream?: { writableLength?: number }
  }
  return `${client}; connection ${redis.status}, ${conn.commandQueue?.length ?? '?'} command(s) awaiting a reply, ${conn.offlineQueue?.length ?? '?'} queued offline, ${conn.stream?.writableLength ?? '?'} byte(s) unsent`
}
