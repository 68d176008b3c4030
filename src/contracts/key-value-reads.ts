import { decodeAlias, decodeRecord, envelopeExpiry, envelopeKind, envelopeProblem, KIND_ALIAS, KIND_RECORD } from '../core/codec.js'
import { CorruptEntryError, StockpyleError, show } from '../core/errors.js'
import { encodeLookup, keyOfObjectFor } from '../core/key-encoding.js'
import type { ModelInfo } from '../core/registry.js'
import { Entry } from './batch-records.js'
import { ascending } from './key-value-failures.js'
import type { LookupRequest, StoreEntry } from './store.js'

/** An entry a backend returned that is not a valid envelope: its key and why. */
export interface CorruptEntry {
  readonly key: string
  readonly reason: string
}

/**
 * Resolves looked-up envelopes into entries: records directly, aliases through one more `fetch` of
 * their record keys. An alias whose record no longer holds the looked-up key value is a miss, which
 * is how a changed alternate key stops answering without a read on the write path.
 *
 * Bytes that are not a valid envelope (see {@link envelopeProblem}), a record that does not decode, and
 * a record read under a key that is not its own (its key fields do not hold the looked-up values: the
 * backend answered another key's entry, e.g. it folds case or cuts keys) are handed to `corrupt` once
 * every entry is resolved, with the positions of the requests they failed (ascending: a request by an
 * alternate key fails when the record its alias leads to is corrupt) and what the others found
 * (`undefined` at the failed positions); it replaces them by tombstones and throws. Without it they
 * throw {@link CorruptEntryError} at once. A record of another `stockpyleVersion` is a miss.
 * @param store The store's name, for messages.
 */
export async function resolveEnvelopes(
  store: string,
  info: ModelInfo,
  requests: readonly LookupRequest[],
  keys: readonly string[],
  found: readonly (Uint8Array | undefined)[],
  now: number,
  prefix: string,
  fetch: (keys: string[]) => Promise<(Uint8Array | undefined)[]> | (Uint8Array | undefined)[],
  graceMs = 0,
  corrupt?: (entries: CorruptEntry[], failed: number[], results: (StoreEntry | undefined)[]) => Promise<void>,
): Promise<(StoreEntry | undefined)[]> {
  checkFound(store, found, keys.length)
  // With a grace, copies expired less than graceMs ago are returned (stale reads only).
  const limit = now - graceMs
  const out: (StoreEntry | undefined)[] = new Array(requests.length).fill(undefined)
  let bad: CorruptEntry[] | undefined
  // (the requests the corrupt entries failed: each at most once, as a failed request is never resolved further)
  let failed: number[] | undefined
  const flag = (key: string, reason: string, at: number) => {
    if (corrupt === undefined) throw new CorruptEntryError(`the entry under ${show(key)} is corrupt: ${reason}`)
    bad ??= []
    if (!bad.some((b) => b.key === key)) bad.push({ key, reason })
    ;(failed ??= []).push(at)
  }
  let pending: Map<string, number[]> | undefined
  for (let i = 0; i < requests.length; i++) {
    const bytes = found[i]
    if (bytes === undefined) continue
    const problem = envelopeProblem(bytes)
    if (problem !== undefined) {
      flag(keys[i] as string, problem, i)
      continue
    }
    const kind = envelopeKind(bytes)
    const expiresAt = envelopeExpiry(bytes)
    if (expiresAt !== undefined && expiresAt <= limit) continue
    if (kind === KIND_RECORD) {
      const entry = recordEntry(info, bytes, expiresAt, keys[i] as string, flag, i)
      if (entry === undefined) continue
      const request = requests[i] as LookupRequest
      // A record is stored under its own key only: one holding other key values was answered for
      // another key by the backend (one that folds case or cuts keys), not a miss.
      if (holdsLookup(request, entry.value) || prefix + keyOfObjectFor(request.spec, entry.value) === keys[i]) out[i] = entry
      else flag(keys[i] as string, otherRecord(prefix, info, entry.value), i)
    } else if (kind === KIND_ALIAS) {
      // (a tombstone, KIND_TOMBSTONE, is a miss)
      const target = decodeAlias(bytes)
      if (!target.startsWith(prefix)) {
        flag(keys[i] as string, `it is an alias to ${show(target)}, outside the prefix ${show(prefix)}`, i)
        continue
      }
      pending ??= new Map()
      const slots = pending.get(target)
      if (slots === undefined) pending.set(target, [i])
      else slots.push(i)
    }
  }
  if (pending !== undefined) {
    const targets = [...pending.keys()]
    const records = await fetch(targets)
    checkFound(store, records, targets.length)
    for (let t = 0; t < targets.length; t++) {
      const bytes = records[t]
      const target = targets[t] as string
      if (bytes === undefined) continue
      const problem = envelopeProblem(bytes)
      if (problem !== undefined) {
        for (const i of pending.get(target) as number[]) flag(target, problem, i)
        continue
      }
      if (envelopeKind(bytes) !== KIND_RECORD) continue
      const expiresAt = envelopeExpiry(bytes)
      if (expiresAt !== undefined && expiresAt <= limit) continue
      for (const i of pending.get(target) as number[]) {
        const entry = recordEntry(info, bytes, expiresAt, target, flag, i)
        const request = requests[i] as LookupRequest
        if (entry !== undefined && prefix + keyOfObjectFor(request.spec, entry.value) === keys[i]) out[i] = entry
      }
    }
  }
  if (bad !== undefined && corrupt !== undefined) await corrupt(bad, (failed as number[]).sort(ascending), out)
  return out
}

/** A backend's `getMany` answers one value (or `undefined`) per key, in order: anything else is its bug, not a miss. */
function checkFound(store: string, found: unknown, count: number): void {
  if (Array.isArray(found) && found.length === count) return
  throw new StockpyleError(
    `${store} store get: its backend's getMany answered ${Array.isArray(found) ? `${found.length} values` : show(found)} for ${count} keys: it must answer one value (or undefined) per key, in order`,
  )
}

function recordEntry(
  info: ModelInfo,
  bytes: Uint8Array,
  expiresAt: number | undefined,
  key: string,
  flag: (key: string, reason: string, at: number) => void,
  at: number,
): StoreEntry | undefined {
  let value: object | undefined
  try {
    value = decodeRecord(bytes)
  } catch (err) {
    if (!(err instanceof CorruptEntryError)) throw err
    flag(key, err.message, at)
    return undefined
  }
  if (value === undefined || !(value instanceof (info.model as unknown as new () => object))) return undefined
  return new Entry(value, expiresAt, bytes)
}

/**
 * Whether `value` holds the looked-up values (`===` on each field of the request's key): the cheap
 * check of a record read by its key, before the exact one by key encoding (-0 and 0, say).
 */
function holdsLookup(request: LookupRequest, value: object): boolean {
  const fields = request.spec.fields
  const lookup = request.lookup
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i] as string
    if ((value as Record<string, unknown>)[field] !== lookup[field]) return false
  }
  return true
}

/** Why a record read under a key that is not its own is corrupt (the error path only). */
function otherRecord(prefix: string, info: ModelInfo, value: object): string {
  const own = keyOfObjectFor(info.primary, value)
  return `it holds the record of another key${own === undefined ? '' : `, ${show(prefix + own)}`}: the backend answered another key's entry for it (keys must be kept exactly: no case folding, no cutting)`
}

/** The prefixed canonical key of each request. @throws InvalidKeyError. */
export function requestKeys(store: string, info: ModelInfo, requests: readonly LookupRequest[], prefix: string): string[] {
  const keys: string[] = new Array(requests.length)
  for (let i = 0; i < requests.length; i++) keys[i] = prefix + requestKey(store, info, requests[i] as LookupRequest)
  return keys
}

/**
 * The canonical key of a validated request, computed once and kept on it (`LookupRequest.key`), for
 * the other layers of a chain. @throws InvalidKeyError naming `store`'s get.
 */
export function requestKey(store: string, info: ModelInfo, request: LookupRequest): string {
  const known = request.key
  if (known !== undefined) return known
  // The field set is already matched to a key (BaseStore); encodeLookup only to throw InvalidKeyError.
  const key = keyOfObjectFor(request.spec, request.lookup) ?? encodeLookup(info, request.lookup, `${store} store get`)
  request.key = key
  return key
}
