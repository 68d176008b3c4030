import type { Cluster, Redis } from 'ioredis'
import { redisSlot } from './redis-slot.js'

/** Keys asked of each SCAN step and most keys per UNLINK pipeline. */
export const CLEAR_BATCH = 500

/** A SCAN MATCH pattern matching exactly the keys that start with `prefix`. */
export function prefixPattern(prefix: string): string {
  return `${prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*`
}

/**
 * Removes every key starting with `prefix` from a single node or from every master of a cluster: a
 * cursor SCAN (`MATCH <prefix>*`, `COUNT` {@link CLEAR_BATCH}) per node and, for each page, one
 * pipeline of `UNLINK` per hash slot (a cluster node refuses multi-key commands across slots). Never
 * `KEYS` or `FLUSHDB`. `step` bounds each round trip (the caller's timeout and error translation).
 * Keys written while it runs may survive; resolves to the number of keys unlinked.
 */
export async function unlinkByPrefix(
  client: Redis | Cluster,
  prefix: string,
  step: <T>(work: () => Promise<T>) => Promise<T>,
): Promise<number> {
  const cluster = (client as { isCluster?: boolean }).isCluster === true
  const nodes = cluster ? (client as Cluster).nodes('master') : [client as Redis]
  const pattern = prefixPattern(prefix)
  const counts = await Promise.all(
    nodes.map(async (node) => {
      let cursor = '0'
      let removed = 0
      do {
        const [next, keys] = await step(() => node.scan(cursor, 'MATCH', pattern, 'COUNT', CLEAR_BATCH))
        cursor = next
        if (keys.length === 0) continue
        const bySlot = new Map<number, string[]>()
        for (const key of keys) {
          const slot = cluster ? redisSlot(key) : 0
          const list = bySlot.get(slot)
          if (list === undefined) bySlot.set(slot, [key])
          else list.push(key)
        }
        // A command's own error is thrown inside the step, which names the store and keeps the cause.
        removed += await step(async () => {
          const pipeline = node.pipeline()
          for (const slotKeys of bySlot.values()) pipeline.unlink(...slotKeys)
          let unlinked = 0
          for (const [err, count] of (await pipeline.exec()) ?? []) {
            if (err !== null) throw err
            unlinked += Number(count)
          }
          return unlinked
        })
      } while (cursor !== '0')
      return removed
    }),
  )
  return counts.reduce((a, b) => a + b, 0)
}
