/**
 * A BLOB or bytea keeps bytes, not their class: SqlStore reads a bytes column back as the class its
 * option `bytes` names for it (`Buffer` by default, or `Uint8Array`), so a put of bytes of another class
 * would come back from the database as another value than a chain's caches hold.
 */

/**
 * Why bytes `value` cannot go into a column (or array element) that reads bytes back as Buffer
 * (`buffers`) or as plain Uint8Array: the end of a message naming the column; `undefined` when its class
 * is the one read back (a subclass is another class).
 */
export function bytesClassRefusal(value: Uint8Array, buffers: boolean): string | undefined {
  const proto = Object.getPrototypeOf(value)
  if (proto === (buffers ? Buffer.prototype : Uint8Array.prototype)) return undefined
  return buffers
    ? "reads bytes back as Buffer (option bytes: 'Buffer', the default), so these would come back as another class: store a Buffer (Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)), or give this attribute the option bytes: 'Uint8Array'"
    : "reads bytes back as Uint8Array (option bytes: 'Uint8Array'), so these would come back as another class: store a plain Uint8Array (new Uint8Array(bytes)), or give this attribute the option bytes: 'Buffer'"
}
