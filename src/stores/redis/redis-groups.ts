import type { Cluster } from 'ioredis'
import { redisSlot } from './redis-slot.js'

/** A Redis Cluster's slot table (ioredis `Cluster.slots`): the node addresses serving each slot, master first. */
export type SlotTable = Cluster['slots']

/**
 * Indices of `keys` grouped by the master serving them, in order: one group (`''`) of every index on
 * a single node (`slots` undefined).
 */
export function indicesByMaster(slots: SlotTable | undefined, keys: readonly string[]): Map<string, number[]> {
  if (slots === undefined) return new Map([['', keys.map((_, i) => i)]])
  const byNode = new Map<string, number[]>()
  keys.forEach((key, i) => {
    const slot = redisSlot(key)
    const owner = slots[slot]?.[0] ?? `slot:${slot}`
    const group = byNode.get(owner)
    if (group === undefined) byNode.set(owner, [i])
    else group.push(i)
  })
  return byNode
}

/**
 * Keys grouped for pipelining: one group per cluster node (slots served by the same nodes), each a
 * list of per-slot key lists, by master address. A single node (`slots` undefined) gets one group of
 * one list.
 */
export function keysByMaster(slots: SlotTable | undefined, keys: readonly string[]): Map<string, string[][]> {
  if (slots === undefined) return new Map([['', [[...keys]]]])
  const byNode = new Map<string, string[][]>()
  for (const [slot, slotKeys] of bySlot(keys, (key) => key)) {
    const owner = slots[slot]?.[0] ?? `slot:${slot}`
    const group = byNode.get(owner)
    if (group === undefined) byNode.set(owner, [slotKeys])
    else group.push(slotKeys)
  }
  return byNode
}

/** `items` grouped by the hash slot of their key (`keyOf`), each group in order. */
export function bySlot<T>(items: readonly T[], keyOf: (item: T) => string): Map<number, T[]> {
  const groups = new Map<number, T[]>()
  for (const item of items) {
    const slot = redisSlot(keyOf(item))
    const group = groups.get(slot)
    if (group === undefined) groups.set(slot, [item])
    else group.push(item)
  }
  return groups
}
