import type { Cluster } from 'ioredis'
import { masterInternals } from './cluster-internals.js'

/**
 * A cluster master's connection as ioredis holds it: its state, how many commands await a reply, and
 * what the cluster client is doing (refreshing its slot map, holding commands back for a retry). For
 * error messages only: a timeout then tells a silent server (commands awaiting replies) from a command
 * ioredis never sent.
 */
export function describeConnection(cluster: Cluster, node: string): string {
  const { clusterStatus, refreshing, delayed, connection } = masterInternals(cluster, node)
  const held = Object.entries(delayed)
    .filter(([, n]) => n > 0)
    .map(([bucket, n]) => `${n} ${bucket}`)
  const client = `cluster ${clusterStatus}${refreshing ? ', refreshing its slot map' : ''}${held.length > 0 ? `, delaying ${held.join(', ')}` : ''}`
  if (connection === undefined) return `${client}; no connection to the master in its pool`
  const { status, awaiting, queuedOffline, unsent } = connection
  return `${client}; connection ${status}, ${awaiting ?? '?'} command(s) awaiting a reply, ${queuedOffline ?? '?'} queued offline, ${unsent ?? '?'} byte(s) unsent`
}
