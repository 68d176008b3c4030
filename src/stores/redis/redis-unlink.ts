import type { Cluster, Redis } from 'ioredis'
import { isRedirection, NodePipeline } from './redis-redirects.js'
import { redisSlot } from './redis-slot.js'

/** Bounds one round trip (the caller's timeout and error translation); `node` names the master on a cluster. */
export type ClearStep = <T>(work: () => Promise<T>, node?: string) => Promise<T>

/**
 * Unlinks `keys`, all found on `node` (`address` its `host:port`), in one round trip when nothing
 * moved: one pipeline to `node` of one `UNLINK` per hash slot (a cluster node refuses multi-key
 * commands across slots). On a cluster, a slot whose `UNLINK` the node redirected (`MOVED`, `ASK`,
 * `TRYAGAIN`: a reshard moved the slot or some of its keys since they were found) is sent again
 * through the cluster client as one `UNLINK` per key (see `NodePipeline`), so each redirection is
 * followed and none is a split slot's `TRYAGAIN`. Resolves to the number of keys unlinked.
 * @throws the first reply error that is not a redirection, or one a resent key still met, through
 * `step` naming the master.
 */
export async function unlinkKeys(
  client: Redis | Cluster,
  cluster: boolean,
  node: Redis,
  address: string | undefined,
  keys: readonly string[],
  step: ClearStep,
): Promise<number> {
  const bySlot = new Map<number, string[]>()
  for (const key of keys) {
    const slot = cluster ? redisSlot(key) : 0
    const list = bySlot.get(slot)
    if (list === undefined) bySlot.set(slot, [key])
    else list.push(key)
  }
  const groups = [...bySlot.values()]
  const redirected: string[][] = []
  let unlinked = await step(async () => {
    const pipeline = node.pipeline()
    for (const slotKeys of groups) pipeline.unlink(...slotKeys)
    let count = 0
    ;((await pipeline.exec()) ?? []).forEach(([err, n], i) => {
      if (err === null) count += Number(n)
      else if (cluster && isRedirection(err)) redirected.push(groups[i] as string[])
      else throw err
    })
    return count
  }, address)
  if (redirected.length === 0) return unlinked
  unlinked += await step(async () => {
    const counts = await Promise.all(
      redirected.map(async (slotKeys) => {
        const pipeline = new NodePipeline()
        for (const key of slotKeys) pipeline.call('unlink', key)
        let count = 0
        for (const [err, n] of await pipeline.exec(client)) {
          if (err !== null) throw err
          count += Number(n)
        }
        return count
      }),
    )
    return counts.reduce((a, b) => a + b, 0)
  }, address)
  return unlinked
}
