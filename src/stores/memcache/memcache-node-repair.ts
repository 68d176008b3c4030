import type { MultiCasRetrievalResponse } from 'memcache-client'
import type { RawMemcacheClient } from './raw-memcache-client.js'

/** A repair's decision for one key: keep it, delete it, or write this entry in its place. */
export type NodeRepair = 'keep' | 'delete' | { readonly value: Buffer; readonly exptime: number }

/** An error memcache-client rejects with for an error reply of the server (`NOT_FOUND`, `EXISTS`, …). */
export type ReplyError = Error & { cmdTokens?: string[] }

/** What a `gets` found under one key: its bytes (whatever its flags: see `RawMemcacheClient`) and its cas token. */
export type Held = MultiCasRetrievalResponse<Buffer>[string]

const EMPTY = Buffer.alloc(0)

/**
 * Repairs keys on one server as `decide` says, each told what the key holds and when its write failed:
 * one `gets` for all, then per key a `cas` over what was read (a `cas` with a negative expiry deletes)
 * or an `add` where it held nothing, so nothing another client wrote since the read is overwritten. A
 * key changed in between is handed to `again`, to be looked at before the next command. A key holding
 * another writer's value is decided on its bytes (not an envelope) and changed by `cas` like any other.
 * @throws what the client rejects with (the caller marks every key for repair again).
 */
export async function repairOnServer(
  client: RawMemcacheClient,
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

/** One `gets` of `keys` (distinct): what each holds with its cas token, absent where it holds nothing. */
export function getsHeld(client: RawMemcacheClient, keys: readonly string[]): Promise<MultiCasRetrievalResponse<Buffer>> {
  return client.gets<MultiCasRetrievalResponse<Buffer>>(keys as string[])
}

async function repairOne(
  client: RawMemcacheClient,
  key: string,
  failedAt: number,
  held: Held | undefined,
  decide: (current: Buffer | undefined, failedAt: number) => NodeRepair,
  again: (key: string, failedAt: number) => void,
): Promise<void> {
  const decision = decide(held?.value, failedAt)
  if (decision === 'keep' || (decision === 'delete' && held === undefined)) return
  try {
    if (held === undefined && decision !== 'delete') await client.add(key, decision.value, { lifetime: decision.exptime })
    else if (held !== undefined) {
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
export async function deleteKey(client: RawMemcacheClient, key: string): Promise<void> {
  try {
    await client.delete(key)
  } catch (err) {
    if ((err as ReplyError).cmdTokens?.[0] !== 'NOT_FOUND') throw err
  }
}
