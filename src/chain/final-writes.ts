import type { TransactionWrite } from '../contracts/store.js'
import { identityKey } from './backfill.js'

/**
 * The writes of a committed transaction that the caches must apply: each object's last write only,
 * in the order of the writes (an earlier write of an object is left out where it stood). What a later
 * write of the same object replaced was never committed: landing in a cache, even for a moment, it
 * would be served to readers (an email swap through a temporary value, say). Objects without an
 * identity (no primary key value) are all kept. Writes left with no object are dropped.
 */
export function finalWrites(writes: readonly TransactionWrite[]): TransactionWrite[] {
  const last = new Map<string, number>()
  let at = 0
  for (const write of writes) {
    for (const obj of write.objects) {
      const key = identityKey(obj)
      if (key !== undefined) last.set(key, at)
      at++
    }
  }
  if (last.size === at) return writes as TransactionWrite[]
  const out: TransactionWrite[] = []
  at = 0
  for (const { operation, objects } of writes) {
    const kept = objects.filter((obj, i) => {
      const key = identityKey(obj)
      return key === undefined || last.get(key) === at + i
    })
    at += objects.length
    if (kept.length > 0) out.push({ operation, objects: kept })
  }
  return out
}
