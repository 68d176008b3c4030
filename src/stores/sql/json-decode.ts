import { SerializationError, show, UnknownModelError } from '../../core/errors.js'
import { modelByName } from '../../core/registry.js'

/**
 * Reading tagged JSON (the format ./json-codec.ts describes and writes) back into values.
 */

/** The typed arrays (and `DataView`) a `$typed` tag names, by constructor name. */
export const TYPED_ARRAYS: Readonly<Record<string, new (buffer: ArrayBuffer) => ArrayBufferView>> = {
  DataView,
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

/** Makes `key` an own data property of `target`, whatever its prototype has under that name (no setter runs). */
function defineData(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
}

/** Writes `value` into `target[key]`, a plain object, without ever touching a prototype (`__proto__` stays data). */
export function define(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') defineData(target, key, value)
  else target[key] = value
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
    case '$utf16': {
      const bytes = fromBase64(body, where)
      if (bytes.length % 2 !== 0) throw new SerializationError(`${where} holds a malformed $utf16 string ${show(body)}`)
      return { hit: true, value: bytes.toString('utf16le') }
    }
    case '$raw': {
      if (!Array.isArray(body) || typeof body[0] !== 'boolean' || !Array.isArray(body[1])) return { hit: false }
      const out: Record<string, unknown> = body[0] ? Object.create(null) : {}
      for (const pair of body[1] as unknown[]) {
        const key = Array.isArray(pair) && pair.length === 2 ? fromTaggedJson(pair[0], where) : undefined
        if (typeof key !== 'string') throw new SerializationError(`${where} holds a malformed $raw entry ${show(pair)}`)
        define(out, key, fromTaggedJson((pair as unknown[])[1], where))
      }
      return { hit: true, value: out }
    }
    case '$regexp': {
      // the source is a string, or a $utf16 tag (one holding a lone surrogate or U+0000)
      if (!Array.isArray(body) || typeof body[1] !== 'string') return { hit: false }
      const source = typeof body[0] === 'object' && body[0] !== null ? fromTaggedJson(body[0], where) : body[0]
      if (typeof source !== 'string') return { hit: false }
      try {
        return { hit: true, value: new RegExp(source, body[1]) }
      } catch (err) {
        throw new SerializationError(`${where} holds a malformed $regexp ${show(body)}`, { cause: err })
      }
    }
    case '$sparse':
      if (!Array.isArray(body) || body.length !== 2 || !Array.isArray(body[1])) return { hit: false }
      return { hit: true, value: sparseArray(body[0], body[1], where) }
    case '$arraybuffer': {
      const bytes = fromBase64(body, where)
      const copy = new ArrayBuffer(bytes.length)
      new Uint8Array(copy).set(bytes)
      return { hit: true, value: copy }
    }
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
      // a model's class may have an accessor or a read-only property of an attribute's name
      const instance = Object.create(info.model.prototype) as object
      const fields = body[1] as Record<string, unknown>
      for (const key of Object.keys(fields)) defineData(instance, key, fromTaggedJson(fields[key], where))
      return { hit: true, value: instance }
    }
    default:
      return { hit: false }
  }
}

/** The array a `$sparse` tag holds: `length` and its elements as `[index, value]` pairs. */
function sparseArray(length: unknown, pairs: unknown[], where: string): unknown[] {
  const malformed = () => new SerializationError(`${where} holds a malformed $sparse array ${show([length, pairs])}`)
  if (!Number.isSafeInteger(length) || (length as number) < 0 || (length as number) > 2 ** 32 - 1) throw malformed()
  const out: unknown[] = []
  out.length = length as number
  for (const pair of pairs) {
    if (!Array.isArray(pair) || pair.length !== 2) throw malformed()
    const index: unknown = pair[0]
    if (!Number.isSafeInteger(index) || (index as number) < 0 || (index as number) >= (length as number)) throw malformed()
    out[index as number] = fromTaggedJson(pair[1], where)
  }
  return out
}

function isHole(item: unknown): boolean {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) return false
  let count = 0
  for (const key in item) if (++count > 1 || key !== '$hole') return false
  return count === 1
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
    for (let i = 0; i < value.length; i++) if (!isHole(value[i])) out[i] = fromTaggedJson(value[i], where)
    return out
  }
  const record = value as Record<string, unknown>
  const only = soleTagKey(record)
  if (only !== undefined) {
    const decoded = decodeTag(only, record[only], where)
    if (decoded.hit) return decoded.value
  }
  return decodeFields(record, {}, where)
}

/**
 * {@link fromTaggedJson} for a value the caller has just parsed and owns: arrays and plain objects are
 * decoded in place (only tagged values are replaced), so reading a JSON column allocates nothing but
 * what the parse did. Never pass a value that is shared.
 * @throws as {@link fromTaggedJson}.
 */
export function fromParsedJson(value: unknown, where: string): unknown {
  if (typeof value !== 'object' || value === null) return value
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item = value[i]
      if (typeof item !== 'object' || item === null) continue
      // a hole of a sparse array comes back as a hole, as fromTaggedJson makes it
      if (isHole(item)) delete value[i]
      else value[i] = fromParsedJson(item, where)
    }
    return value
  }
  const record = value as Record<string, unknown>
  const only = soleTagKey(record)
  if (only !== undefined) {
    const decoded = decodeTag(only, record[only], where)
    if (decoded.hit) return decoded.value
  }
  if (Object.getPrototypeOf(record) !== Object.prototype) return decodeFields(record, {}, where)
  for (const key of Object.keys(record)) {
    const item = record[key]
    if (typeof item !== 'object' || item === null) continue
    const decoded = fromParsedJson(item, where)
    if (decoded !== item) define(record, key, decoded)
  }
  return record
}

/** The key of an object whose only own enumerable key starts with `$` (a possible tag), else `undefined`. */
function soleTagKey(record: Record<string, unknown>): string | undefined {
  let only: string | undefined
  for (const key in record) {
    if (only !== undefined) return undefined
    only = key
  }
  return only?.startsWith('$') === true ? only : undefined
}
