import type { Cluster, Redis } from 'ioredis'
import { StoreUnavailableError } from '../../core/errors.js'
import { type ClusterLayout, readLayout } from './cluster-layout.js'
import { SLOT_COUNT } from './redis-slot.js'
import { type ClearStep, unlinkKeys } from './redis-unlink.js'

export type { ClearStep } from './redis-unlink.js'

/** Keys asked of each SCAN step and most keys per UNLINK pipeline. */
export const CLEAR_BATCH = 500

/** Most passes (a full one, then sweeps of the slots that moved) one clear makes on a cluster whose slot layout keeps changing. */
export const CLEAR_PASSES = 10

/** A SCAN MATCH pattern matching exactly the keys that start with `prefix`. */
export function prefixPattern(prefix: string): string {
  return `${prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*`
}

/** A node's SCAN, or a slot's sweep on it, starting or ending in one pass of a clear (see {@link ClearContext.onScan}). */
export interface ScanEvent {
  /** `host:port` of the node scanned. */
  readonly node: string
  /** 1 for the first pass over the masters. */
  readonly pass: number
  readonly phase: 'start' | 'end'
  /** The slot swept (`CLUSTER GETKEYSINSLOT`); `undefined` for a SCAN of the whole node. */
  readonly slot?: number
}

/** What {@link unlinkByPrefix} needs of its caller. */
export interface ClearContext {
  /** The store's name, for messages. */
  readonly owner: string
  /**
   * Bounds one round trip and waits for the client to be ready (the caller's timeout and error
   * translation); `node` is the master's `host:port` on a cluster, for the message.
   */
  readonly step: ClearStep
  /** Most passes over a cluster's masters; default {@link CLEAR_PASSES}. */
  readonly passes?: number | undefined
  /** Test seam: awaited when a node's SCAN (or a slot's sweep on it) starts and when it ended, in each pass. */
  readonly onScan?: ((event: ScanEvent) => Promise<void> | void) | undefined
}

/**
 * Removes every key starting with `prefix` from a single node or from every master of a cluster: a
 * cursor SCAN (`MATCH <prefix>*`, `COUNT` {@link CLEAR_BATCH}) per node and, for each page, one
 * pipeline of `UNLINK` per hash slot (see `unlinkKeys`). Never `KEYS` or `FLUSHDB`.
 *
 * On a cluster the pass scans every master at once, and a reshard can move a key from a master not
 * yet scanned to one already scanned. So the pass reads the slot layout (`CLUSTER NODES` of every
 * master, see `ClusterLayout`) before and after; each slot whose state changed meanwhile, or that was
 * being migrated, is then swept with `CLUSTER GETKEYSINSLOT` on the masters that may hold it, in the
 * order keys move (source, then target), and the layout read again: a slot that changed during its
 * sweep is swept again. A master serving slots that the client did not know of gets a full pass, once
 * the client's slot map is refreshed. A failover during a pass is a layout change too: when a pass
 * fails (every master's part is awaited first) and, the client's slot map refreshed, a master of the
 * pass is no longer among the client's masters (demoted, or its connection closed and replaced, as
 * ioredis does when a node's role changes) and the client's current masters answer, every current
 * master gets a full pass. Every pass and sweep counts towards `passes`. Keys written while it runs
 * may survive; resolves to the number of keys unlinked.
 * @throws StoreUnavailableError when the layout still changed in the last pass allowed (the cluster
 * kept resharding), or a master was still demoted or replaced in it (failover), the last failure as
 * `cause`: keys of the prefix may remain; otherwise whatever `step` throws (a master's failure, named).
 */
export async function unlinkByPrefix(client: Redis | Cluster, prefix: string, context: ClearContext): Promise<number> {
  const pattern = prefixPattern(prefix)
  const tally = { removed: 0 }
  if ((client as { isCluster?: boolean }).isCluster !== true) {
    await sweepNode(client, false, client as Redis, undefined, pattern, 1, context, tally)
    return tally.removed
  }
  const cluster = client as Cluster
  const { owner, step } = context
  const passes = context.passes ?? CLEAR_PASSES
  let masters: Redis[] = []
  /** Slots to sweep; `undefined`: every master needs a full pass. */
  let slots: number[] | undefined
  let layout: ClusterLayout | undefined
  let why = ''
  /** The failure that made the last pass a failover's (see {@link leftMasters}). */
  let failure: unknown
  for (let pass = 1; ; pass++) {
    if (pass > 1) {
      if (pass > passes && failure !== undefined) {
        throw new StoreUnavailableError(
          `${owner} store clear: a master was demoted or its connection replaced during clear (failover?): ${why} in pass ${passes}, the last allowed; keys of the prefix may remain (clear again)`,
          { cause: failure },
        )
      }
      if (pass > passes) {
        throw new StoreUnavailableError(
          `${owner} store clear: the cluster kept resharding: ${why} during each of ${passes} passes over its masters; keys of the prefix may remain (clear again once the reshard is over)`,
        )
      }
      // the client's map missed a master: read it again (it connects to the masters it names)
      if (slots === undefined) await step(() => refreshSlots(cluster))
    }
    failure = undefined
    let before: ClusterLayout
    try {
      if (slots === undefined || layout === undefined) {
        // in a step: a client not connected yet connects first, and only then knows its masters
        masters = await step(async () => cluster.nodes('master'))
        if (masters.length === 0) throw new StoreUnavailableError(`${owner} store clear: the cluster client knows no master`)
        layout = await readLayout(masters, (node) => step(() => clusterNodes(node), addressOf(node)))
      }
      before = layout
      if (slots === undefined) {
        await settled(masters.map((node) => sweepNode(cluster, true, node, addressOf(node), pattern, pass, context, tally)))
      } else {
        await sweepSlots(cluster, before, slots, prefix, pass, context, tally)
      }
      layout = await readLayout(masters, (node) => step(() => clusterNodes(node), addressOf(node)))
    } catch (err) {
      const left = await leftMasters(cluster, masters, step)
      if (left.length === 0) throw err
      why = `master(s) ${left.join(', ')} left the client's masters (${messageOf(err)})`
      failure = err
      slots = undefined
      layout = undefined
      continue
    }
    const unread = [...new Set([...before.unread, ...layout.unread])]
    if (unread.length > 0) {
      why = `master(s) ${unread.join(', ')} served slots (or took part in a migration) unknown to the client`
      slots = undefined
      continue
    }
    const after = layout
    // after a full pass, a slot being migrated is swept too: its source and target were scanned at once
    const full = slots === undefined
    slots = (slots ?? allSlots()).filter(
      (slot) => before.changed(after, slot) || (full && (before.migrating(slot) || after.migrating(slot))),
    )
    if (slots.length === 0) return tally.removed
    why = 'the slot layout changed'
  }
}

/**
 * After a failed pass over `masters`: refreshes the client's slot map and returns the `host:port` of
 * each of `masters` that is no longer among the client's masters (demoted by a failover, or its
 * connection closed and replaced). Empty when none left, or when a master's replacement at the same
 * address does not answer `CLUSTER NODES` (a master down: its failure stands), or the check failed.
 */
async function leftMasters(cluster: Cluster, masters: readonly Redis[], step: ClearStep): Promise<string[]> {
  try {
    await step(() => refreshSlots(cluster))
    const now = await step(async () => cluster.nodes('master'))
    const left = masters.filter((node) => !now.includes(node))
    for (const node of left) {
      const address = addressOf(node)
      const replacement = now.find((n) => addressOf(n) === address)
      if (replacement !== undefined) await step(() => clusterNodes(replacement), address)
    }
    return left.map(addressOf)
  } catch {
    return []
  }
}

/** Awaits every one of `work`, then rethrows the first failure (none is left running into the next pass). */
async function settled(work: readonly Promise<void>[]): Promise<void> {
  const failed = (await Promise.allSettled(work)).find((r) => r.status === 'rejected')
  if (failed !== undefined) throw failed.reason
}

/** An error's message, for another error's. */
function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** Slot numbers 0–16383. */
function allSlots(): number[] {
  return Array.from({ length: SLOT_COUNT }, (_, slot) => slot)
}

/** Most slots swept at once. */
const SLOTS_AT_ONCE = 64

/**
 * Unlinks the keys of `prefix` in each of `slots` that `CLUSTER GETKEYSINSLOT` lists on the masters
 * that may hold it by `layout`, one after another in the order keys move (see `ClusterLayout.holders`).
 */
async function sweepSlots(
  cluster: Cluster,
  layout: ClusterLayout,
  slots: readonly number[],
  prefix: string,
  pass: number,
  context: ClearContext,
  tally: Tally,
): Promise<void> {
  for (let i = 0; i < slots.length; i += SLOTS_AT_ONCE) {
    await settled(
      slots.slice(i, i + SLOTS_AT_ONCE).map(async (slot) => {
        for (const node of layout.holders(slot)) await sweepSlot(cluster, node, slot, prefix, pass, context, tally)
      }),
    )
  }
}

/** Keys unlinked so far by one clear (counted as they go: a pass that fails keeps its count). */
interface Tally {
  removed: number
}

/** Unlinks the keys of `prefix` that `CLUSTER GETKEYSINSLOT` lists for `slot` on `node`. */
async function sweepSlot(
  cluster: Cluster,
  node: Redis,
  slot: number,
  prefix: string,
  pass: number,
  { step, onScan }: ClearContext,
  tally: Tally,
): Promise<void> {
  const address = addressOf(node)
  await onScan?.({ node: address, pass, phase: 'start', slot })
  // GETKEYSINSLOT has no cursor: ask for more until the answer is short of the count (all listed)
  for (let count = CLEAR_BATCH; ; count *= 2) {
    const keys = (await step(() => node.call('CLUSTER', 'GETKEYSINSLOT', String(slot), String(count)), address)) as string[]
    const mine = keys.filter((key) => key.startsWith(prefix))
    // the count is read after the await: `tally.removed += await …` would read it before (lost updates)
    if (mine.length > 0) {
      const unlinked = await unlinkKeys(cluster, true, node, address, mine, step)
      tally.removed += unlinked
    }
    if (keys.length < count) break
  }
  await onScan?.({ node: address, pass, phase: 'end', slot })
}

/** `host:port` of a node's connection. */
function addressOf(node: Redis): string {
  return `${node.options.host}:${node.options.port}`
}

function clusterNodes(node: Redis): Promise<string> {
  return node.call('CLUSTER', 'NODES') as Promise<string>
}

/** Asks the cluster client to read its slot map again; resolves when it did (or failed: the next commands tell). */
function refreshSlots(cluster: Cluster): Promise<void> {
  return new Promise<void>((resolve) => {
    try {
      cluster.refreshSlotsCache(() => resolve())
    } catch {
      resolve()
    }
  })
}

/** Unlinks, page by page, every key a cursor SCAN of `node` finds for `pattern`, counting them in `tally`. */
async function sweepNode(
  client: Redis | Cluster,
  cluster: boolean,
  node: Redis,
  address: string | undefined,
  pattern: string,
  pass: number,
  { step, onScan }: ClearContext,
  tally: Tally,
): Promise<void> {
  const event = address ?? addressOf(node)
  await onScan?.({ node: event, pass, phase: 'start' })
  let cursor = '0'
  do {
    const [next, keys] = await step(() => node.scan(cursor, 'MATCH', pattern, 'COUNT', CLEAR_BATCH), address)
    cursor = next
    if (keys.length > 0) {
      const unlinked = await unlinkKeys(client, cluster, node, address, keys, step)
      tally.removed += unlinked
    }
  } while (cursor !== '0')
  await onScan?.({ node: event, pass, phase: 'end' })
}
