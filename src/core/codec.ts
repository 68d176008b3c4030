import { addExtension, Packr } from 'msgpackr'
import { CorruptEntryError, SerializationError, StockpyleError, show, UnknownModelError } from './errors.js'
import {
  checkValue,
  IllFormedRegExp,
  IllFormedString,
  NegativeZero,
  RawObject,
  readIllFormedRegExp,
  readIllFormedString,
  readRawObject,
  readSparseArray,
  rewrite,
  SparseArray,
} from './exact-values.js'
import { builderOf, instanceOf, malformed, shapeOf } from './instance-shapes.js'
import type { Model } from './model.js'
import { notBytesReason } from './not-bytes.js'
import { describeModel, type ModelInfo, modelByName, onModelRegistered } from './registry.js'
import { refusal, refusalContext, tooLargeRefusal } from './value-refusal.js'

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
 * `[typeTag, modelVersion, shape, ...values]`, where `shape` is the JSON array of the instance's own
 * attribute names and `values` their values in that order (older writers stored
 * `[typeTag, modelVersion, fields]`, which is still read). Decoding builds the object with own data
 * properties (a per-shape function compiled once), gives it the prototype of the registered class
 * with that tag without calling its constructor, and an unregistered tag is an {@link UnknownModelError}.
 * Every value {@link checkValue} accepts comes back exactly (`-0`, lone surrogates, also in a
 * RegExp's source, holes, own `__proto__` keys and null prototypes through the extensions of
 * ./exact-values.ts); anything else is refused with a {@link SerializationError} naming the attribute
 * path, as is a value past the bounds of ./value-limits.ts once expanded. `__proto__` keys never reach
 * a prototype.
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

type Reader = (data: any) => unknown

/** msgpack extension types of the carriers of ./exact-values.ts. */
const EXACT_EXTENSIONS = [
  { Class: IllFormedString, type: 0x57, write: (v: IllFormedString) => Buffer.from(v.text, 'utf16le'), read: readIllFormedString },
  { Class: NegativeZero, type: 0x4e, write: () => 0, read: () => -0 },
  { Class: SparseArray, type: 0x41, write: (v: SparseArray) => [v.length, ...v.items], read: readSparseArray },
  { Class: RawObject, type: 0x4f, write: (v: RawObject) => [v.nullPrototype ? 1 : 0, ...v.items], read: readRawObject },
  {
    Class: IllFormedRegExp,
    type: 0x58,
    write: (v: IllFormedRegExp) => [new IllFormedString(v.source), v.flags],
    read: readIllFormedRegExp,
  },
]

/** The msgpack extension types stockpyle reads and writes (msgpackr's registry of them is process-wide). */
export const EXTENSION_TYPES: readonly number[] = [MODEL_EXT, ...EXACT_EXTENSIONS.map((e) => e.type)]

/** This copy's readers, and how many times any of them ran (to tell a taken-over reader). */
interface Decoding {
  readonly readers: Readonly<Record<number, Reader>>
  reads: number
}

// msgpackr keeps one table of extension readers per process (addExtension is global, msgpackr#93): a
// second copy of stockpyle in the process (two versions under node_modules) would put its readers in
// place of this copy's, and this copy would then revive objects with the other copy's registry (a
// silent miss, or UnknownModelError). So every copy installs dispatchers that read with the readers of
// the copy whose decodeRecord is running, found through a slot shared on globalThis.
const DECODING = Symbol.for('stockpyle.codec.decoding')
const slot = ((globalThis as Record<symbol, unknown>)[DECODING] ??= { current: undefined }) as { current: Decoding | undefined }
const own: Decoding = {
  readers: Object.fromEntries([[MODEL_EXT, (data: unknown) => revive(data)], ...EXACT_EXTENSIONS.map((e) => [e.type, e.read])]),
  reads: 0,
}

function dispatcher(type: number): Reader {
  return (data) => {
    const decoding = slot.current ?? own
    decoding.reads++
    return ((decoding.readers[type] ?? own.readers[type]) as Reader)(data)
  }
}

for (const extension of EXACT_EXTENSIONS) {
  addExtension({ ...extension, read: dispatcher(extension.type) } as unknown as Parameters<typeof addExtension>[0])
}
const readModel = dispatcher(MODEL_EXT)

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
      // instanceof matched: the instance may be of an unregistered subclass, which is a model too. (The
      // prototype's constructor, not `instance.constructor`, which an own attribute may shadow.)
      const ctor = (Object.getPrototypeOf(instance) as { constructor: unknown }).constructor
      const exact = ctor === info.model ? info : describeModel(ctor as Model)
      const shape = shapeOf(exact.model, instance)
      const keys = shape.keys
      const out = new Array<unknown>(keys.length + 3)
      out[0] = exact.name
      out[1] = exact.version
      out[2] = shape.text
      for (let i = 0; i < keys.length; i++) out[i + 3] = (instance as Record<string, unknown>)[keys[i] as string]
      return out
    },
    read: readModel,
  })
  extensionReady = true
}

let lastName: string | undefined
let lastInfo: ModelInfo | undefined

function revive(data: unknown): object {
  if (!Array.isArray(data) || typeof data[0] !== 'string') throw malformed(data)
  const name = data[0]
  let info = name === lastName ? lastInfo : undefined
  if (info === undefined) {
    info = modelByName(name)
    if (info === undefined) {
      throw new UnknownModelError(
        `Stored bytes name the model \`${name}\`, which is not registered in this process: import it or call registerModel(${name})`,
      )
    }
    lastName = name
    lastInfo = info
  }
  if (data[1] !== info.version) throw new StaleVersion()
  const prototype = (info.model as { prototype: object }).prototype
  const fields: unknown = data[2]
  if (typeof fields === 'string') {
    const builder = builderOf(fields, data)
    if (data.length !== builder.count + 3) throw malformed(data)
    return instanceOf(builder, prototype, data)
  }
  // the layout of earlier writers: [typeTag, modelVersion, fields]
  if (typeof fields !== 'object' || fields === null || data.length !== 3) throw malformed(data)
  return Object.setPrototypeOf(fields, prototype)
}

onModelRegistered(registerExtension)

/** A decoded record: the object and its absolute expiry (ms since the epoch, `undefined` = never). */
export interface DecodedRecord {
  readonly value: object
  readonly expiresAt: number | undefined
}

/**
 * Where an envelope's bytes are cut from: a Buffer of `length` bytes, its contents to be written. By
 * default `Buffer.allocUnsafe` (under 4 KiB a slice of Node's shared 8 KiB pool, which it keeps alive
 * whole); a memory store passes its own (see its RecordArena).
 */
export type Allocate = (length: number) => Buffer

/**
 * Encodes an object into a record envelope (its bytes from `alloc`, default `Buffer.allocUnsafe`).
 * @throws SerializationError for values that cannot be stored (functions, symbols, cycles, …).
 */
export function encodeRecord(value: object, expiresAt: number | undefined, context = 'encode', alloc?: Allocate): Buffer {
  if (!extensionReady) throw new SerializationError(`${context}: no model is registered`)
  let body: Buffer
  try {
    const check = checkValue(value)
    if (typeof check === 'object') throw tooLargeRefusal(check, refusalContext(value, context))
    if (check === 'refuse') throw refusal(value, refusalContext(value, context))
    body = packr.pack(check === 'rewrite' ? rewrite(value) : value)
  } catch (err) {
    if (err instanceof StockpyleError && !(err instanceof SerializationError && err.message.startsWith('Cannot store the function')))
      throw err
    throw refusal(value, refusalContext(value, context), err)
  }
  const out = alloc === undefined ? Buffer.allocUnsafe(HEADER_SIZE + body.length) : alloc(HEADER_SIZE + body.length)
  out[0] = FORMAT
  out[1] = KIND_RECORD
  out.writeDoubleBE(expiresAt ?? 0, 2)
  body.copy(out, HEADER_SIZE)
  return out
}

/**
 * A fresh copy of a record envelope with another expiry (its bytes from `alloc`, default
 * `Buffer.allocUnsafe`): for copying an object between layers without encoding it again. Returns
 * `undefined` when the bytes are not a record envelope of this format.
 */
export function restampRecord(bytes: Uint8Array, expiresAt: number | undefined, alloc?: Allocate): Buffer | undefined {
  if (envelopeKind(bytes) !== KIND_RECORD) return undefined
  const out = alloc === undefined ? Buffer.allocUnsafe(bytes.byteLength) : alloc(bytes.byteLength)
  out.set(bytes)
  out.writeDoubleBE(expiresAt ?? 0, 2)
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

// The header's expiry is read through these (no DataView per envelope: reads run per hit).
const expiryBytes = new Uint8Array(8)
const expiryFloat = new Float64Array(expiryBytes.buffer)
const bigEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 0

/** The float64 big-endian at bytes 2–9 of an envelope header. */
function headerExpiry(bytes: Uint8Array): number {
  if (bigEndian) for (let i = 0; i < 8; i++) expiryBytes[i] = bytes[2 + i] as number
  else for (let i = 0; i < 8; i++) expiryBytes[i] = bytes[9 - i] as number
  return expiryFloat[0] as number
}

/** The absolute expiry stored in an envelope header (ms since the epoch), `undefined` = never (or not an envelope). */
export function envelopeExpiry(bytes: Uint8Array): number | undefined {
  if (bytes.byteLength < HEADER_SIZE) return undefined
  const at = headerExpiry(bytes)
  return at === 0 ? undefined : at
}

/**
 * Whether `bytes` are a record (kind 1) or tombstone (kind 3) envelope whose header expiry is set (not
 * 0) and at or before `expiredBy`: an expired copy a store keeps only for its `grace` (or a backend
 * keeps past its expiry, memcached rounding `exptime` up), or a tombstone or lease that no longer
 * fences anything — what a backfill or a lease may replace. Never true for a live or never-expiring
 * record or tombstone, an alias or foreign bytes.
 */
export function isExpiredEnvelope(bytes: Uint8Array, expiredBy: number): boolean {
  const kind = envelopeKind(bytes)
  if (kind !== KIND_RECORD && kind !== KIND_TOMBSTONE) return false
  const at = headerExpiry(bytes)
  return at !== 0 && at <= expiredBy
}

// An alias holds a canonical key: printable ASCII without spaces, as memcached requires.
const ALIAS_TARGET = /^[\x21-\x7e]{1,1024}$/

/**
 * Why bytes a backend returned are not an envelope of this format (for a message), or `undefined` when
 * the header is sound: at least {@link HEADER_SIZE} bytes, this {@link FORMAT}, a known kind, a finite
 * non-negative expiry, a non-empty record, an alias holding a plausible key. The body of a record is
 * checked by {@link decodeRecord}.
 */
export function envelopeProblem(bytes: unknown): string | undefined {
  if (!(bytes instanceof Uint8Array)) return `it is not bytes but ${show(bytes)}`
  if (bytes.byteLength < HEADER_SIZE) {
    return notBytesReason(bytes) ?? `it is ${bytes.byteLength} bytes long, shorter than the ${HEADER_SIZE}-byte header`
  }
  if (bytes[0] !== FORMAT) return `its format byte is ${bytes[0]}, not ${FORMAT}`
  const kind = bytes[1]
  if (kind !== KIND_RECORD && kind !== KIND_ALIAS && kind !== KIND_TOMBSTONE) return `its kind byte is ${kind}`
  const at = headerExpiry(bytes)
  if (!(Number.isFinite(at) && at >= 0)) return `its expiry is ${at}`
  if (kind === KIND_RECORD && bytes.byteLength === HEADER_SIZE) return 'it is a record without a body'
  if (kind === KIND_ALIAS && !ALIAS_TARGET.test(decodeAlias(bytes))) return 'it is an alias without a valid key'
  return undefined
}

/** The record key an alias envelope points to. */
export function decodeAlias(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + HEADER_SIZE, bytes.byteLength - HEADER_SIZE).toString('latin1')
}

/** Whether a record's body starts with a msgpack ext (fixext or ext 8/16/32) of type {@link MODEL_EXT}. */
function isModelExtension(bytes: Uint8Array): boolean {
  const head = bytes[HEADER_SIZE] as number
  const typeAt = head >= 0xd4 && head <= 0xd8 ? 1 : head === 0xc7 ? 2 : head === 0xc8 ? 3 : head === 0xc9 ? 5 : -1
  return typeAt > 0 && bytes[HEADER_SIZE + typeAt] === MODEL_EXT
}

function takenOver(): StockpyleError {
  return new StockpyleError(
    `Cannot decode a stored record: another registration took msgpack extension type ${MODEL_EXT} (0x${MODEL_EXT.toString(16)}) from stockpyle. msgpackr's addExtension is process-wide; stockpyle reads types ${EXTENSION_TYPES.map((t) => `0x${t.toString(16)}`).join(', ')}, so register other extensions under other types`,
  )
}

function isModelInstance(value: unknown): value is object {
  if (typeof value !== 'object' || value === null) return false
  const ctor = (Object.getPrototypeOf(value) as { constructor?: unknown } | null)?.constructor
  return typeof ctor === 'function' && Array.isArray((ctor as unknown as Model).stockpyleKeys)
}

/**
 * Decodes a record envelope. Returns `undefined` when the bytes are not a record envelope of this
 * format (check {@link envelopeProblem} first to tell corrupt bytes apart) or were written under
 * another `stockpyleVersion` of its model (a miss, not an error). Never throws anything but these:
 * @throws UnknownModelError when the bytes name an unregistered model; CorruptEntryError for bytes
 *   that do not decode to a model instance (truncated, altered, foreign).
 */
export function decodeRecord(bytes: Uint8Array): object | undefined {
  if (envelopeKind(bytes) !== KIND_RECORD) return undefined
  let value: unknown
  const reads = own.reads
  const outer = slot.current
  slot.current = own
  try {
    // msgpackr reads binary values as the type of its input: give it a Buffer so Buffers stay Buffers.
    const length = bytes.byteLength
    if (length <= SCRATCH_SIZE) {
      scratch.set(bytes, 0)
      scratchRead.end = length
      value = packr.unpack(scratch, scratchRead)
    } else {
      value = packr.unpack(Buffer.from(bytes.buffer, bytes.byteOffset + HEADER_SIZE, length - HEADER_SIZE))
    }
  } catch (err) {
    if (err instanceof StaleVersion) return undefined
    if (err instanceof UnknownModelError) throw err
    throw new CorruptEntryError(`Cannot decode a stored record: ${(err as Error)?.message ?? show(err)}`, { cause: err })
  } finally {
    slot.current = outer
  }
  if (!isModelInstance(value)) {
    // A record is a model instance at the top: when no reader of ours ran, the bytes are sound and
    // something else in the process registered its own reader for our extension type.
    if (own.reads === reads && bytes[HEADER_SIZE] !== undefined && isModelExtension(bytes)) throw takenOver()
    throw new CorruptEntryError(`A stored record holds ${show(value)}, not an object of a model`)
  }
  return value
}
