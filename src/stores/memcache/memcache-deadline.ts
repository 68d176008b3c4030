import { withTimeout } from '../../core/with-timeout.js'

/** A failure of the transport (connect, socket, timeout) rather than an error reply of the server. */
class TransportError extends Error {}

/** `promise`, or a TransportError once `ms` have passed (see {@link withTimeout}). The timer never keeps the process alive. */
export function withDeadline<T>(promise: Promise<T>, ms: number, address: string): Promise<T> {
  return withTimeout(promise, ms, () => new TransportError(`no reply from ${address} within ${ms} ms`), true)
}
