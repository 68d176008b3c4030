import type { Cluster, Redis } from 'ioredis'
import { withTimeout } from '../../core/with-timeout.js'

const ignoreError = (): void => {}

/**
 * Closes a client a Redis backend owns: `QUIT` when ready (bounded by `timeout` ms), then disconnects
 * and drops every node's socket at once, and waits (at most `timeout` ms) for its `'end'`. Never rejects.
 *
 * The client keeps an `'error'` listener that does nothing: an error it still emits (the ready check of
 * a connection that was opening when it closed) has no caller left, and without a listener ioredis
 * would print it as an "Unhandled error event".
 * @param timedOut the error a step that took too long rejects with (not seen: close never rejects).
 */
export async function closeOwnedClient(client: Redis | Cluster, cluster: boolean, timeout: number, timedOut: () => Error): Promise<void> {
  client.on('error', ignoreError)
  // only a client with a live (or opening) connection emits 'end' after disconnect()
  const live = ['connecting', 'connect', 'ready', 'disconnecting'].includes(client.status)
  const ended = live ? new Promise<void>((resolve) => client.once('end', () => resolve())) : Promise.resolve()
  try {
    if (client.status === 'ready') await withTimeout(client.quit(), timeout, timedOut)
  } catch {
    // quitting is best effort: disconnect below in any case
  }
  // (taken before disconnect(), which empties a cluster's list of nodes)
  const nodes = cluster ? (client as Cluster).nodes() : [client as Redis]
  client.disconnect()
  // QUIT was answered (the server closes its end) or never will be (a frozen server): nothing graceful
  // is left to wait for, and ending the sockets gracefully would take another `timeout` on a frozen one.
  for (const node of nodes) (node as { stream?: { destroy(): void } }).stream?.destroy()
  await withTimeout(ended, timeout, timedOut).catch(() => {})
}
