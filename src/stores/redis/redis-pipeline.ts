import type { Redis } from 'ioredis'
import type { KeyValueEntry } from '../../contracts/key-value-backend.js'
import type { NodePipeline, Reply } from './redis-redirects.js'

/** Most keys per MGET / DEL command: bigger batches are split, all still in one pipeline per node. */
export const CHUNK = 500

/** Ms left until the entry expires by `now`, rounded up; `undefined` = never expires. */
export function remaining(entry: KeyValueEntry, now: number): number | undefined {
  return entry.expiresAt === undefined ? undefined : Math.ceil(entry.expiresAt - now)
}

/** The value as a Buffer without copying (ioredis would stringify a plain Uint8Array). */
export function bytes(value: Uint8Array): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)
}

/** `keys` in slices of at most {@link CHUNK} (one MGET/DEL each), in order. */
export function chunked(keys: string[]): string[][] {
  if (keys.length <= CHUNK) return [keys]
  const out: string[][] = []
  for (let i = 0; i < keys.length; i += CHUNK) out.push(keys.slice(i, i + CHUNK))
  return out
}

/** The results of a pipeline; throws its first error. */
export function check(results: readonly Reply[]): unknown[] {
  return results.map(([err, value]) => {
    if (err !== null) throw err
    return value
  })
}

/**
 * Queues each entry of `indices` on `pipeline`: `SET key value [PX ms]`, or `DEL` for an entry already
 * expired by `now`.
 */
export function queueSets(pipeline: NodePipeline, entries: readonly KeyValueEntry[], indices: readonly number[], now: number): void {
  for (const i of indices) {
    const entry = entries[i] as KeyValueEntry
    const ms = remaining(entry, now)
    if (ms === undefined) pipeline.call('set', entry.key, bytes(entry.value))
    else if (ms > 0) pipeline.call('set', entry.key, bytes(entry.value), 'PX', ms)
    else pipeline.call('del', entry.key)
  }
}

/**
 * Most commands sent one by one instead of in a pipeline: for a handful of commands ioredis' pipeline
 * object costs more than it saves (it exists to send many commands in one write). Commands sent in the
 * same tick still travel together and are answered in order, in one round trip.
 */
export const DIRECT_MAX = 4

/**
 * Sends `SET key value [PX ms]` (or `DEL` for an entry already expired) for each entry of `indices`,
 * without a pipeline, in one write to the socket when the client is connected (see {@link corked}).
 */
export function sendSets(client: Redis, entries: readonly KeyValueEntry[], indices: readonly number[], now: number): Promise<unknown>[] {
  if (indices.length === 1) return queueDirect(client, entries, indices, now)
  return corked(client, () => queueDirect(client, entries, indices, now))
}

/**
 * Runs `send` with the client's socket corked: commands it writes leave in one write (one system call
 * and one TCP segment) instead of one each — a write to a loopback socket costs several µs, more than
 * the command itself. Without a connected socket (commands queued offline) `send` runs as it is.
 */
export function corked<T>(client: Redis, send: () => T): T {
  const stream = (client as { stream?: { cork?: () => void; uncork?: () => void; writable?: boolean } }).stream
  if (client.status !== 'ready' || typeof stream?.cork !== 'function' || typeof stream.uncork !== 'function' || stream.writable !== true) {
    return send()
  }
  stream.cork()
  try {
    return send()
  } finally {
    stream.uncork()
  }
}

/** Sends each command of {@link sendSets} on its own, in order; every failure lands in its promise. */
function queueDirect(client: Redis, entries: readonly KeyValueEntry[], indices: readonly number[], now: number): Promise<unknown>[] {
  const sent: Promise<unknown>[] = []
  for (const i of indices) {
    const entry = entries[i] as KeyValueEntry
    const ms = remaining(entry, now)
    try {
      if (ms === undefined) sent.push(client.set(entry.key, bytes(entry.value)))
      else if (ms > 0) sent.push(client.set(entry.key, bytes(entry.value), 'PX', ms))
      else sent.push(client.del(entry.key))
    } catch (err) {
      // a client that throws instead of rejecting must not leave the commands already sent unawaited
      sent.push(Promise.reject(err))
    }
  }
  return sent
}

/**
 * Queues `SET key value [PX ms] NX` on `pipeline` for each entry of `indices` not already expired by
 * `now`; returns the indices queued, in order.
 */
export function queueAdds(pipeline: NodePipeline, entries: readonly KeyValueEntry[], indices: readonly number[], now: number): number[] {
  const sent: number[] = []
  for (const i of indices) {
    const entry = entries[i] as KeyValueEntry
    const ms = remaining(entry, now)
    if (ms === undefined) pipeline.call('set', entry.key, bytes(entry.value), 'NX')
    else if (ms > 0) pipeline.call('set', entry.key, bytes(entry.value), 'PX', ms, 'NX')
    else continue
    sent.push(i)
  }
  return sent
}
