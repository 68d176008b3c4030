import { createHash } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import { check, chunked } from './redis-pipeline.js'
import { NodePipeline } from './redis-redirects.js'

// A repair of each key, as repairAction (src/core/repair-action.ts) decides it, but read and written in
// one step on the server, so that no tombstone another process writes can land between the two. KEYS:
// the keys (one hash slot). ARGV[1]: the repair's tombstone envelope (format 1, kind 3, its expiry as a
// big-endian double at bytes 3–10 in Lua's 1-based count); ARGV[2]: ms until it expires, rounded up
// (0 or less: the tombstone is no longer needed). Per key:
// - nothing: SET the tombstone (while needed);
// - a tombstone (expiry 0 = never): SET only where it ends before the repair's (while needed);
// - anything else (a record, an alias, foreign bytes, another type): SET the tombstone while needed,
//   DEL once not. A key of another type fails GET; it is foreign too (pcall, so one such key does not
//   abort the other keys' repairs).
const SCRIPT = `local tomb = ARGV[1]
local px = tonumber(ARGV[2])
local untilAt = struct.unpack('>d', tomb, 3)
for i = 1, #KEYS do
  local key = KEYS[i]
  local v = redis.pcall('GET', key)
  local write = false
  local drop = false
  if not v then
    write = px > 0
  elseif type(v) == 'string' and #v >= 10 and string.byte(v, 1) == 1 and string.byte(v, 2) == 3 then
    local expiry = struct.unpack('>d', v, 3)
    write = px > 0 and expiry ~= 0 and expiry < untilAt
  elseif px > 0 then
    write = true
  else
    drop = true
  end
  if write then
    redis.call('SET', key, tomb, 'PX', px)
  elseif drop then
    redis.call('DEL', key)
  end
end
return #KEYS`

const SHA = createHash('sha1').update(SCRIPT).digest('hex')

/**
 * Repairs `slotKeys` (lists of keys of one hash slot each, all served by one node) with a Lua script:
 * per key, atomically on the server, the tombstone `tombstone` is written where the key holds nothing,
 * a copy, or a tombstone ending sooner; a copy is deleted once `px` (ms the tombstone has left, rounded
 * up) is 0 or less; a longer tombstone is kept. One script call per slot and 500 keys, all sent in one
 * pipeline (EVALSHA; the script is loaded with EVAL where the node answers NOSCRIPT).
 *
 * A node out of memory (`maxmemory` with policy `noeviction`) refuses the tombstone's SET with OOM: the
 * copies are then deleted at once ({@link dropCopies}: DEL still works), so none outlives the failed
 * write until the tombstone's time is up, and the call still rejects with the OOM error.
 * @throws the pipeline's or a script's error.
 */
export async function repairOnNode(client: Redis | Cluster, slotKeys: readonly string[][], tombstone: Buffer, px: number): Promise<void> {
  try {
    await runScript(client, slotKeys, tombstone, px)
  } catch (err) {
    if (!isOutOfMemory(err)) throw err
    // the failure stays the refusal's: a failed drop only leaves what the refusal already left
    await dropCopies(client, slotKeys).catch(() => {})
    throw err
  }
}

/**
 * Deletes every copy (anything but a tombstone: a record, an alias, foreign bytes) among `slotKeys`
 * (lists of keys of one hash slot each, all served by one node) and keeps the tombstones: the repair
 * script with no time left, whose only write is DEL — which a node out of memory still runs.
 * @throws the pipeline's or a script's error.
 */
export function dropCopies(client: Redis | Cluster, slotKeys: readonly string[][]): Promise<void> {
  return runScript(client, slotKeys, NO_TOMBSTONE, 0)
}

/** The script's tombstone argument when `px` is 0: never written, only its length is read. */
const NO_TOMBSTONE = Buffer.alloc(11)

/**
 * Whether `err` is Redis' refusal of a write for lack of memory (`OOM command not allowed when used
 * memory > 'maxmemory'`): a definite answer — the command did not run —, unlike a timeout.
 */
export function isOutOfMemory(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('OOM ')
}

async function runScript(client: Redis | Cluster, slotKeys: readonly string[][], tombstone: Buffer, px: number): Promise<void> {
  const chunks = slotKeys.flatMap((keys) => chunked(keys))
  const send = async (load: boolean): Promise<void> => {
    const pipeline = new NodePipeline()
    for (const keys of chunks) {
      if (load) pipeline.call('eval', SCRIPT, keys.length, ...keys, tombstone, px)
      else pipeline.call('evalsha', SHA, keys.length, ...keys, tombstone, px)
    }
    check(await pipeline.exec(client))
  }
  try {
    await send(false)
  } catch (err) {
    if (!(err instanceof Error) || !err.message.includes('NOSCRIPT')) throw err
    await send(true)
  }
}
