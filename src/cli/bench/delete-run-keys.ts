import type { Redis } from 'ioredis'
import { answered } from './connect-timeout.js'

/**
 * Deletes every key under `prefix:` (SCAN + UNLINK), so a run leaves nothing in the user's Redis;
 * then closes `client` (a client of its own, not yet connected, named otherwise than the run's).
 *
 * First it closes, on the server, every connection named `connectionName` (the run's clients and
 * stores): an interrupted run disconnects them at once, but Redis still executes what it already
 * received from them, such as a pipeline loading a key pool, and keys it writes after the SCAN would
 * stay. Redis runs commands one at a time: once `CLIENT KILL` answered, nothing more of those
 * connections runs. A user that may not run `CLIENT LIST` or `CLIENT KILL` (an ACL, managed Redis)
 * still has the keys deleted, by a second SCAN after the first: what the server runs of the closed
 * connections after that second pass stays (and expires with its lifetime).
 * @throws what Redis answers to the connection, SCAN or UNLINK (e.g. `NOPERM` for a user that may
 *   not SCAN), or a BenchSetupError when it does not answer within 5 s; keys may then be left
 */
export async function deleteRunKeys(client: Redis, prefix: string, connectionName: string): Promise<void> {
  client.on('error', () => {}) // a failure rejects the command below
  try {
    await answered(client.connect(), 'Redis')
    const closed = await closeConnections(client, connectionName)
    await unlinkAll(client, `${prefix}:*`)
    if (!closed) await unlinkAll(client, `${prefix}:*`)
    await client.quit()
  } finally {
    client.disconnect()
  }
}

/** Whether the server refused a command (an error reply, not a lost connection). */
const refused = (err: unknown): boolean => (err as { name?: unknown }).name === 'ReplyError'

/**
 * Closes, on the server, the connections named `name`; resolves `false` when the server refuses
 * `CLIENT LIST` or `CLIENT KILL` (so they may still be running what they sent).
 */
async function closeConnections(client: Redis, name: string): Promise<boolean> {
  let list: string
  try {
    list = (await client.call('CLIENT', 'LIST')) as string
  } catch (err) {
    if (refused(err)) return false
    throw err
  }
  let closed = true
  for (const line of list.split('\n')) {
    const fields = new Map(line.split(' ').map((field) => [field.slice(0, field.indexOf('=')), field.slice(field.indexOf('=') + 1)]))
    const id = fields.get('id')
    if (id === undefined || fields.get('name') !== name) continue
    try {
      await client.call('CLIENT', 'KILL', 'ID', id)
    } catch (err) {
      // (one already gone answers "No such client")
      if (!refused(err)) throw err
      if (!/no such client/i.test((err as Error).message)) closed = false
    }
  }
  return closed
}

/** SCAN + UNLINK of every key matching `pattern`, in batches of about 1,000. */
async function unlinkAll(client: Redis, pattern: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) await client.unlink(...keys)
  } while (cursor !== '0')
}
