import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { KeyValueBackfill, KeyValueEntry } from '../../contracts/key-value-backend.js'

// For each backfill: SET record NX (with its lifetime), and only if that stored it, SET each alias —
// atomically on the server, one round trip for the whole batch. KEYS: per backfill the record key then
// its alias keys. ARGV[1]: the number of backfills; then per backfill: alias count, lifetime in ms
// ('' = none), value; then per alias: lifetime ('' = none, 'D' = already expired: delete), value.
const SCRIPT = `local out = {}
local k = 1
local a = 2
for i = 1, tonumber(ARGV[1]) do
  local aliases = tonumber(ARGV[a])
  local px = ARGV[a + 1]
  local stored
  if px == '' then
    stored = redis.call('SET', KEYS[k], ARGV[a + 2], 'NX')
  else
    stored = redis.call('SET', KEYS[k], ARGV[a + 2], 'PX', px, 'NX')
  end
  k = k + 1
  a = a + 3
  if stored then
    out[i] = 1
    for j = 1, aliases do
      local apx = ARGV[a]
      if apx == '' then
        redis.call('SET', KEYS[k], ARGV[a + 1])
      elseif apx == 'D' then
        redis.call('DEL', KEYS[k])
      else
        redis.call('SET', KEYS[k], ARGV[a + 1], 'PX', apx)
      end
      k = k + 1
      a = a + 2
    end
  else
    out[i] = 0
    k = k + aliases
    a = a + 2 * aliases
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

/** The value as a Buffer without copying (ioredis would stringify a plain Uint8Array). */
function bytes(value: Uint8Array): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)
}

/**
 * Runs backfills on one Redis node with a Lua script (EVALSHA, loaded with EVAL on NOSCRIPT): each
 * record is stored only where its key holds nothing (`SET NX`), and its aliases only when the record
 * was stored, in one round trip. Resolves to whether each record was stored. A record already expired
 * by `now` is not sent (`false`).
 */
export async function backfillOnNode(client: Redis, backfills: readonly KeyValueBackfill[], now: number): Promise<boolean[]> {
  const added: boolean[] = new Array(backfills.length).fill(false)
  const calls: { sent: number[]; keys: string[]; args: (string | Buffer)[] }[] = []
  let call: (typeof calls)[number] | undefined
  for (let i = 0; i < backfills.length; i++) {
    const { record, aliases } = backfills[i] as KeyValueBackfill
    const ms = remaining(record, now)
    if (ms !== undefined && ms <= 0) continue
    if (call === undefined || call.sent.length === PER_CALL) {
      call = { sent: [], keys: [], args: [''] }
      calls.push(call)
    }
    call.sent.push(i)
    call.keys.push(record.key)
    call.args.push(String(aliases.length), ms === undefined ? '' : String(ms), bytes(record.value))
    for (const alias of aliases) {
      const aliasMs = remaining(alias, now)
      call.keys.push(alias.key)
      call.args.push(aliasMs === undefined ? '' : aliasMs <= 0 ? 'D' : String(aliasMs), bytes(alias.value))
    }
  }
  if (calls.length === 0) return added
  const results = await Promise.all(
    calls.map(async ({ sent, keys, args }) => {
      args[0] = String(sent.length)
      try {
        return (await client.evalsha(SHA, keys.length, ...keys, ...args)) as number[]
      } catch (err) {
        if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err
        return (await client.eval(SCRIPT, keys.length, ...keys, ...args)) as number[]
      }
    }),
  )
  calls.forEach(({ sent }, c) => {
    const stored = results[c] as number[]
    for (let j = 0; j < sent.length; j++) added[sent[j] as number] = stored[j] === 1
  })
  return added
}
