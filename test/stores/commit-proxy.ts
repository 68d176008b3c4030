import { createServer, type Socket, connect as tcpConnect } from 'node:net'

/** A loopback TCP proxy in front of PostgreSQL; see {@link commitProxy}. */
export interface CommitProxy {
  /** `postgres://…` through the proxy. */
  readonly url: string
  /** Cut the connection that sends the next COMMIT, right after forwarding it. */
  arm(): void
  /** How many connections were cut after a COMMIT. */
  readonly cut: number
  close(): Promise<void>
}

/**
 * A real network fault at the worst moment: once armed, the proxy forwards the next COMMIT to the
 * server and then cuts the client's connection before the reply. The server commits; the client sees
 * a connection error and cannot know whether the COMMIT took effect (a network blip, a failover, a
 * killed pooler). The server side of the connection is closed shortly after, once it read the COMMIT.
 */
export async function commitProxy(targetUrl: string): Promise<CommitProxy> {
  const target = new URL(targetUrl)
  let armed = false
  let cut = 0
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = tcpConnect(Number(target.port), target.hostname)
    sockets.add(client).add(upstream)
    upstream.on('error', () => client.destroy())
    client.on('error', () => upstream.destroy())
    upstream.on('data', (d) => {
      if (!client.destroyed) client.write(d)
    })
    upstream.on('close', () => client.destroy())
    client.on('close', () => setTimeout(() => upstream.destroy(), 300))
    client.on('data', (d: Buffer) => {
      upstream.write(d)
      // a simple-protocol Query message: 'Q', int32 length, then the SQL text
      if (armed && /Q.{4}commit\b/is.test(d.toString('latin1'))) {
        armed = false
        cut++
        client.destroy()
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  const via = new URL(targetUrl)
  via.hostname = '127.0.0.1'
  via.port = String(port)
  return {
    url: via.toString(),
    arm: () => {
      armed = true
    },
    get cut() {
      return cut
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}
