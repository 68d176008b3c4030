import { memcacheExptime } from './memcache-exptime.js'
import { toBuffer } from './memcache-node-refill.js'
import type { NodeRepair } from './memcache-node-repair.js'
import type { MemcacheBackendOptions } from './memcache-options.js'

/**
 * A repair decision (`keep`, `delete`, or the entry to write back) as the node client takes it: the
 * entry's bytes as a Buffer, its expiry (ms since the epoch, `undefined` = never) as memcached's
 * `exptime` by `now` (ms, the store's clock).
 */
export function nodeRepair(decision: ReturnType<NonNullable<MemcacheBackendOptions['repairKey']>>, now: number): NodeRepair {
  if (decision === 'keep' || decision === 'delete') return decision
  return { value: toBuffer(decision.value), exptime: memcacheExptime(decision.expiresAt, now) }
}
