import type { Cluster } from 'ioredis'
import { masterInternals } from './cluster-internals.js'

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
 * What `cluster` holds for master `node` (`host:port`), from {@link masterInternals}: a master unknown
 * to the pool, or internals that changed, read as not idle (the caller then treats the master as
 * silent, which it was before this was read).
 */
export function heldForMaster(cluster: Cluster, node: string): HeldForMaster {
  const { delayed, connection: c } = masterInternals(cluster, node)
  const idle = c !== undefined && c.status === 'ready' && c.awaiting === 0 && c.queuedOffline === 0 && (c.unsent ?? 0) === 0
  return { idle, retrying: delayed.tryagain ?? 0 }
}
