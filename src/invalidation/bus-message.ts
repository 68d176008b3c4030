import { randomBytes } from 'node:crypto'
import { ValueTooLargeError } from '../core/errors.js'

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
