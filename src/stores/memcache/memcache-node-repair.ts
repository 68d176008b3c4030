import type { MemcacheClient, MultiCasRetrievalResponse } from 'memcache-client'

/** A repair's decision for one key: keep it, delete it, or write this entry in its place. */
export type NodeRepair = 'keep' | 'delete' | { readonly value: Buffer; readonly exptime: number }

/** An error memcache-client rejects with for an error reply of the server (`NOT_FOUND`, `EXISTS`, …). */
export type ReplyError = Error & { cmdTokens?: string[] }

/** What a `gets` found under one key: its value (decoded by memcache-client) and its cas token. */
export type Held = MultiCasRetrievalResponse<unknown>[string]

const EMPTY = Buffer.alloc(0)

/** What {@link getsHeld} reads back for a value memcache-client cannot decode: no envelope, and no cas. */
export const FOREIGN: Held = { tokens: [], value: Buffer.from('?'), casUniq: '' }

/**
 * Repairs keys on one server as `decide` says, each told what the key holds and when its write failed:
 * one `gets` for all, then per key a `cas` over what was read (a `cas` with a negative expiry deletes)
 * or an `add` where it held nothing, so nothing another client wrote since the read is overwritten. A
 * key changed in between is handed to `again`, to be looked at before the next command. A key holding
 * a value memcache-client cannot decode (another writer's flags) is overwritten or deleted as it is.
 * @throws what the client rejects with (the caller marks every key for repair again).
 */
export async function repairOnServer(
  client: MemcacheClient,
  pending: readonly (readonly [key: string, failedAt: number])[],
  decide: (current: Buffer | undefined, failedAt: number) => NodeRepair,
  again: (key: string, failedAt: number) => void,
): Promise<void> {
  const held = await getsHeld(
    client,
    pending.map(([key]) => key),
  )
  await Promise.all(pending.map(([key, failedAt]) => repairOne(client, key, failedAt, held[key], decide, again)))
}

/**
 * One `gets` of `keys` (distinct): what each holds with its cas token, absent where it holds nothing.
 * When a value cannot be decoded (another writer's flags), each key is read on its own and such a key
 * comes back as {@link FOREIGN}.
 */
export async function getsHeld(client: MemcacheClient, keys: readonly string[]): Promise<MultiCasRetrievalResponse<unknown>> {
  try {
    return await client.gets<MultiCasRetrievalResponse<unknown>>(keys as string[])
  } catch (err) {
    if (!undecodable(err)) throw err
    return getsEach(client, keys)
  }
}

/** `gets` of each key on its own: a key whose value cannot be decoded comes back as {@link FOREIGN}. */
async function getsEach(client: MemcacheClient, keys: readonly string[]): Promise<MultiCasRetrievalResponse<unknown>> {
  const out: MultiCasRetrievalResponse<unknown> = {}
  await Promise.all(
    keys.map(async (key) => {
      try {
        const one = await client.gets<MultiCasRetrievalResponse<unknown>>([key])
        const found = one[key]
        if (found !== undefined) out[key] = found
      } catch (err) {
        if (!undecodable(err)) throw err
        out[key] = FOREIGN
      }
    }),
  )
  return out
}

async function repairOne(
  client: MemcacheClient,
  key: string,
  failedAt: number,
  held: Held | undefined,
  decide: (current: Buffer | undefined, failedAt: number) => NodeRepair,
  again: (key: string, failedAt: number) => void,
): Promise<void> {
  const decision = decide(held === undefined ? undefined : asBuffer(held.value), failedAt)
  if (decision === 'keep' || (decision === 'delete' && held === undefined)) return
  try {
    if (held === undefined && decision !== 'delete') await client.add(key, decision.value, { lifetime: decision.exptime })
    else if (held === FOREIGN) {
      if (decision === 'delete') await deleteKey(client, key)
      else await client.set(key, decision.value, { lifetime: decision.exptime })
    } else if (held !== undefined) {
      // a negative exptime expires the item at once: a delete, compare-and-swapped
      const [value, lifetime] = decision === 'delete' ? [EMPTY, -1] : [decision.value, decision.exptime]
      await client.cas(key, value, { casUniq: held.casUniq, lifetime })
    }
  } catch (err) {
    const reply = (err as ReplyError).cmdTokens?.[0]
    if (reply !== 'NOT_STORED' && reply !== 'EXISTS' && reply !== 'NOT_FOUND') throw err
    // changed since the read (perhaps a copy backfilled): looked at again before the next command
    again(key, failedAt)
  }
}

/** Deletes `key`; an absent key is fine. */
export async function deleteKey(client: MemcacheClient, key: string): Promise<void> {
  try {
    await client.delete(key)
  } catch (err) {
    if ((err as ReplyError).cmdTokens?.[0] !== 'NOT_FOUND') throw err
  }
}

/** A fetched value as bytes. memcache-client decodes by flags: ours are binary; other writers' are text, numbers or JSON. */
export function asBuffer(value: unknown): Buffer | undefined {
  if (Buffer.isBuffer(value)) return value
  if (typeof value === 'string') return Buffer.from(value)
  if (value === undefined) return undefined
  return Buffer.from(JSON.stringify(value))
}

/**
 * True for an error memcache-client raises while decoding a value another writer stored with flags
 * it cannot read (compressed without a compressor, bad JSON): the server answered, so it is not down.
 */
export function undecodable(err: unknown): boolean {
  return err instanceof SyntaxError || (err as { code?: unknown }).code === 'ERR_ASSERTION'
}
