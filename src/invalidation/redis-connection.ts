import type { Redis } from 'ioredis'
import { StoreUnavailableError } from '../core/errors.js'
import { closeOwnedClient } from '../stores/redis/close-owned-client.js'

/** The connection helpers of {@link RedisBus}. */
export function busName(url: string | undefined, client: Redis | undefined): string {
  if (url !== undefined) {
    const u = new URL(url)
    return `redis-bus(${u.hostname}:${u.port || 6379})`
  }
  const o = (client as { options?: { host?: string; port?: number } } | undefined)?.options
  return `redis-bus(${o?.host ?? '?'}:${o?.port ?? '?'})`
}

/**
 * Loads the optional peer `ioredis`.
 * @throws StoreUnavailableError naming the install command when it is missing.
 */
export async function loadIoredis(bus: string): Promise<{ Redis: typeof Redis }> {
  try {
    const { Redis } = await import('ioredis')
    return { Redis }
  } catch (err) {
    throw new StoreUnavailableError(`${bus} needs the package \`ioredis\`: npm install ioredis`, { cause: err })
  }
}

/** Drops the socket at once (also of a frozen server, where QUIT would never be answered); ioredis then reconnects. */
export function destroyStream(client: Redis): void {
  ;(client as { stream?: { destroy(): void } }).stream?.destroy()
}

/**
 * QUIT (bounded by `timeout` ms), then disconnect; resolves once the connection ended (never rejects).
 * The client keeps a listener that ignores its later 'error' events (see `closeOwnedClient`).
 */
export function quit(client: Redis, timeout: number): Promise<void> {
  return closeOwnedClient(client, false, timeout, () => new Error('timeout'))
}

/** A wait for a connection's next 'ready' that any number of callers share ({@link nextReady}). */
export interface ReadyWait {
  /** Resolves on 'ready'; rejects with the error `failed()` gave when the attempt failed or the wait was stopped. Has a handler: a rejection nobody awaits is no unhandled rejection. */
  readonly ready: Promise<void>
  /** Removes the listeners; a wait still pending rejects. */
  stop(): void
}

/**
 * Waits for `client`'s next 'ready' with one set of listeners ('ready', 'close', 'end') however many
 * callers await it — one set per waiting caller passed ioredis's 10-listener warning threshold. 'close'
 * or 'end' first (the attempt was refused or reset) rejects with `failed()`.
 */
export function nextReady(client: Redis, failed: () => Error): ReadyWait {
  let stop = (): void => {}
  const ready = new Promise<void>((resolve, reject) => {
    const settle = (err?: Error): void => {
      client.off('ready', onReady)
      client.off('close', onClose)
      client.off('end', onClose)
      stop = () => {}
      if (err === undefined) resolve()
      else reject(err)
    }
    const onReady = (): void => settle()
    const onClose = (): void => settle(failed())
    client.once('ready', onReady)
    client.once('close', onClose)
    client.once('end', onClose)
    stop = onClose
  })
  ready.catch(() => {})
  return { ready, stop: () => stop() }
}
