import { connect } from 'node:net'

/**
 * Sends one raw command (`request`, with its `\r\n`) to a memcached server (`host:port`) on a
 * connection of its own, and resolves with the first chunk of the reply (e.g. `'STORED\r\n'`): what
 * another writer's client would store, bypassing memcache-client.
 */
export function askMemcached(server: string, request: string): Promise<string> {
  const [host, port] = server.split(':') as [string, string]
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port: Number(port) })
    socket.setEncoding('latin1')
    socket.once('connect', () => socket.write(request))
    socket.once('data', (line: string) => {
      socket.destroy()
      resolve(line)
    })
    socket.once('error', reject)
  })
}
