import { SerializationError, show } from './errors.js'
import type { Model } from './model.js'
import { describeModel } from './registry.js'
import { elementIndices, indicesFrom, tooSparse } from './sparse-arrays.js'
import { MAX_CONTAINERS, MAX_ELEMENTS } from './value-limits.js'

/**
 * What the cache codec stores exactly, and the rewriting that makes msgpack keep it.
 *
 * Accepted values: strings (also ill-formed UTF-16), numbers (also `-0`, NaN, ±Infinity), bigints,
 * booleans, `null`, `undefined`, arrays (also sparse), plain objects (also with a `null` prototype,
 * and with own `__proto__`/`constructor` keys), `Date`, `Map`, `Set`, `RegExp`, `ArrayBuffer`,
 * `DataView`, `Buffer`, every typed array, and instances of models. Refused with a
 * {@link SerializationError} naming the attribute path (./value-refusal.ts): functions, symbols, cycles, values nested
 * deeper than {@link MAX_DEPTH}, values past the bounds of ./value-limits.ts once expanded (an object
 * reached twice is stored twice), instances of other classes (and of subclasses of the built-ins),
 * boxed primitives. Symbol-keyed and non-enumerable properties are not data and are not stored (as
 * with JSON).
 *
 * msgpack itself writes `-0` as `0`, a lone surrogate as U+FFFD (also in a RegExp's source), holes as
 * `undefined`, a `null` prototype as `Object.prototype`, and msgpackr reads an own `__proto__` key as `__proto_`. A value
 * holding none of these is encoded as it is (the common case costs one walk without allocation);
 * otherwise a copy is encoded in which each such part is an instance of one of the classes below,
 * written as a msgpack extension that reads back exactly.
 */
export const MAX_DEPTH = 256

const REWRITE = 1
const REFUSE = 2

/** A string that is not well-formed UTF-16, carried as its UTF-16LE code units. */
export class IllFormedString {
  constructor(readonly text: string) {}
}
/** A RegExp whose source is not well-formed UTF-16 (msgpackr writes a source as UTF-8): its source and flags. */
export class IllFormedRegExp {
  constructor(
    readonly source: string,
    readonly flags: string,
  ) {}
}
/** Negative zero. */
export class NegativeZero {}
/** An array with holes: its length and its present `[index, value]` pairs. */
export class SparseArray {
  constructor(
    readonly length: number,
    readonly items: unknown[],
  ) {}
}
/** A plain object msgpack cannot carry as a map: an own `__proto__`/`constructor` key, ill-formed keys or a null prototype. */
export class RawObject {
  constructor(
    readonly nullPrototype: boolean,
    readonly items: unknown[],
  ) {}
}

const NEGATIVE_ZERO = new NegativeZero()

/** The prototypes of the typed arrays, `DataView` and `Buffer`. */
export const TYPED_PROTOTYPES: ReadonlySet<object> = new Set<object>(
  [
    Int8Array,
    Uint8Array,
    Uint8ClampedArray,
    Int16Array,
    Uint16Array,
    Int32Array,
    Uint32Array,
    Float32Array,
    Float64Array,
    BigInt64Array,
    BigUint64Array,
    DataView,
    Buffer,
  ].map((c) => c.prototype),
)

/** The model whose instances have prototype `proto`, or `undefined`. */
export function modelOf(proto: object | null): Model | undefined {
  const ctor = (proto as { constructor?: unknown } | null)?.constructor
  return typeof ctor === 'function' && Array.isArray((ctor as unknown as Model).stockpyleKeys) ? (ctor as unknown as Model) : undefined
}

// What the scan running may still visit (./value-limits.ts), and the attribute of the model instance
// at the top under which a bound was passed.
let containersLeft = 0
let elementsLeft = 0
let passedAt: string | undefined

function scanKeys(o: Record<string, unknown>, depth: number, checkNames: boolean): number {
  const keys = Object.keys(o)
  if ((elementsLeft -= keys.length) < 0) return REFUSE
  let flags = 0
  for (const key of keys) {
    if (checkNames && !key.isWellFormed()) flags |= REWRITE
    flags |= scan(o[key], depth)
    if (depth === 1 && (flags & REFUSE) !== 0 && passedAt === undefined && (containersLeft < 0 || elementsLeft < 0)) passedAt = key
  }
  return flags
}

function scanArray(a: unknown[], depth: number): number {
  const length = a.length
  let flags = 0
  let holes = 0
  for (let i = 0; i < length; i++) {
    const v = a[i]
    if (v === undefined && !(i in a)) {
      flags |= REWRITE
      if (tooSparse(++holes, i + 1)) {
        const rest = indicesFrom(a, i + 1)
        for (const index of rest) flags |= scan(a[index], depth)
        return (elementsLeft -= i + 1 + rest.length) < 0 ? REFUSE : flags
      }
    } else flags |= scan(v, depth)
  }
  return (elementsLeft -= length) < 0 ? REFUSE : flags
}

function scanObject(o: object, depth: number): number {
  if (depth > MAX_DEPTH || --containersLeft < 0 || elementsLeft < 0) return REFUSE
  const proto = Object.getPrototypeOf(o)
  if (proto === Object.prototype) {
    const raw = Object.hasOwn(o, '__proto__') || Object.hasOwn(o, 'constructor') ? REWRITE : 0
    return raw | scanKeys(o as Record<string, unknown>, depth, true)
  }
  if (proto === Array.prototype) return scanArray(o as unknown[], depth)
  if (proto === Date.prototype) return hasExtras(o) ? REFUSE : 0
  const model = modelOf(proto)
  if (model !== undefined) {
    // registering it adds its msgpack extension (a nested instance of a model used nowhere else yet)
    describeModel(model)
    return scanKeys(o as Record<string, unknown>, depth, false)
  }
  if (proto === Map.prototype) {
    let flags = hasExtras(o) ? REFUSE : 0
    if ((elementsLeft -= (o as Map<unknown, unknown>).size) < 0) return REFUSE
    for (const [k, v] of o as Map<unknown, unknown>) flags |= scan(k, depth) | scan(v, depth)
    return flags
  }
  if (proto === Set.prototype) {
    let flags = hasExtras(o) ? REFUSE : 0
    if ((elementsLeft -= (o as Set<unknown>).size) < 0) return REFUSE
    for (const v of o as Set<unknown>) flags |= scan(v, depth)
    return flags
  }
  if (proto === RegExp.prototype) return hasExtras(o) ? REFUSE : (o as RegExp).source.isWellFormed() ? 0 : REWRITE
  if (TYPED_PROTOTYPES.has(proto) || proto === ArrayBuffer.prototype) return 0
  if (proto === null) return REWRITE | scanKeys(o as Record<string, unknown>, depth, true)
  return REFUSE
}

/**
 * Whether a Date, Map, Set or RegExp carries what msgpack would drop: own enumerable properties, or
 * a RegExp's `lastIndex` (its position in a global search). (Not asked of arrays and typed arrays,
 * where listing own properties costs a string per element.)
 */
function hasExtras(o: object): boolean {
  for (const _ in o) if (Object.hasOwn(o, _)) return true
  return o instanceof RegExp && o.lastIndex !== 0
}

/**
 * What msgpack or JSON would drop from a `Date`, `Map`, `Set` or `RegExp` (`value`, of prototype
 * `proto`), said for a message (``a Date with own properties `["zone"]` ``); `undefined` when nothing.
 */
export function droppedExtras(value: object, proto: object | null): string | undefined {
  if (proto !== Date.prototype && proto !== Map.prototype && proto !== Set.prototype && proto !== RegExp.prototype) return undefined
  if (!hasExtras(value)) return undefined
  const kind = (proto as { constructor: { name: string } }).constructor.name
  const names = Object.keys(value)
  return `a ${kind} with ${names.length > 0 ? `own properties ${show(names)}` : `lastIndex ${(value as RegExp).lastIndex}`}`
}

function scan(value: unknown, depth: number): number {
  switch (typeof value) {
    case 'string':
      return value.isWellFormed() ? 0 : REWRITE
    case 'number':
      return value === 0 && 1 / value < 0 ? REWRITE : 0
    case 'object':
      return value === null ? 0 : scanObject(value, depth + 1)
    case 'function':
    case 'symbol':
      return REFUSE
    default:
      return 0
  }
}

/** How {@link checkValue} found a value: the bound of ./value-limits.ts it passed, and under which attribute. */
export interface TooLarge {
  /** `true`: more containers than {@link MAX_CONTAINERS}; `false`: more elements than {@link MAX_ELEMENTS}. */
  readonly containers: boolean
  /** The attribute of the model instance at the top under which the bound was passed, or `undefined`. */
  readonly attribute: string | undefined
}

/**
 * Checks a value before encoding: `'exact'` when msgpack keeps it as it is, `'rewrite'` when it must be
 * {@link rewrite}n first, `'refuse'` when it cannot be stored (./value-refusal.ts says why), or a
 * {@link TooLarge} when it is past a bound of ./value-limits.ts once expanded (the scan stops there).
 */
export function checkValue(value: unknown): 'exact' | 'rewrite' | 'refuse' | TooLarge {
  containersLeft = MAX_CONTAINERS
  elementsLeft = MAX_ELEMENTS
  passedAt = undefined
  const flags = scan(value, 0)
  if (containersLeft < 0 || elementsLeft < 0) return { containers: containersLeft < 0, attribute: passedAt }
  return (flags & REFUSE) !== 0 ? 'refuse' : flags !== 0 ? 'rewrite' : 'exact'
}

function rewriteFields(o: Record<string, unknown>, target: Record<string, unknown>): Record<string, unknown> {
  // Defined, not assigned: an attribute of the same name as an accessor of the class (SqlStore hands
  // out columns as own data attributes) must not run its setter, nor fail on a getter-only one.
  for (const key of Object.keys(o)) {
    Object.defineProperty(target, key, { value: rewrite(o[key]), enumerable: true, writable: true, configurable: true })
  }
  return target
}

function rawItems(o: Record<string, unknown>): unknown[] {
  const items: unknown[] = []
  for (const key of Object.keys(o)) items.push(rewrite(key), rewrite(o[key]))
  return items
}

/** A copy of a value {@link checkValue} flagged, with every part msgpack would change replaced by its carrier class. */
export function rewrite(value: unknown): unknown {
  if (typeof value === 'string') return value.isWellFormed() ? value : new IllFormedString(value)
  if (typeof value === 'number') return value === 0 && 1 / value < 0 ? NEGATIVE_ZERO : value
  if (typeof value !== 'object' || value === null) return value
  const proto = Object.getPrototypeOf(value)
  if (proto === Object.prototype) {
    const o = value as Record<string, unknown>
    const raw = Object.hasOwn(o, '__proto__') || Object.hasOwn(o, 'constructor') || Object.keys(o).some((k) => !k.isWellFormed())
    return raw ? new RawObject(false, rawItems(o)) : rewriteFields(o, {})
  }
  if (proto === null) return new RawObject(true, rawItems(value as Record<string, unknown>))
  if (proto === Array.prototype) {
    const a = value as unknown[]
    let sparse = false
    for (let i = 0; i < a.length && !sparse; i++) sparse = a[i] === undefined && !(i in a)
    if (!sparse) return a.map(rewrite)
    const items: unknown[] = []
    for (const index of elementIndices(a)) items.push(index, rewrite(a[index]))
    return new SparseArray(a.length, items)
  }
  if (proto === RegExp.prototype) {
    const { source, flags } = value as RegExp
    return source.isWellFormed() ? value : new IllFormedRegExp(source, flags)
  }
  if (proto === Map.prototype) {
    const out = new Map<unknown, unknown>()
    for (const [k, v] of value as Map<unknown, unknown>) out.set(rewrite(k), rewrite(v))
    return out
  }
  if (proto === Set.prototype) {
    const out = new Set<unknown>()
    for (const v of value as Set<unknown>) out.add(rewrite(v))
    return out
  }
  if (modelOf(proto) !== undefined) return rewriteFields(value as Record<string, unknown>, Object.create(proto))
  return value
}

function corrupt(what: string, data: unknown): SerializationError {
  return new SerializationError(`Stored bytes hold a malformed ${what} ${show(data)}`)
}

/** Reads an {@link IllFormedString} back. */
export function readIllFormedString(data: unknown): string {
  if (!(data instanceof Uint8Array) || data.byteLength % 2 !== 0) throw corrupt('ill-formed string', data)
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf16le')
}

/** Reads an {@link IllFormedRegExp} back (`[source, flags]`, the source read as an {@link IllFormedString}). */
export function readIllFormedRegExp(data: unknown): RegExp {
  if (!Array.isArray(data) || data.length !== 2 || typeof data[0] !== 'string' || typeof data[1] !== 'string') {
    throw corrupt('RegExp', data)
  }
  try {
    return new RegExp(data[0], data[1])
  } catch {
    throw corrupt('RegExp', data)
  }
}

/** Reads a {@link SparseArray} back (`[length, index, value, …]`). */
export function readSparseArray(data: unknown): unknown[] {
  if (!Array.isArray(data) || data.length % 2 !== 1) throw corrupt('sparse array', data)
  const length = data[0]
  if (!Number.isSafeInteger(length) || length < 0 || length > 2 ** 32 - 1) throw corrupt('sparse array', data)
  const out = new Array<unknown>(length)
  for (let i = 1; i < data.length; i += 2) {
    const index = data[i]
    if (!Number.isSafeInteger(index) || index < 0 || index >= length) throw corrupt('sparse array', data)
    out[index] = data[i + 1]
  }
  return out
}

/** Reads a {@link RawObject} back (`[nullPrototype, key, value, …]`): own data properties, never a prototype write. */
export function readRawObject(data: unknown): object {
  if (!Array.isArray(data) || data.length % 2 !== 1 || (data[0] !== 0 && data[0] !== 1)) throw corrupt('object', data)
  const out: Record<string, unknown> = data[0] === 1 ? Object.create(null) : {}
  for (let i = 1; i < data.length; i += 2) {
    const key = data[i]
    if (typeof key !== 'string') throw corrupt('object', data)
    Object.defineProperty(out, key, { value: data[i + 1], enumerable: true, writable: true, configurable: true })
  }
  return out
}
