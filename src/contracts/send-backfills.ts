import { envelopeExpiry, envelopeKind, isExpiredEnvelope, KIND_ALIAS, KIND_TOMBSTONE } from '../core/codec.js'
import type { Clock } from '../core/lifetime.js'
import { isPartialFailure } from '../core/partial-failure.js'
import type { PreparedBackfill } from './batch-records.js'
import type { KeyValueBackend, KeyValueEntry } from './key-value-backend.js'
import { repairKeys } from './key-value-repairs.js'

/** What a backfill does with one alias key, by what the key held before the record was added. */
const REFUSE = 0
/** The key held nothing or an expired record or tombstone: the alias is added only where that is still so. */
const ADD = 1
/** The key held an alias (to this record or, perhaps stale, to another) or a live record or bytes that are not an envelope: set. */
const SET = 2
/**
 * The key's node failed the read: the alias is not written (a write there would fail too) and the
 * record still lands — a node down must not keep every object with an alias on it out of the layer.
 */
const SKIP = 3

/**
 * What a backfill's alias key allows, by what it holds at `now` (store clock, ms): `REFUSE` for a live
 * tombstone (an invalidation by that alternate key); `ADD` where it holds nothing or an expired record or
 * tombstone; else `SET` — also over an alias to another record, which may be stale (its object's key
 * changed, or the object was deleted) and is never cleaned up: refusing over it would keep this object
 * out of the layer for the alias's lifetime.
 */
function aliasAction(held: Uint8Array | undefined, now: number): number {
  if (held === undefined) return ADD
  const kind = envelopeKind(held)
  if (kind === KIND_TOMBSTONE) return (envelopeExpiry(held) ?? Number.POSITIVE_INFINITY) > now ? REFUSE : ADD
  if (kind === KIND_ALIAS) return SET
  return isExpiredEnvelope(held, now) ? ADD : SET
}

/**
 * Sends a batch's backfills: each record only where its key holds nothing (`addMany`) — with
 * `expiredBy` (a store with `grace`), through `refillMany` where the backend has it, also over a record
 * expired by then — and its aliases only where the record landed: in the same call with
 * `addWithAliases`, else as below. Without `addMany` records and aliases are all appended to `sets`
 * (owner `-1` for an alias) for the caller's `setMany`: plain sets. `partially` runs a call, gathering
 * its partial failure as failures of the owners (indexes into the items) at its positions.
 *
 * With `addMany` and no `addWithAliases` (memcached, Redis Cluster): the alias keys are read first, and
 * a backfill whose alias key holds a live tombstone is not sent (as the script of `addWithAliases`
 * refuses it). Where the record was added, each alias is added where its key held nothing or an expired
 * record or tombstone (`refillMany` by `now`, else `addMany`) and set where it held anything else (see
 * {@link aliasAction}); an alias key whose node failed that read is left alone (see `SKIP`). An alias
 * add refused or failed (an invalidation's tombstone landed since the read) tombstones the record for
 * `tombstoneMs` (a repair: a longer tombstone stays; deleted when `tombstoneMs` is 0): the copy is then
 * served by its record key only between its add and that fence (a round trip).
 * @param settings The store's clock (what is live, by its `now()`) and tombstone lifetime in ms.
 * @param store The store's name, for messages.
 */
export async function sendBackfills(
  backend: KeyValueBackend,
  backfills: readonly PreparedBackfill[],
  expiredBy: number | undefined,
  sets: KeyValueEntry[],
  setItems: number[],
  partially: (owners: readonly number[], call: () => Promise<unknown>) => Promise<void>,
  settings: { readonly clock: Clock; readonly tombstoneMs: number },
  store: string,
): Promise<void> {
  const refill = backend.refillMany
  // `expiredBy` goes only to a backend with refillMany (addWithAliases then refills too)
  const by = refill === undefined || backend.addMany === undefined ? undefined : expiredBy
  const addMany =
    by === undefined || refill === undefined ? backend.addMany : (entries: readonly KeyValueEntry[]) => refill.call(backend, entries, by)
  const addWithAliases = backend.addWithAliases
  if (addMany === undefined) {
    for (const b of backfills) {
      sets.push(b.record, ...b.aliases)
      setItems.push(b.item)
      for (let k = 0; k < b.aliases.length; k++) setItems.push(-1)
    }
    return
  }
  if (addWithAliases !== undefined) {
    // records added and their aliases set where added, in one call (one round trip)
    await partially(
      backfills.map((b) => b.item),
      () => addWithAliases.call(backend, backfills, by),
    )
    return
  }
  const { clock, tombstoneMs } = settings
  const now = clock.now()
  const { sent, actions } = await checkAliases(backend, backfills, now)
  let added: readonly boolean[] = []
  await partially(
    sent.map((b) => b.item),
    async () => {
      try {
        added = await addMany.call(
          backend,
          sent.map((b) => b.record),
        )
      } catch (err) {
        if (isPartialFailure(err)) added = (err.results ?? []) as boolean[]
        throw err
      }
    },
  )
  const conditional: KeyValueEntry[] = []
  const conditionalOf: number[] = []
  sent.forEach((b, i) => {
    if (added[i] !== true) return
    const of = actions[i] as readonly number[]
    b.aliases.forEach((alias, j) => {
      if (of[j] === ADD) {
        conditional.push(alias)
        conditionalOf.push(i)
      } else if (of[j] === SET) {
        sets.push(alias)
        setItems.push(-1)
      }
    })
  })
  if (conditional.length === 0) return
  let stored: readonly boolean[] = []
  try {
    stored = await (refill === undefined ? addMany.call(backend, conditional) : refill.call(backend, conditional, now))
  } catch (err) {
    // an alias not known to be written: its record is fenced below (no stale answer; alias writes have no owner)
    if (isPartialFailure(err)) stored = (err.results ?? []) as boolean[]
  }
  const fenced = [...new Set(conditionalOf.filter((_, c) => stored[c] !== true))]
  if (fenced.length === 0) return
  const keys = fenced.map((i) => (sent[i] as PreparedBackfill).record.key)
  await partially(
    fenced.map((i) => (sent[i] as PreparedBackfill).item),
    () => (tombstoneMs === 0 ? backend.deleteMany(keys) : repairKeys(backend, `${store} store put`, keys, now + tombstoneMs, clock)),
  )
}

/**
 * Reads every alias key of the backfills that have aliases; keeps the backfills none of whose alias keys
 * refuses it (see {@link aliasAction}), with each alias's action; an alias key whose node failed the
 * read is skipped (`SKIP`).
 */
async function checkAliases(
  backend: KeyValueBackend,
  backfills: readonly PreparedBackfill[],
  now: number,
): Promise<{ sent: readonly PreparedBackfill[]; actions: readonly (readonly number[])[] }> {
  const keys: string[] = []
  for (const b of backfills) for (const alias of b.aliases) keys.push(alias.key)
  if (keys.length === 0) return { sent: backfills, actions: backfills.map(() => []) }
  let held: readonly (Uint8Array | undefined)[]
  let failed: ReadonlySet<number> = new Set()
  try {
    held = await backend.getMany(keys, { partial: true })
  } catch (err) {
    if (!isPartialFailure(err) || err.results === undefined) throw err
    held = err.results as readonly (Uint8Array | undefined)[]
    failed = new Set(err.failed)
  }
  const sent: PreparedBackfill[] = []
  const actions: number[][] = []
  let at = 0
  for (const b of backfills) {
    const of: number[] = []
    let refused = false
    for (let j = 0; j < b.aliases.length; j++, at++) {
      const action = failed.has(at) ? SKIP : aliasAction(held[at], now)
      if (action === REFUSE) refused = true
      of.push(action)
    }
    if (refused) continue
    sent.push(b)
    actions.push(of)
  }
  return { sent, actions }
}
