import { SerializationError, show, UnknownModelError } from '../../core/errors.js'
import { droppedExtras, MAX_DEPTH } from '../../core/exact-values.js'
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
 * | other typed arrays, `DataView` | `{"$typed": ["Float64Array", "<base64>"]}` |
 * | `undefined` | `{"$undefined": 0}` |
 * | a hole of a sparse array | `{"$hole": 0}` |
 * | a string that is not well-formed UTF-16 or holds U+0000 (which PostgreSQL `jsonb` refuses) | `{"$utf16": "<base64 of its UTF-16LE code units>"}` |
 * | a plain object with a `null` prototype, or with a key `$utf16` would carry | `{"$raw": [nullPrototype, [[key, value], …]]}` |
 * | `RegExp` | `{"$regexp": [source, flags]}` |
 * | `ArrayBuffer` | `{"$arraybuffer": "<base64>"}` |
 * | `NaN`, `±Infinity`, `-0` | `{"$number": "NaN" \| "Infinity" \| "-Infinity" \| "-0"}` |
 * | a model instance | `{"$model": ["TypeTag", {fields…}]}` (prototype restored on read, fields own data properties) |
 * | a plain object with exactly one key, which starts with `$` | `{"$object": {…}}` (escape, so user data is never read as a tag) |
 *
 * Own `__proto__` and `constructor` keys are ordinary data both ways. Functions, symbols, cycles and
 * instances of classes that are not models (and boxed primitives) cannot be stored, as in the cache
 * codec. PostgreSQL `jsonb` keeps object keys in its own order (shorter first), so a plain object read
 * from a `jsonb` column has the same entries in another order; `json` and SQLite keep the order.
 */
export type TaggedJson = null | boolean | number | string | TaggedJson[] | { [key: string]: TaggedJson }

const TYPED_ARRAYS: Record<string, new (buffer: ArrayBuffer) => ArrayBufferView> = {
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

function tag(name: string, value: TaggedJson): { [key: string]: TaggedJson } {
  return { [name]: value }
}

function bytesToBase64(view: ArrayBufferView): string {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64')
}

function isModelPrototype(proto: object | null): boolean {
  const ctor = (proto as { constructor?: unknown } | null)?.constructor
  return typeof ctor === 'function' && Array.isArray((ctor as unknown as Model).stockpyleKeys)
}

/** Strings a JSON column cannot carry as themselves: ill-formed UTF-16, or U+0000 (refused by PostgreSQL jsonb). */
function needsUtf16(text: string): boolean {
  return !text.isWellFormed() || text.includes('\0')
}

const PLAIN_PROTOTYPES = new Set<object | null>([Object.prototype, null])

/** Makes `key` an own data property of `target`, whatever its prototype has under that name (no setter runs). */
function defineData(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
}

/** Writes `value` into `target[key]`, a plain object, without ever touching a prototype (`__proto__` stays data). */
function define(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') defineData(target, key, value)
  else target[key] = value
}

function label(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`
}

class Encoder {
  readonly #path: object[] = []
  /** Where in the attribute the encoder is (`.prefs.get("k")[2]`), for messages. */
  readonly #at: string[] = []

  #child(label: string, value: unknown): TaggedJson {
    this.#at.push(label)
    const out = this.encode(value)
    this.#at.pop()
    return out
  }

  #fail(what: string): SerializationError {
    const at = this.#at.join('')
    return new SerializationError(`${this.where}${at === '' ? '' : ` at \`${at.replace(/^\./, '')}\``} ${what}`)
  }
  constructor(
    readonly where: string,
    /** Objects around the value encoded, counted toward {@link MAX_DEPTH} (1 for a model attribute: the instance). */
    readonly enclosing: number,
  ) {}

  encode(value: unknown): TaggedJson {
    switch (typeof value) {
      case 'string':
        return needsUtf16(value) ? tag('$utf16', Buffer.from(value, 'utf16le').toString('base64')) : value
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
        throw this.#fail(`holds ${show(value)}, which cannot be stored: functions and symbols are not data`)
    }
  }

  #object(value: object): TaggedJson {
    if (this.#path.includes(value)) throw this.#fail('holds a cycle, which a JSON column cannot store')
    if (this.enclosing + this.#path.length >= MAX_DEPTH) throw this.#fail(`is nested more than ${MAX_DEPTH} levels deep`)
    this.#path.push(value)
    try {
      return this.#inner(value)
    } finally {
      this.#path.pop()
    }
  }

  #inner(value: object): TaggedJson {
    const proto = Object.getPrototypeOf(value)
    if (droppedExtras(value, proto) !== undefined) throw this.#fail(`is ${droppedExtras(value, proto)}, which would not be stored with it`)
    if (proto === Array.prototype) {
      const a = value as unknown[]
      const out: TaggedJson[] = new Array(a.length)
      for (let i = 0; i < a.length; i++) out[i] = i in a ? this.#child(`[${i}]`, a[i]) : tag('$hole', 0)
      return out
    }
    if (proto === Date.prototype) {
      const time = (value as Date).getTime()
      return tag('$date', Number.isNaN(time) ? null : (value as Date).toISOString())
    }
    if (proto === Map.prototype) {
      const entries: TaggedJson[] = []
      for (const [k, v] of value as Map<unknown, unknown>) {
        const label = `.get(${show(k).slice(1, -1)})`
        entries.push([this.#child(`${label} (key)`, k), this.#child(label, v)])
      }
      return tag('$map', entries)
    }
    if (proto === Set.prototype) {
      const items: TaggedJson[] = []
      for (const v of value as Set<unknown>) items.push(this.#child(` (member ${items.length})`, v))
      return tag('$set', items)
    }
    if (proto === RegExp.prototype) return tag('$regexp', [(value as RegExp).source, (value as RegExp).flags])
    if (proto === ArrayBuffer.prototype) return tag('$arraybuffer', Buffer.from(value as ArrayBuffer).toString('base64'))
    if (ArrayBuffer.isView(value)) {
      if (proto === Buffer.prototype) return tag('$buffer', bytesToBase64(value))
      if (proto === Uint8Array.prototype) return tag('$bytes', bytesToBase64(value))
      const name = value.constructor.name
      if (TYPED_ARRAYS[name]?.prototype === proto) return tag('$typed', [name, bytesToBase64(value)])
    }
    const model = isModelPrototype(proto)
    if (!model && !PLAIN_PROTOTYPES.has(proto)) {
      const name = (proto as { constructor?: { name?: string } } | null)?.constructor?.name || 'anonymous'
      throw this.#fail(
        `holds an instance of class \`${name}\`, which is not a model: store plain data, or make it a model (static stockpyleKeys)`,
      )
    }
    const keys = Object.keys(value)
    if (!model && (proto === null || keys.some(needsUtf16))) {
      const pairs: TaggedJson[] = keys.map((key) => [this.encode(key), this.#child(label(key), (value as Record<string, unknown>)[key])])
      return tag('$raw', [proto === null, pairs])
    }
    const fields: { [key: string]: TaggedJson } = {}
    for (const key of keys) {
      if (needsUtf16(key)) throw this.#fail(`holds a model attribute name a JSON column cannot store ${show(key)}`)
      define(fields, key, this.#child(label(key), (value as Record<string, unknown>)[key]))
    }
    if (model) {
      const info = describeModel((proto as { constructor: Model }).constructor)
      return tag('$model', [info.name, fields])
    }
    if (keys.length === 1 && (keys[0] as string).startsWith('$')) return tag('$object', fields)
    return fields
  }
}

/**
 * Encodes a value into tagged JSON (a JSON-compatible structure; `JSON.stringify` it for a text column).
 * `where` names the value in error messages (store, model, attribute).
 * @throws SerializationError for functions, symbols, cycles, instances of classes that are not models,
 *   and values nested more than 256 levels deep (`value` itself is level 1), as the cache codec refuses them.
 */
export function toTaggedJson(value: unknown, where: string): TaggedJson {
  return encode(value, where, 0)
}

/**
 * {@link toTaggedJson} for the value of a model attribute: the instance that holds it counts as the
 * first level, as in the cache codec, so a chain's caches accept every value a JSON column accepts.
 * @throws as {@link toTaggedJson}.
 */
export function attributeToTaggedJson(value: unknown, where: string): TaggedJson {
  return encode(value, where, 1)
}

function encode(value: unknown, where: string, enclosing: number): TaggedJson {
  try {
    return new Encoder(where, enclosing).encode(value)
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
    case '$regexp':
      if (!Array.isArray(body) || typeof body[0] !== 'string' || typeof body[1] !== 'string') return { hit: false }
      try {
        return { hit: true, value: new RegExp(body[0], body[1]) }
      } catch (err) {
        throw new SerializationError(`${where} holds a malformed $regexp ${show(body)}`, { cause: err })
      }
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
