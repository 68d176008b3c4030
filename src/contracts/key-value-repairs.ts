import { encodeTombstone } from '../core/codec.js'
import type { Clock } from '../core/lifetime.js'
import { isPartialFailure, type PartialFailureError } from '../core/partial-failure.js'
import { repairAction } from '../core/repair-action.js'
import type { KeyValueBackend, KeyValueEntry } from './key-value-backend.js'
import { ascending, partialFailure, settledFailures } from './key-value-failures.js'

/**
 * Repairs `keys` after a change that failed: reads what each holds, then leaves, adds, replaces or
 * deletes as {@link repairAction} decides, so that no copy stays and no tombstone is cut short. A key
 * whose add finds something arrived since the read is overwritten with the tombstone (what arrived may
 * be a copy read before the change). A backend with `repairMany` does it all in one atomic step per
 * key; otherwise the read and the write are two, and a tombstone written between them, by another
 * process, can still be replaced by this repair's shorter one.
 * @param until When the repair's tombstone may end (ms since the epoch).
 * @throws PartialFailureError whose `failed` are positions of `keys` left unrepaired; any other error
 *   when nothing is known to be repaired.
 */
export async function repairKeys(
  backend: KeyValueBackend,
  operation: string,
  keys: readonly string[],
  until: number,
  clock: Clock,
): Promise<void> {
  if (backend.repairMany !== undefined) return backend.repairMany(keys, until)
  const failures: PartialFailureError[] = []
  const failed = new Set<number>()
  let found: readonly (Uint8Array | undefined)[]
  try {
    found = await backend.getMany(keys, { partial: true })
  } catch (err) {
    if (!isPartialFailure(err) || err.results === undefined) throw err
    failures.push(err)
    for (const i of err.failed) failed.add(i)
    found = err.results as readonly (Uint8Array | undefined)[]
  }
  const now = clock.now()
  const value = encodeTombstone(until)
  const adds: KeyValueEntry[] = []
  const addOwners: number[] = []
  const sets: KeyValueEntry[] = []
  const setOwners: number[] = []
  const deletes: string[] = []
  const deleteOwners: number[] = []
  keys.forEach((key, i) => {
    if (failed.has(i)) return
    const action = repairAction(found[i], until, now)
    if (action === 'add') {
      adds.push({ key, value, expiresAt: until })
      addOwners.push(i)
    } else if (action === 'replace') {
      sets.push({ key, value, expiresAt: until })
      setOwners.push(i)
    } else if (action === 'delete') {
      deletes.push(key)
      deleteOwners.push(i)
    }
  })
  const settled = await Promise.allSettled([
    adds.length === 0 ? undefined : addOrReplace(backend, adds),
    sets.length === 0 ? undefined : backend.setMany(sets),
    deletes.length === 0 ? undefined : backend.deleteMany(deletes),
  ])
  const more = settledFailures(settled, [addOwners, setOwners, deleteOwners])
  const hard = settled.find((r) => r.status === 'rejected' && !isPartialFailure(r.reason)) as PromiseRejectedResult | undefined
  if (hard !== undefined) throw hard.reason
  failures.push(...more.failures)
  for (const i of more.failed) failed.add(i)
  if (failures.length > 0) throw partialFailure(operation, failures, [...failed].sort(ascending))
}

/**
 * Adds the tombstones where their keys hold nothing, and sets those whose key got something since it
 * was read. Without `addMany` the backend's backfills overwrite too, so the tombstones are set.
 * @throws PartialFailureError with positions of `entries`.
 */
async function addOrReplace(backend: KeyValueBackend, entries: readonly KeyValueEntry[]): Promise<void> {
  const addMany = backend.addMany
  if (addMany === undefined) return backend.setMany(entries)
  let added: readonly boolean[]
  let failure: PartialFailureError | undefined
  try {
    added = await addMany.call(backend, entries)
  } catch (err) {
    if (!isPartialFailure(err)) throw err
    failure = err
    added = (err.results ?? []) as readonly boolean[]
  }
  const failures = failure === undefined ? [] : [failure]
  const failed = new Set(failure?.failed)
  const owners: number[] = []
  const retry: KeyValueEntry[] = []
  entries.forEach((entry, i) => {
    if (added[i] === true || failed.has(i)) return
    retry.push(entry)
    owners.push(i)
  })
  if (retry.length > 0) {
    try {
      await backend.setMany(retry)
    } catch (err) {
      if (!isPartialFailure(err)) throw err
      failures.push(err)
      for (const r of err.failed) failed.add(owners[r] as number)
    }
  }
  if (failures.length > 0) throw partialFailure('repair add', failures, [...failed].sort(ascending))
}
