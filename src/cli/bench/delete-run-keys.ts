import type { Redis } from 'ioredis'

/**
 * Deletes every key under `prefix:` (SCAN + UNLINK), so a run leaves nothing in the user's Redis;
 * then closes `client` (a client of its own, not yet connected, named otherwise than the run's).
 *
 * First it closes, on the server, every connection named `connectionName` (the run's clients and
 * stores): an interrupted run disconnects them at once, but Redis still executes what it already
 * received from them, such as a pipeline loading a key pool, and keys it writes after the SCAN would
 * stay. Redis runs commands one at a time: once `CLIENT KILL` answered, nothing more of those
 * connections runs.
 */
export async function deleteRunKeys(client: Redis, prefix: string, connectionName: string): Promise<void> {
  client.on('error', () => {}) // a failure rejects the command below
  try {
    await client.connect()
    const list = (await client.call('CLIENT', 'LIST')) as string
    for (const line of list.split('\n')) {
      const fields = new Map(line.split(' ').map((field) => [field.slice(0, field.indexOf('=')), field.slice(field.indexOf('=') + 1)]))
      const id = fields.get('id')
      // (one already gone answers "No such client")
      if (id !== undefined && fields.get('name') === connectionName) await client.call('CLIENT', 'KILL', 'ID', id).catch(() => {})
    }
    let cursor = '0'
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) await client.unlink(...keys)
    } while (cursor !== '0')
    await client.quit()
  } finally {
    client.disconnect()
  }
}
