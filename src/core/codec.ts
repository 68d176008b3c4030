import { addExtension, Packr } from 'msgpackr'
import { SerializationError, StockpyleError, show, UnknownModelError } from './errors.js'
import type { Model } from './model.js'
import { describeModel, type ModelInfo, modelByName, onModelRegistered } from './registry.js'

/**
 * The stored form of an object (an envelope): a 10-byte header, then msgpack.
 *
 * | bytes | meaning |
 * |---|---|
 * | 0 | format version ({@link FORMAT}) |
 * | 1 | kind: 1 record (holds an object), 2 alias (points to a record key), 3 tombstone (recently deleted) |
 * | 2–9 | absolute expiry, ms since the epoch, float64 big-endian; 0 = never |
 * | 10… | record: msgpack of the object; alias: the UTF-8 record key |
 *
 * Model instances (at the top and nested) are msgpack extension {@link MODEL_EXT} holding
 * `[typeTag, modelVersion, fields]`; decoding restores the prototype of the registered class with
 * that tag without calling its constructor, and an unregistered tag is an {@link UnknownModelError}.
 * Date, bigint, Map, Set, Uint8Array, Buffer, undefined, nested arrays and plain objects keep their
 * types. `__proto__` keys never reach a prototype.
 */
export const FORMAT = 1
/** Envelope kind of a record. */
export const KIND_RECORD = 1
/** Envelope kind of an alias. */
export const KIND_ALIAS = 2
/** Envelope kind of a tombstone: the object was deleted; reads miss and backfills may not land until it expires. */
export const KIND_TOMBSTONE = 3
/** Size of the envelope header in bytes. */
export const HEADER_SIZE = 10
/** The msgpack extension type used for model instances. */
export const MODEL_EXT = 0x53

class StaleVersion extends Error {}

function writeFunction(fn: unknown): never {
  throw new SerializationError(`Cannot store the function ${show(fn)}: functions are not data`)
}

// copyBuffers: a decoded Buffer is a copy, never a view of the bytes a store holds (a caller mutating it
// would otherwise change the cached copy).
const packr = new Packr({
  moreTypes: true,
  useRecords: true,
  int64AsType: 'bigint',
  copyBuffers: true,
  writeFunction,
} as unknown as ConstructorParameters<typeof Packr>[0])

// Decoding reads from this reusable buffer: msgpackr caches a DataView on its input, so decoding a
// fresh view of each record would allocate a Buffer and a DataView per call (and caching one on every
// stored record would cost memory per entry). Records up to its size are copied in (a memcpy); larger
// ones are decoded from a view.
const SCRATCH_SIZE = 64 * 1024
const scratch = Buffer.allocUnsafeSlow(SCRATCH_SIZE)
const scratchRead = { start: HEADER_SIZE, end: 0 }

let extensionReady = false
function registerExtension(info: ModelInfo): void {
  addExtension({
    Class: info.model as unknown as new () => object,
    type: MODEL_EXT,
    write(instance: object) {
      // instanceof matched: the instance may be of an unregistered subclass, which is a model too.
      const exact = (instance.constructor as unknown) === info.model ? info : describeModel(instance.constructor as unknown as Model)
      return [exact.name, exact.version, { ...instance }]
    },
    read(data: [string, number, Record<string, unknown>]) {
      return revive(data)
    },
  })
  extensionReady = true
}

function revive(data: unknown): object {
  if (!Array.isArray(data) || typeof data[0] !== 'string' || typeof data[2] !== 'object' || data[2] === null) {
    throw new SerializationError(`Stored bytes hold a malformed model instance ${show(data)}`)
  }
  const info = modelByName(data[0])
  if (info === undefined) {
    throw new UnknownModelError(
      `Stored bytes name the model \`${data[0]}\`, which is not registered in this process: import it or call registerModel(${data[0]})`,
    )
  }
  if (data[1] !== info.version) throw new StaleVersion()
  return Object.setPrototypeOf(data[2], (info.model as { prototype: object }).prototype)
}

onModelRegistered(registerExtension)

/** A decoded record: the object and its absolute expiry (ms since the epoch, `undefined` = never). */
export interface DecodedRecord {
  readonly value: object
  readonly expiresAt: number | undefined
}

/**
 * Encodes an object into a record envelope.
 * @throws SerializationError for values that cannot be stored (functions, symbols, cycles, …).
 */
export function encodeRecord(value: object, expiresAt: number | undefined, context = 'encode'): Buffer {
  if (!extensionReady) throw new SerializationError(`${context}: no model is registered`)
  let body: Buffer
  try {
    body = packr.pack(value)
  } catch (err) {
    const model = (value as { constructor?: { name?: string } }).constructor?.name ?? 'object'
    if (err instanceof StockpyleError && !(err instanceof SerializationError)) throw err
    const reason = err instanceof RangeError ? 'it holds a cycle or is nested too deeply' : (err as Error).message
    throw new SerializationError(`${context} of model \`${model}\` failed: cannot encode the object: ${reason}`, { cause: err })
  }
  const out = Buffer.allocUnsafe(HEADER_SIZE + body.length)
  out[0] = FORMAT
  out[1] = KIND_RECORD
  out.writeDoubleBE(expiresAt ?? 0, 2)
  body.copy(out, HEADER_SIZE)
  return out
}

/** Encodes an alias envelope pointing to `recordKey`. */
export function encodeAlias(recordKey: string, expiresAt: number | undefined): Buffer {
  const length = Buffer.byteLength(recordKey)
  const out = Buffer.allocUnsafe(HEADER_SIZE + length)
  out[0] = FORMAT
  out[1] = KIND_ALIAS
  out.writeDoubleBE(expiresAt ?? 0, 2)
  out.write(recordKey, HEADER_SIZE, 'latin1')
  return out
}

/** Encodes a tombstone envelope expiring at `expiresAt`. */
export function encodeTombstone(expiresAt: number): Buffer {
  const out = Buffer.allocUnsafe(HEADER_SIZE)
  out[0] = FORMAT
  out[1] = KIND_TOMBSTONE
  out.writeDoubleBE(expiresAt, 2)
  return out
}

/** The kind byte of an envelope, or 0 when the bytes are not an envelope of this format. */
export function envelopeKind(bytes: Uint8Array): number {
  return bytes.length >= HEADER_SIZE && bytes[0] === FORMAT ? (bytes[1] as number) : 0
}

/** The absolute expiry stored in an envelope header (ms since the epoch), `undefined` = never. */
export function envelopeExpiry(bytes: Uint8Array): number | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const at = view.getFloat64(2)
  return at === 0 ? undefined : at
}

/** The record key an alias envelope points to. */
export function decodeAlias(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + HEADER_SIZE, bytes.byteLength - HEADER_SIZE).toString('latin1')
}

/**
 * Decodes a record envelope. Returns `undefined` when the envelope is of another format or was
 * written under another `stockpyleVersion` of its model (a miss, not an error).
 * @throws UnknownModelError when the bytes name an unregistered model; SerializationError for corrupt bytes.
 */
export function decodeRecord(bytes: Uint8Array): object | undefined {
  if (envelopeKind(bytes) !== KIND_RECORD) return undefined
  try {
    // msgpackr reads binary values as the type of its input: give it a Buffer so Buffers stay Buffers.
    const length = bytes.byteLength
    if (length <= SCRATCH_SIZE) {
      scratch.set(bytes, 0)
      scratchRead.end = length
      return packr.unpack(scratch, scratchRead) as object
    }
    return packr.unpack(Buffer.from(bytes.buffer, bytes.byteOffset + HEADER_SIZE, length - HEADER_SIZE)) as object
  } catch (err) {
    if (err instanceof StaleVersion) return undefined
    if (err instanceof StockpyleError) throw err
    throw new SerializationError(`Cannot decode a stored record: ${(err as Error).message}`, { cause: err })
  }
}
