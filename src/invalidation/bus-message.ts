import { randomBytes } from 'node:crypto'
import {
  InvalidArgumentError,
  isStockpyleError,
  type StockpyleError,
  StoreClosedError,
  StoreUnavailableError,
  show,
  ValueTooLargeError,
} from '../core/errors.js'
import { messageOf } from '../core/unavailable-unless-ours.js'

/** What a bus message carries: the sender's origin id and canonical record keys. */
export interface BusMessage {
  /** Origin id of the bus instance that sent it (see {@link newOrigin}). */
  readonly o: string
  /** Canonical record keys (no store prefix). */
  readonly k: readonly string[]
}

/** A random origin id for one bus instance: 16 base64url characters (96 random bits). */
export function newOrigin(): string {
  return randomBytes(12).toString('base64url')
}

/**
 * Encodes `keys` as JSON messages `{"o":origin,"k":[…]}`, each at most `maxBytes` bytes of UTF-8, in
 * key order; `[]` for no keys.
 * @throws ValueTooLargeError when a single key does not fit into one message.
 */
export function encodeMessages(bus: string, origin: string, keys: readonly string[], maxBytes: number): string[] {
  const head = `{"o":${JSON.stringify(origin)},"k":[`
  const overhead = Buffer.byteLength(head) + 2 // `]}`
  const messages: string[] = []
  let parts: string[] = []
  let size = overhead
  for (const key of keys) {
    const part = JSON.stringify(key)
    const bytes = Buffer.byteLength(part) + (parts.length > 0 ? 1 : 0)
    if (overhead + Buffer.byteLength(part) > maxBytes) {
      throw new ValueTooLargeError(`${bus} publish: the key ${part.slice(0, 80)} does not fit into one message of ${maxBytes} bytes`)
    }
    if (size + bytes > maxBytes) {
      messages.push(`${head}${parts.join(',')}]}`)
      parts = []
      size = overhead
    }
    size += parts.length > 0 ? Buffer.byteLength(part) + 1 : Buffer.byteLength(part)
    parts.push(part)
  }
  if (parts.length > 0) messages.push(`${head}${parts.join(',')}]}`)
  return messages
}

/** Decodes a message; `undefined` for anything that is not `{o: string, k: string[]}`. */
export function decodeMessage(text: string): BusMessage | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined
  const { o, k } = parsed as { o?: unknown; k?: unknown }
  if (typeof o !== 'string' || !Array.isArray(k) || !k.every((key) => typeof key === 'string')) return undefined
  return { o, k: k as string[] }
}

/**
 * The start of a bus's `publish(keys)`: the call checked, the keys encoded ({@link encodeMessages}).
 * @throws StoreClosedError when the bus is `closed`.
 * @throws InvalidArgumentError when `keys` is not an array of strings.
 * @throws ValueTooLargeError when a single key does not fit into one message.
 */
export function publishMessages(bus: string, origin: string, closed: boolean, keys: unknown, maxBytes: number): string[] {
  if (closed) throw new StoreClosedError(`${bus} is closed: publish was called after close()`)
  if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string')) {
    throw new InvalidArgumentError(`${bus} publish takes an array of string keys, got ${show(keys)}`)
  }
  return encodeMessages(bus, origin, keys, maxBytes)
}

/**
 * Checks the argument of a bus's `subscribe(listener)`.
 * @throws InvalidArgumentError unless `listener` has the methods `onInvalidate`, `onDown` and `onUp`.
 */
export function checkListener(bus: string, listener: unknown): void {
  const l = listener as Partial<Record<'onInvalidate' | 'onDown' | 'onUp', unknown>> | null | undefined
  if (typeof l?.onInvalidate !== 'function' || typeof l.onDown !== 'function' || typeof l.onUp !== 'function') {
    throw new InvalidArgumentError(`${bus} subscribe takes a listener with onInvalidate, onDown and onUp, got ${show(listener)}`)
  }
}

/** What a bus's publish on `channel` rejects with when the server cannot take it: `"<bus> publish on <channel>: <what>"`. */
export function publishUnavailable(bus: string, channel: string, what: string, cause?: unknown): StoreUnavailableError {
  return new StoreUnavailableError(`${bus} publish on ${show(channel)}: ${what}`, cause === undefined ? {} : { cause })
}

/** A failed publish as it rejects: a stockpyle error as itself, anything else as {@link publishUnavailable} with it as the cause. */
export function publishFailed(bus: string, channel: string, err: unknown): StockpyleError {
  return isStockpyleError(err) ? err : publishUnavailable(bus, channel, `failed: ${messageOf(err)}`, err)
}
