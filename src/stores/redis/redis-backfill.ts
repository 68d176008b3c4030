import { createHash } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import type { KeyValueBackfill, KeyValueEntry } from '../../contracts/key-value-backend.js'
import { bySlot } from './redis-groups.js'

// For each backfill: SET record NX (with its lifetime), and only if that stored it, SET each alias —
// atomically on the server, one round trip for the whole batch. KEYS: per backfill the record key then
// its alias keys. ARGV[1]: one binary string holding, per backfill, big-endian: the alias count (u16),
// the lifetime in ms (double; -1 = none), the value (u32 length, bytes); then per alias its lifetime
// (double; -1 = none, -2 = already expired: delete) and value. Two arguments per call instead of
// several per backfill: ioredis' cost per argument was most of a cold batch's client time.
// ARGV[2]: -1, or `expiredBy` (ms since the epoch, the store's clock) for a store with a grace: where
// SET NX finds the key taken, the record is still stored if the key holds a record or tombstone envelope
// (format 1, kind 1 or 3) whose header expiry (a big-endian double at bytes 3–10 in Lua's 1-based
// count) is not 0 and at or before it — an expired copy kept only for stale reads, a tombstone that no
// longer fences —, checked and replaced in this one step.
// ARGV[3]: now (ms since the epoch, the backend's clock). Before its record, each backfill's alias keys
// are read: one holding a live tombstone (an invalidation by that alternate key) refuses the whole
// backfill — nothing written, as where SET NX finds the record key taken. Live: header expiry 0 (never)
// or after now. (An alias to another record does not: it may be stale — its object's key changed, or
// the object was deleted — and is never cleaned up, so refusing over it would keep this object out of
// the layer for the alias's lifetime.)
// Lifetimes are given to SET as text made once per distinct value (`ms`): a Lua number argument is
// formatted by the server at every call: 10–20% of the script's time for a batch of 250 (bench/backfill-script.js,
// bench/RESULTS.md round 20), and the copies of one batch mostly share one lifetime.
const SCRIPT = `local blob = ARGV[1]
local by = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local function blocks(key)
  local v = redis.pcall('GET', key)
  if type(v) ~= 'string' or #v < 10 or string.byte(v, 1) ~= 1 or string.byte(v, 2) ~= 3 then return false end
  local at = struct.unpack('>d', v, 3)
  return at == 0 or at > now
end
local function expired(key)
  local v = redis.pcall('GET', key)
  if type(v) ~= 'string' or #v < 10 or string.byte(v, 1) ~= 1 then return false end
  local kind = string.byte(v, 2)
  if kind ~= 1 and kind ~= 3 then return false end
  local at = struct.unpack('>d', v, 3)
  return at ~= 0 and at <= by
end
local lastMs, lastText
local function ms(n)
  if n ~= lastMs then
    lastMs = n
    lastText = string.format('%d', n)
  end
  return lastText
end
local out = {}
local k = 1
local pos = 1
local i = 0
while pos <= #blob do
  local aliases, px, value
  aliases, px, value, pos = struct.unpack('>I2dI4c0', blob, pos)
  i = i + 1
  local stored
  local fenced = false
  for j = 1, aliases do
    if blocks(KEYS[k + j]) then
      fenced = true
      break
    end
  end
  if fenced then
    stored = false
  elseif px < 0 then
    stored = redis.call('SET', KEYS[k], value, 'NX')
    if not stored and by >= 0 and expired(KEYS[k]) then stored = redis.call('SET', KEYS[k], value) end
  else
    stored = redis.call('SET', KEYS[k], value, 'PX', ms(px), 'NX')
    if not stored and by >= 0 and expired(KEYS[k]) then stored = redis.call('SET', KEYS[k], value, 'PX', ms(px)) end
  end
  k = k + 1
  out[i] = stored and 1 or 0
  for j = 1, aliases do
    local apx, avalue
    apx, avalue, pos = struct.unpack('>dI4c0', blob, pos)
    if stored then
      if apx == -1 then
        redis.call('SET', KEYS[k], avalue)
      elseif apx == -2 then
        redis.call('DEL', KEYS[k])
      else
        redis.call('SET', KEYS[k], avalue, 'PX', ms(apx))
      end
    end
    k = k + 1
  end
end
return out`

const SHA = createHash('sha1').update(SCRIPT).digest('hex')

/** Backfills per script call: bounds how long one call holds the server. */
const PER_CALL = 250

/** Ms left until the entry expires by `now`, rounded up; `undefined` = never expires. */
function remaining(entry: KeyValueEntry, now: number): number | undefined {
  return entry.expiresAt === undefined ? undefined : Math.ceil(entry.expiresAt - now)
}

/**
 * Runs backfills on one Redis node with a Lua script (EVALSHA, loaded with EVAL on NOSCRIPT): each
 * record is stored only where its key holds nothing (`SET NX`) — or, given `expiredBy`, an expired
 * record or tombstone (see SCRIPT) — and none of its alias keys holds a live tombstone or a live alias
 * to another record, and its aliases only when the record was stored, in one round trip (`now`, the
 * backend's clock, decides what is live). Resolves to whether each record was stored. A record already expired by `now` is not sent
 * (`false`). On a cluster every key of a call must be in one hash slot (see {@link refillOnNode}).
 */
export async function backfillOnNode(
  client: Redis | Cluster,
  backfills: readonly KeyValueBackfill[],
  now: number,
  expiredBy?: number,
): Promise<boolean[]> {
  const added: boolean[] = new Array(backfills.length).fill(false)
  const calls: { sent: number[]; keys: string[]; size: number }[] = []
  let call: (typeof calls)[number] | undefined
  for (let i = 0; i < backfills.length; i++) {
    const { record, aliases } = backfills[i] as KeyValueBackfill
    const ms = remaining(record, now)
    if (ms !== undefined && ms <= 0) continue
    if (aliases.length > 0xffff) throw new Error(`a record with ${aliases.length} aliases cannot be backfilled in one script call`)
    if (call === undefined || call.sent.length === PER_CALL) {
      call = { sent: [], keys: [], size: 0 }
      calls.push(call)
    }
    call.sent.push(i)
    call.keys.push(record.key)
    call.size += 14 + record.value.byteLength
    for (const alias of aliases) {
      call.keys.push(alias.key)
      call.size += 12 + alias.value.byteLength
    }
  }
  if (calls.length === 0) return added
  const results = await Promise.all(
    calls.map(async ({ sent, keys, size }) => {
      const blob = packBackfills(backfills, sent, size, now)
      const by = expiredBy ?? -1
      try {
        return (await client.evalsha(SHA, keys.length, ...keys, blob, by, now)) as number[]
      } catch (err) {
        if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err
        return (await client.eval(SCRIPT, keys.length, ...keys, blob, by, now)) as number[]
      }
    }),
  )
  calls.forEach(({ sent }, c) => {
    const stored = results[c] as number[]
    for (let j = 0; j < sent.length; j++) added[sent[j] as number] = stored[j] === 1
  })
  return added
}

/**
 * Stores the entries of `indices` (all served by one node) where their keys hold nothing or an expired
 * record or tombstone (see `KeyValueBackend.refillMany`): the script of {@link backfillOnNode}
 * without aliases, one call per hash slot (a script's keys must share one in a cluster) and 250
 * entries. Sets `added[i]` for each entry stored.
 */
export async function refillOnNode(
  client: Redis | Cluster,
  entries: readonly KeyValueEntry[],
  indices: readonly number[],
  cluster: boolean,
  now: number,
  expiredBy: number,
  added: boolean[],
): Promise<void> {
  const groups = cluster ? [...bySlot(indices, (i) => (entries[i] as KeyValueEntry).key).values()] : [indices]
  await Promise.all(
    groups.map(async (group) => {
      const backfills = group.map((i) => ({ record: entries[i] as KeyValueEntry, aliases: [] }))
      const stored = await backfillOnNode(client, backfills, now, expiredBy)
      group.forEach((i, j) => {
        added[i] = stored[j] === true
      })
    }),
  )
}

/** The script's ARGV[1] for the backfills `sent` (see SCRIPT), `size` bytes. */
function packBackfills(backfills: readonly KeyValueBackfill[], sent: readonly number[], size: number, now: number): Buffer {
  const blob = Buffer.allocUnsafe(size)
  let at = 0
  const value = (bytes: Uint8Array): void => {
    at = blob.writeUInt32BE(bytes.byteLength, at)
    blob.set(bytes, at)
    at += bytes.byteLength
  }
  for (const i of sent) {
    const { record, aliases } = backfills[i] as KeyValueBackfill
    at = blob.writeUInt16BE(aliases.length, at)
    at = blob.writeDoubleBE(remaining(record, now) ?? -1, at)
    value(record.value)
    for (const alias of aliases) {
      const ms = remaining(alias, now)
      at = blob.writeDoubleBE(ms === undefined ? -1 : ms <= 0 ? -2 : ms, at)
      value(alias.value)
    }
  }
  return blob
}
