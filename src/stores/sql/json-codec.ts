import { SerializationError, show, UnknownModelError } from '../../core/errors.js'
import type { Model } from '../../core/model.js'
import { describeModel, modelByName } from '../../core/registry.js'

/**
 * Tagged JSON: how SqlStore keeps nested values in JSON/JSONB columns with the same type fidelity as
 * the cache layers, while the column stays ordinary JSON that SQL and other programs can read.
 *
 * Strings, booleans, `null`, finite numbers, arrays and plain objects are written as themselves. Every
 * other value becomes an object with exactly one key starting with `$`:
 *
 * | value | JSON |
 * |---|---|
 * | `Date` | `{"$date": "2024-01-02T03:04:05.678Z"}` (`null` for an invalid date) |
 * | `bigint` | `{"$bigint": "123"}` |
 * | `Map` | `{"$map": [[key, value], …]}` (keys and values tagged JSON, insertion order kept) |
 * | `Set` | `{"$set": [value, …]}` |
 * | `Uint8Array` | `{"$bytes": "<base64>"}` |
 * | `Buffer` | `{"$buffer": "<base64>"}` |
 * | other typed arrays | `{"$typed": ["Float64Array", "<base64>"]}` |
 * | `undefined` (also array holes) | `{"$undefined": 0}` |
 * | `NaN`, `±Infinity`, `-0` | `{"$number": "NaN" \| "Infinity" \| "-Infinity" \| "-0"}` |
 * | a model instance | `{"$model": ["TypeTag", {fields…}]}` (prototype restored from the registry on read) |
 * | a plain object with exactly one key, which starts with `$` | `{"$object": {…}}` (escape, so user data is never read as a tag) |
 *
 * Instances of classes that are not models are written as plain objects of their own enumerable
 * properties (as the cache codec does). Functions, symbols and cycles cannot be stored.
 */
export type TaggedJson = null | boolean | number | string | TaggedJson[] | { [key: string]: TaggedJson }

const TYPED_ARRAYS: Record<string, new (buffer: ArrayBuffer) => ArrayBufferView> = {
  Int8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
}

function tag(name: string, value: TaggedJson): { [key: string]: TaggedJson } {
  return { [name]: value }
}

function bytesToBase64(view: ArrayBufferView): string {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64')
}

function isModelInstance(value: object): boolean {
  const ctor = (value as { constructor?: unknown }).constructor
  return typeof ctor === 'function' && Array.isArray((ctor as unknown as Model).stockpyleKeys)
}

/** Writes `value` into `target[key]` without ever touching a prototype (`__proto__` stays data). */
function define(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
  else target[key] = value
}

class Encoder {
  readonly #path: object[] = []
  constructor(readonly where: string) {}

  encode(value: unknown): TaggedJson {
    switch (typeof value) {
      case 'string':
        if (!value.isWellFormed())
          throw new SerializationError(`${this.where} holds a string that is not well-formed UTF-16 ${show(value)}`)
        return value
      case 'boolean':
        return value
      case 'number':
        if (Number.isFinite(value)) return Object.is(value, -0) ? tag('$number', '-0') : value
        return tag('$number', String(value))
      case 'bigint':
        return tag('$bigint', value.toString())
      case 'undefined':
        return tag('$undefined', 0)
      case 'object':
        return value === null ? null : this.#object(value)
      default:
        throw new SerializationError(`${this.where} holds ${show(value)}, which cannot be stored: functions and symbols are not data`)
    }
  }

  #object(value: object): TaggedJson {
    if (this.#path.includes(value)) throw new SerializationError(`${this.where} holds a cycle, which a JSON column cannot store`)
    this.#path.push(value)
    try {
      return this.#inner(value)
    } finally {
      this.#path.pop()
    }
  }

  #inner(value: object): TaggedJson {
    if (Array.isArray(value)) {
      const out: TaggedJson[] = new Array(value.length)
      for (let i = 0; i < value.length; i++) out[i] = this.encode(value[i])
      return out
    }
    if (value instanceof Date) {
      const time = value.getTime()
      return tag('$date', Number.isNaN(time) ? null : value.toISOString())
    }
    if (value instanceof Map) {
      const entries: TaggedJson[] = []
      for (const [k, v] of value) entries.push([this.encode(k), this.encode(v)])
      return tag('$map', entries)
    }
    if (value instanceof Set) {
      const items: TaggedJson[] = []
      for (const v of value) items.push(this.encode(v))
      return tag('$set', items)
    }
    if (ArrayBuffer.isView(value)) {
      if (Buffer.isBuffer(value)) return tag('$buffer', bytesToBase64(value))
      const name = value.constructor.name
      if (name === 'Uint8Array') return tag('$bytes', bytesToBase64(value))
      if (TYPED_ARRAYS[name] !== undefined) return tag('$typed', [name, bytesToBase64(value)])
      throw new SerializationError(`${this.where} holds a ${name}, which a JSON column cannot store`)
    }
    const fields: { [key: string]: TaggedJson } = {}
    const keys = Object.keys(value)
    for (const key of keys) {
      if (!key.isWellFormed())
        throw new SerializationError(`${this.where} holds a property name that is not well-formed UTF-16 ${show(key)}`)
      define(fields, key, this.encode((value as Record<string, unknown>)[key]))
    }
    if (isModelInstance(value)) {
      const info = describeModel(value.constructor as unknown as Model)
      return tag('$model', [info.name, fields])
    }
    if (keys.length === 1 && (keys[0] as string).startsWith('$')) return tag('$object', fields)
    return fields
  }
}

/**
 * Encodes a value into tagged JSON (a JSON-compatible structure; `JSON.stringify` it for a text column).
 * `where` names the value in error messages (store, model, attribute).
 * @throws SerializationError for functions, symbols, cycles and strings that are not well-formed UTF-16.
 */
export function toTaggedJson(value: unknown, where: string): TaggedJson {
  try {
    return new Encoder(where).encode(value)
  } catch (err) {
    if (err instanceof RangeError) throw new SerializationError(`${where} is nested too deeply to store`, { cause: err })
    throw err
  }
}

function fromBase64(text: unknown, where: string): Buffer {
  if (typeof text !== 'string') throw new SerializationError(`${where} holds a malformed tagged JSON byte string ${show(text)}`)
  return Buffer.from(text, 'base64')
}

function decodeTag(name: string, body: unknown, where: string): { hit: true; value: unknown } | { hit: false } {
  switch (name) {
    case '$date':
      return { hit: true, value: new Date(typeof body === 'string' ? body : Number.NaN) }
    case '$bigint':
      if (typeof body !== 'string' || !/^-?\d+$/.test(body)) return { hit: false }
      return { hit: true, value: BigInt(body) }
    case '$map':
      if (!Array.isArray(body)) return { hit: false }
      return {
        hit: true,
        value: new Map(
          body.map((pair) => {
            if (!Array.isArray(pair) || pair.length !== 2)
              throw new SerializationError(`${where} holds a malformed $map entry ${show(pair)}`)
            return [fromTaggedJson(pair[0], where), fromTaggedJson(pair[1], where)]
          }),
        ),
      }
    case '$set':
      if (!Array.isArray(body)) return { hit: false }
      return { hit: true, value: new Set(body.map((v) => fromTaggedJson(v, where))) }
    case '$bytes':
      return { hit: true, value: new Uint8Array(fromBase64(body, where)) }
    case '$buffer':
      return { hit: true, value: fromBase64(body, where) }
    case '$typed': {
      if (!Array.isArray(body) || typeof body[0] !== 'string') return { hit: false }
      const Ctor = TYPED_ARRAYS[body[0]]
      if (Ctor === undefined) throw new SerializationError(`${where} holds an unknown typed array ${show(body[0])}`)
      const bytes = fromBase64(body[1], where)
      const copy = new ArrayBuffer(bytes.length)
      new Uint8Array(copy).set(bytes)
      return { hit: true, value: new Ctor(copy) }
    }
    case '$undefined':
      return { hit: true, value: undefined }
    case '$number':
      if (body === '-0') return { hit: true, value: -0 }
      if (body === 'NaN' || body === 'Infinity' || body === '-Infinity') return { hit: true, value: Number(body) }
      return { hit: false }
    case '$object':
      if (typeof body !== 'object' || body === null || Array.isArray(body)) return { hit: false }
      return { hit: true, value: decodeFields(body as Record<string, unknown>, {}, where) }
    case '$model': {
      if (!Array.isArray(body) || typeof body[0] !== 'string' || typeof body[1] !== 'object' || body[1] === null) return { hit: false }
      const info = modelByName(body[0])
      if (info === undefined) {
        throw new UnknownModelError(
          `${where} holds an object of model \`${body[0]}\`, which is not registered in this process: import it or call registerModel(${body[0]})`,
        )
      }
      return { hit: true, value: decodeFields(body[1] as Record<string, unknown>, Object.create(info.model.prototype), where) }
    }
    default:
      return { hit: false }
  }
}

function decodeFields(source: Record<string, unknown>, target: Record<string, unknown>, where: string): Record<string, unknown> {
  for (const key of Object.keys(source)) define(target, key, fromTaggedJson(source[key], where))
  return target
}

/**
 * Decodes tagged JSON (already parsed) back into values. A single-key `$…` object with an unknown tag
 * stays a plain object, so hand-written JSON never fails to read.
 * @throws UnknownModelError for a `$model` whose type tag is not registered; SerializationError for malformed tags.
 */
export function fromTaggedJson(value: unknown, where: string): unknown {
  if (typeof value !== 'object' || value === null) return value
  if (Array.isArray(value)) {
    const out: unknown[] = new Array(value.length)
    for (let i = 0; i < value.length; i++) out[i] = fromTaggedJson(value[i], where)
    return out
  }
  const record = value as Record<string, unknown>
  let only: string | undefined
  for (const key in record) {
    if (only !== undefined) {
      only = undefined
      break
    }
    only = key
  }
  if (only?.startsWith('$')) {
    const decoded = decodeTag(only, record[only], where)
    if (decoded.hit) return decoded.value
  }
  return decodeFields(record, {}, where)
}
