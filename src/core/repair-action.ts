import { encodeTombstone, envelopeExpiry, envelopeKind, KIND_TOMBSTONE } from './codec.js'

/**
 * What a repair does to one cache key (see {@link repairAction}):
 * - `keep`: leave what the key holds;
 * - `add`: store a tombstone lasting until the repair's `until`, only where the key still holds nothing;
 * - `replace`: overwrite the key's record, alias or shorter tombstone with that tombstone;
 * - `delete`: remove the key's record or alias (a tombstone is no longer needed: `until` has passed).
 */
export type RepairAction = 'keep' | 'add' | 'replace' | 'delete'

/**
 * Decides a repair of a key whose write or invalidation failed, from what the key holds now.
 *
 * The failed change must not be undone by a copy read before it, so the key must hold no copy, and a
 * tombstone until `until` (the failure time plus the tombstone lifetime, ms since the epoch) while
 * backfills of such copies may still arrive. A repair never shortens or removes a tombstone: a longer
 * one was left by another process's later delete, and cutting it short would let a copy read before
 * that delete be backfilled.
 * @param current What the key holds (an envelope), `undefined` for nothing.
 * @param now The store clock's time, ms since the epoch.
 */
export function repairAction(current: Uint8Array | undefined, until: number, now: number): RepairAction {
  const needed = until > now
  if (current === undefined) return needed ? 'add' : 'keep'
  if (envelopeKind(current) === KIND_TOMBSTONE) {
    // a tombstone's expiry 0 means never
    const expiry = envelopeExpiry(current) ?? Number.POSITIVE_INFINITY
    return needed && expiry < until ? 'replace' : 'keep'
  }
  return needed ? 'replace' : 'delete'
}

/**
 * What a repair writes to one key, as {@link repairAction} decides: `'keep'`, `'delete'`, or the
 * repair's tombstone envelope (expiring at `until`, ms since the epoch) to add or put in its place.
 */
export function repairWrite(
  current: Uint8Array | undefined,
  until: number,
  now: number,
): 'keep' | 'delete' | { readonly value: Uint8Array; readonly expiresAt: number } {
  const action = repairAction(current, until, now)
  return action === 'keep' || action === 'delete' ? action : { value: encodeTombstone(until), expiresAt: until }
}
