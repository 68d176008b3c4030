import { SerializationError, show } from './errors.js'
import type { Model } from './model.js'
import { describeModel } from './registry.js'

/**
 * What the cache codec stores exactly, and the rewriting that makes msgpack keep it.
 *
 * Accepted values: strings (also ill-formed UTF-16), numbers (also `-0`, NaN, ±Infinity), bigints,
 * booleans, `null`, `undefined`, arrays (also sparse), plain objects (also with a `null` prototype,
 * and with own `__proto__`/`constructor` keys), `Date`, `Map`, `Set`, `RegExp`, `ArrayBuffer`,
 * `DataView`, `Buffer`, every typed array, and instances of models. Refused with a
 * {@link SerializationError} naming the attribute path ({@link refusal}): functions, symbols, cycles, values nested
 * deeper than {@link MAX_DEPTH}, instances of other classes (and of subclasses of the built-ins),
 * boxed primitives. Symbol-keyed and non-enumerable properties are not data and are not stored (as
 * with JSON).
 *
 * msgpack itself writes `-0` as `0`, a lone surrogate as U+FFFD, holes as `undefined`, a `null`
 * prototype as `Object.prototype`, and msgpackr reads an own `__proto__` key as `__proto_`. A value
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

const TYPED_PROTOTYPES = new Set<object>(
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

function modelOf(proto: object | null): Model | undefined {
  const ctor = (proto as { constructor?: unknown } | null)?.constructor
  return typeof ctor === 'function' && Array.isArray((ctor as unknown as Model).stockpyleKeys) ? (ctor as unknown as Model) : undefined
}

function scanKeys(o: Record<string, unknown>, depth: number, checkNames: boolean): number {
  let flags = 0
  for (const key of Object.keys(o)) {
    if (checkNames && !key.isWellFormed()) flags |= REWRITE
    flags |= scan(o[key], depth)
  }
  return flags
}

function scanObject(o: object, depth: number): number {
  if (depth > MAX_DEPTH) return REFUSE
  const proto = Object.getPrototypeOf(o)
  if (proto === Object.prototype) {
    const raw = Object.hasOwn(o, '__proto__') || Object.hasOwn(o, 'constructor') ? REWRITE : 0
    return raw | scanKeys(o as Record<string, unknown>, depth, true)
  }
  if (proto === Array.prototype) {
    const a = o as unknown[]
    let flags = 0
    for (let i = 0; i < a.length; i++) {
      const v = a[i]
      if (v === undefined && !(i in a)) flags |= REWRITE
      else flags |= scan(v, depth)
    }
    return flags
  }
  if (proto === Date.prototype) return hasExtras(o) ? REFUSE : 0
  const model = modelOf(proto)
  if (model !== undefined) {
    // registering it adds its msgpack extension (a nested instance of a model used nowhere else yet)
    describeModel(model)
    return scanKeys(o as Record<string, unknown>, depth, false)
  }
  if (proto === Map.prototype) {
    let flags = hasExtras(o) ? REFUSE : 0
    for (const [k, v] of o as Map<unknown, unknown>) flags |= scan(k, depth) | scan(v, depth)
    return flags
  }
  if (proto === Set.prototype) {
    let flags = hasExtras(o) ? REFUSE : 0
    for (const v of o as Set<unknown>) flags |= scan(v, depth)
    return flags
  }
  if (proto === RegExp.prototype) return hasExtras(o) ? REFUSE : 0
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

/**
 * Checks a value before encoding: `'exact'` when msgpack keeps it as it is, `'rewrite'` when it must be
 * {@link rewrite}n first, `'refuse'` when it cannot be stored ({@link refusal} says why).
 */
export function checkValue(value: unknown): 'exact' | 'rewrite' | 'refuse' {
  const flags = scan(value, 0)
  return (flags & REFUSE) !== 0 ? 'refuse' : flags !== 0 ? 'rewrite' : 'exact'
}

function pathOf(parent: string, key: string): string {
  if (parent === '') return key
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${parent}.${key}` : `${parent}[${JSON.stringify(key)}]`
}

/** Why `value` at `path` cannot be stored, or `undefined` when it and everything in it can. */
function problem(value: unknown, path: string, ancestors: object[]): string | undefined {
  if (typeof value === 'function') return `\`${path}\` is a function (${show(value)}), which is not data`
  if (typeof value === 'symbol') return `\`${path}\` is a symbol (${show(value)}), which is not data`
  if (typeof value !== 'object' || value === null) return undefined
  if (ancestors.includes(value)) return `\`${path}\` refers back to an object that contains it (a cycle)`
  if (ancestors.length >= MAX_DEPTH) return `\`${path}\` is nested more than ${MAX_DEPTH} levels deep`
  const proto = Object.getPrototypeOf(value)
  const extras = droppedExtras(value, proto)
  if (extras !== undefined) return `\`${path}\` is ${extras}, which would not be stored with it`
  const children: [string, unknown][] = []
  if (proto === Object.prototype || proto === null || (proto !== undefined && modelOf(proto) !== undefined)) {
    for (const key of Object.keys(value)) children.push([pathOf(path, key), (value as Record<string, unknown>)[key]])
  } else if (proto === Array.prototype) {
    const a = value as unknown[]
    for (let i = 0; i < a.length; i++) if (i in a) children.push([`${path}[${i}]`, a[i]])
  } else if (proto === Map.prototype) {
    let i = 0
    for (const [k, v] of value as Map<unknown, unknown>) {
      children.push([`${path} (key of entry ${i++})`, k], [`${path}.get(${show(k).slice(1, -1)})`, v])
    }
  } else if (proto === Set.prototype) {
    let i = 0
    for (const v of value as Set<unknown>) children.push([`${path} (member ${i++})`, v])
  } else if (!(proto === Date.prototype || TYPED_PROTOTYPES.has(proto) || proto === ArrayBuffer.prototype || proto === RegExp.prototype)) {
    const name = (proto as { constructor?: { name?: string } }).constructor?.name || 'anonymous'
    return `\`${path}\` is an instance of class \`${name}\`, which is not a model: store plain data, or make it a model (static stockpyleKeys) so it comes back as one`
  }
  ancestors.push(value)
  try {
    for (const [childPath, child] of children) {
      const found = problem(child, childPath, ancestors)
      if (found !== undefined) return found
    }
  } finally {
    ancestors.pop()
  }
  return undefined
}

/** The error for a value {@link checkValue} refused, naming the path (model attributes at the top). */
export function refusal(value: unknown, context: string, cause?: unknown): SerializationError {
  const top = value !== null && typeof value === 'object' && modelOf(Object.getPrototypeOf(value) ?? {}) !== undefined
  let found: string | undefined
  try {
    found = top
      ? Object.keys(value).reduce<string | undefined>(
          (f, key) => f ?? problem((value as Record<string, unknown>)[key], key, [value]),
          undefined,
        )
      : problem(value, 'value', [])
  } catch {
    found = undefined
  }
  const reason = found ?? `the object cannot be encoded${cause instanceof Error ? ` (${cause.message})` : ''}`
  return new SerializationError(`${context}: ${reason}`, cause === undefined ? {} : { cause })
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
    a.forEach((v, i) => {
      items.push(i, rewrite(v))
    })
    return new SparseArray(a.length, items)
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
