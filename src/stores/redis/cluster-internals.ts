import type { Cluster, Redis } from 'ioredis'

/** What a cluster client holds for one master, read from ioredis internals (5.x). */
export interface MasterInternals {
  /** The cluster client's status (`ready`, `connecting`, …). */
  readonly clusterStatus: string
  /** The client is refreshing its slot map. */
  readonly refreshing: boolean
  /** Commands the client holds back for a retry, per reason (`tryagain`, `failover`, …): the whole client's. */
  readonly delayed: Readonly<Record<string, number>>
  /** The master's connection, `undefined` when the pool has none for it; each count `undefined` when unknown. */
  readonly connection:
    | {
        readonly status: string
        /** Commands sent that await a reply. */
        readonly awaiting: number | undefined
        readonly queuedOffline: number | undefined
        /** Bytes written but not sent yet. */
        readonly unsent: number | undefined
      }
    | undefined
}

/**
 * What `cluster` holds for master `node` (`host:port`): the one place that reads ioredis internals,
 * for error messages (`describeConnection`) and for telling a silent master from a live one
 * (`heldForMaster`). Internals missing read as unknown (`undefined`); internals changed in shape may throw
 * (both callers catch it: the message goes without, the master counts as silent).
 */
export function masterInternals(cluster: Cluster, node: string): MasterInternals {
  const internal = cluster as unknown as {
    connectionPool?: { getInstanceByKey(key: string): Redis | undefined }
    _refreshSlotsCacheCallbacks?: unknown[] | null
    delayQueue?: { queues: Record<string, { length: number } | null | undefined> }
  }
  const delayed: Record<string, number> = {}
  for (const [bucket, queue] of Object.entries(internal.delayQueue?.queues ?? {})) delayed[bucket] = queue?.length ?? 0
  const redis = internal.connectionPool?.getInstanceByKey(node)
  const conn = redis as unknown as
    | { status: string; commandQueue?: { length: number }; offlineQueue?: { length: number }; stream?: { writableLength?: number } }
    | undefined
  return {
    clusterStatus: cluster.status,
    refreshing: internal._refreshSlotsCacheCallbacks !== undefined && internal._refreshSlotsCacheCallbacks !== null,
    delayed,
    connection:
      conn === undefined
        ? undefined
        : {
            status: conn.status,
            awaiting: conn.commandQueue?.length,
            queuedOffline: conn.offlineQueue?.length,
            unsent: conn.stream?.writableLength,
          },
  }
}
