import { getsHeld, type ReplyError } from './memcache-node-repair.js'
import type { RawMemcacheClient } from './raw-memcache-client.js'

/** One entry of a set or add on one server. */
export class NodeSetEntry {
  constructor(
    readonly key: string,
    readonly value: Buffer,
    /** memcached `exptime`, already converted. */
    readonly exptime: number,
  ) {}
}

/** A zero-copy Buffer view of `bytes` (memcache-client stores Buffers as binary). */
export function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** Rounds (an add, then a `gets` and `cas` of the keys taken) a refill tries before giving up on a key that keeps changing. */
const REFILL_ATTEMPTS = 3

/**
 * Stores each entry where its key holds nothing (`add`), pipelined in order on the client's one
 * connection; resolves with whether each was stored (of repeated keys only the first can be).
 *
 * With `replaceable`, an entry whose key was taken is also stored where `replaceable` accepts what
 * the key holds (an expired record kept for grace): one `gets` of those keys, then a `cas` over what
 * was read, so a value another client writes between the read and the write is never overwritten.
 * A key that changed in between (`cas` answered `EXISTS` or `NOT_FOUND`), or that held nothing any
 * more at the read, goes round again — add, read, compare-and-swap — up to {@link REFILL_ATTEMPTS}
 * times, and is left unstored after that. Another writer's value (not an envelope) is never replaced.
 * @throws what the client rejects with, but for `NOT_STORED`, `EXISTS` and `NOT_FOUND` replies.
 */
export async function addOnServer(
  client: RawMemcacheClient,
  entries: readonly NodeSetEntry[],
  replaceable?: (held: Buffer) => boolean,
): Promise<boolean[]> {
  if (replaceable === undefined)
    return Promise.all(entries.map((e) => conditionally(client.add(e.key, e.value, { lifetime: e.exptime }), 'NOT_STORED')))
  const stored: boolean[] = new Array(entries.length).fill(false)
  let left = entries.map((_, i) => i)
  for (let round = 0; round < REFILL_ATTEMPTS && left.length > 0; round++) {
    const taken: number[] = []
    await Promise.all(
      left.map(async (i) => {
        const e = entries[i] as NodeSetEntry
        if (await conditionally(client.add(e.key, e.value, { lifetime: e.exptime }), 'NOT_STORED')) stored[i] = true
        else taken.push(i)
      }),
    )
    if (taken.length === 0) break
    // distinct keys for the gets; a repeated key's later entries meet the first one's copy (live) next round
    const held = await getsHeld(client, [...new Set(taken.map((i) => (entries[i] as NodeSetEntry).key))])
    const again: number[] = []
    await Promise.all(
      taken.map(async (i) => {
        const e = entries[i] as NodeSetEntry
        const found = held[e.key]
        if (found === undefined)
          again.push(i) // gone since the add (expired, deleted): add again
        else if (!replaceable(found.value)) return
        else if (await conditionally(client.cas(e.key, e.value, { casUniq: found.casUniq, lifetime: e.exptime }), 'EXISTS', 'NOT_FOUND'))
          stored[i] = true
        else again.push(i)
      }),
    )
    left = again
  }
  return stored
}

/** Resolves `true` when the command stored, `false` when the server answered one of `refusals`; rejects otherwise. */
async function conditionally(command: Promise<unknown>, ...refusals: string[]): Promise<boolean> {
  try {
    await command
    return true
  } catch (err) {
    if (refusals.includes((err as ReplyError).cmdTokens?.[0] as string)) return false
    throw err
  }
}
