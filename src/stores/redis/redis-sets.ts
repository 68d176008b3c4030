import type { Cluster, Redis } from 'ioredis'
import type { KeyValueEntry } from '../../contracts/key-value-backend.js'
import { bySlot } from './redis-groups.js'
import { DIRECT_MAX, queueSets, sendSets } from './redis-pipeline.js'
import { NodePipeline } from './redis-redirects.js'
import { dropCopies, isOutOfMemory } from './redis-repair.js'

/**
 * Sends `SET key value [PX ms]` (`DEL` for an entry already expired by `now`) for each entry of
 * `indices`, all served by one node: a single node's few commands one by one in one write, otherwise
 * one pipeline. Where the node refused a SET for lack of memory (OOM: `maxmemory` with policy
 * `noeviction`), the copies those keys hold are deleted at once (tombstones kept, see
 * {@link dropCopies}): the value written failed, so the one it was to replace must not be read either.
 * @throws the first command's error (the OOM refusal itself after the copies were dropped).
 */
export async function setOnNode(
  client: Redis | Cluster,
  cluster: boolean,
  entries: readonly KeyValueEntry[],
  indices: readonly number[],
  now: number,
): Promise<void> {
  let errors: unknown[]
  if (!cluster && indices.length <= DIRECT_MAX) {
    const settled = await Promise.allSettled(sendSets(client as Redis, entries, indices, now))
    errors = settled.map((r) => (r.status === 'rejected' ? r.reason : null))
  } else {
    const pipeline = new NodePipeline()
    queueSets(pipeline, entries, indices, now)
    errors = (await pipeline.exec(client)).map(([err]) => err)
  }
  const first = errors.find((err) => err !== null && err !== undefined)
  if (first === undefined) return
  // one command per index, in order
  const refused = indices.filter((_, j) => isOutOfMemory(errors[j])).map((i) => (entries[i] as KeyValueEntry).key)
  if (refused.length > 0) {
    const slotKeys = cluster ? [...bySlot(refused, (key) => key).values()] : [refused]
    // the failure stays the refusal's: a failed drop only leaves what the refusal already left
    await dropCopies(client, slotKeys).catch(() => {})
  }
  throw first
}
