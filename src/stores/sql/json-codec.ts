import { SerializationError, StockpyleError, show } from '../../core/errors.js'
import { checkValue, droppedExtras, MAX_DEPTH } from '../../core/exact-values.js'
import type { Model } from '../../core/model.js'
import { describeModel } from '../../core/registry.js'
import { indicesFrom, tooSparse } from '../../core/sparse-arrays.js'
import { messageOf } from '../../core/unavailable-unless-ours.js'
import { tooLargeText } from '../../core/value-limits.js'
import { valueProblem } from '../../core/value-refusal.js'
import { define, TYPED_ARRAYS } from './json-decode.js'

export { fromParsedJson, fromTaggedJson } from './json-decode.js'

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
 * | a hole of an array with few holes | `{"$hole": 0}` |
 * | an array with more than 1,024 holes and more holes than elements (./sparse-arrays.ts) | `{"$sparse": [length, [[index, value], …]]}` |
 * | a string that is not well-formed UTF-16 or holds U+0000 (which PostgreSQL `jsonb` refuses) | `{"$utf16": "<base64 of its UTF-16LE code units>"}` |
 * | a plain object with a `null` prototype, or with a key `$utf16` would carry | `{"$raw": [nullPrototype, [[key, value], …]]}` |
 * | `RegExp` | `{"$regexp": [source, flags]}` (a source that is not well-formed or holds U+0000 as a `$utf16` tag) |
 * | `ArrayBuffer` | `{"$arraybuffer": "<base64>"}` |
 * | `NaN`, `±Infinity`, `-0` | `{"$number": "NaN" \| "Infinity" \| "-Infinity" \| "-0"}` |
 * | a model instance | `{"$model": ["TypeTag", {fields…}]}` (prototype restored on read, fields own data properties) |
 * | a plain object with exactly one key, which starts with `$` | `{"$object": {…}}` (escape, so user data is never read as a tag) |
 *
 * Own `__proto__` and `constructor` keys are ordinary data both ways. Functions, symbols, cycles and
 * instances of classes that are not models (and boxed primitives) cannot be stored, as in the cache
 * codec, nor can a value past the bounds of core/value-limits.ts once expanded (an object reached
 * twice is written twice, and comes back as two equal copies). PostgreSQL `jsonb` keeps object keys in its own order (shorter first), so a plain object read
 * from a `jsonb` column has the same entries in another order; `json` and SQLite keep the order.
 */
export type TaggedJson = null | boolean | number | string | TaggedJson[] | { [key: string]: TaggedJson }

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

/** Objects, or elements, an encoding meets before it checks the value's size (core/value-limits.ts). */
const PROBE_OBJECTS = 65_536
const PROBE_ELEMENTS = 1_048_576

function label(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`
}

class Encoder {
  readonly #path: object[] = []
  /**
   * Where in the attribute the encoder is, for messages: an array index, a property name, or a function
   * giving the label (`.get("k")`); made into text (`.prefs.get("k")[2]`) only when a message needs it.
   */
  readonly #at: (number | string | (() => string))[] = []
  /** Objects and elements (array slots, properties, entries) met so far, a shared one each time it is reached. */
  #objects = 0
  #elements = 0
  /** Whether the value was found within the bounds of core/value-limits.ts. */
  #bounded = false

  /**
   * Counts `n` more elements, and once the value has turned out large, checks it against the bounds
   * of core/value-limits.ts with the cache codec's scan: faster than encoding on (a value expanding
   * to 2^n objects is refused in a fraction of a second), and the same bounds as the caches'. Small
   * values (the common case) are never scanned.
   * @throws SerializationError for a value past the bounds.
   */
  #count(n: number): void {
    this.#elements += n
    if (this.#bounded || (this.#elements < PROBE_ELEMENTS && this.#objects < PROBE_OBJECTS)) return
    const found = checkValue(this.root)
    if (typeof found === 'object') throw new SerializationError(`${this.where} ${tooLargeText(found.containers)}`)
    this.#bounded = true
  }

  #child(label: number | string | (() => string), value: unknown): TaggedJson {
    this.#at.push(label)
    const out = this.encode(value)
    this.#at.pop()
    return out
  }

  #fail(what: string): SerializationError {
    const at = this.#at.map((part) => (typeof part === 'number' ? `[${part}]` : typeof part === 'string' ? label(part) : part())).join('')
    return new SerializationError(`${this.where}${at === '' ? '' : ` at \`${at.replace(/^\./, '')}\``} ${what}`)
  }
  constructor(
    /** The value to encode. */
    readonly root: unknown,
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
    this.#objects++
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
    if (proto === Array.prototype) return this.#array(value as unknown[])
    if (proto === Date.prototype) {
      const time = (value as Date).getTime()
      return tag('$date', Number.isNaN(time) ? null : (value as Date).toISOString())
    }
    if (proto === Map.prototype) {
      const entries: TaggedJson[] = []
      this.#count((value as Map<unknown, unknown>).size)
      for (const [k, v] of value as Map<unknown, unknown>) {
        const label = () => `.get(${show(k).slice(1, -1)})`
        entries.push([this.#child(() => `${label()} (key)`, k), this.#child(label, v)])
      }
      return tag('$map', entries)
    }
    if (proto === Set.prototype) {
      const items: TaggedJson[] = []
      this.#count((value as Set<unknown>).size)
      for (const v of value as Set<unknown>) {
        const member = items.length
        items.push(this.#child(() => ` (member ${member})`, v))
      }
      return tag('$set', items)
    }
    if (proto === RegExp.prototype) return tag('$regexp', [this.encode((value as RegExp).source), (value as RegExp).flags])
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
    this.#count(keys.length)
    if (!model && (proto === null || keys.some(needsUtf16))) {
      const pairs: TaggedJson[] = keys.map((key) => [this.encode(key), this.#child(key, (value as Record<string, unknown>)[key])])
      return tag('$raw', [proto === null, pairs])
    }
    const fields: { [key: string]: TaggedJson } = {}
    for (const key of keys) {
      if (needsUtf16(key)) throw this.#fail(`holds a model attribute name a JSON column cannot store ${show(key)}`)
      define(fields, key, this.#child(key, (value as Record<string, unknown>)[key]))
    }
    if (model) {
      const info = describeModel((proto as { constructor: Model }).constructor)
      return tag('$model', [info.name, fields])
    }
    if (keys.length === 1 && (keys[0] as string).startsWith('$')) return tag('$object', fields)
    return fields
  }

  /** An array: as a JSON array (a hole as `{"$hole": 0}`), or `$sparse` once holes outnumber its elements (core/sparse-arrays.ts). */
  #array(a: unknown[]): TaggedJson {
    const out: TaggedJson[] = []
    let holes = 0
    for (let i = 0; i < a.length; i++) {
      this.#count(1)
      if (i in a) out.push(this.#child(i, a[i]))
      else if (tooSparse(++holes, i + 1)) return this.#sparse(a, out, i)
      else out.push(tag('$hole', 0))
    }
    return out
  }

  /** The `$sparse` form of `a`, whose slots below `upTo` are encoded in `head` (a hole at `upTo`). */
  #sparse(a: unknown[], head: readonly TaggedJson[], upTo: number): TaggedJson {
    const pairs: TaggedJson[] = []
    for (let i = 0; i < upTo; i++) if (i in a) pairs.push([i, head[i] as TaggedJson])
    const rest = indicesFrom(a, upTo + 1)
    this.#count(rest.length)
    for (const i of rest) pairs.push([i, this.#child(i, a[i])])
    return tag('$sparse', [a.length, pairs])
  }
}

/**
 * Encodes a value into tagged JSON (a JSON-compatible structure; `JSON.stringify` it for a text column).
 * `where` names the value in error messages (store, model, attribute).
 * @throws SerializationError for functions, symbols, cycles, instances of classes that are not models,
 *   values nested more than 256 levels deep (`value` itself is level 1), and values past the bounds of
 *   core/value-limits.ts once expanded (an object reached twice is written twice), as the cache codec refuses them.
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
    return new Encoder(value, where, enclosing).encode(value)
  } catch (err) {
    if (err instanceof StockpyleError) throw err
    if (err instanceof RangeError && /call stack/i.test(err.message)) {
      throw new SerializationError(`${where} is nested too deeply to store`, { cause: err })
    }
    throw unreadable(value, where, enclosing, err)
  }
}

/**
 * The error for a value whose encoding threw an error of its own (a getter, a Proxy's trap): where a
 * second walk finds the read that throws, and that read's error as the cause.
 */
function unreadable(value: unknown, where: string, enclosing: number, err: unknown): SerializationError {
  const found = valueProblem(value, enclosing)
  if (found === undefined)
    return new SerializationError(`${where} could not be encoded: reading it threw (${messageOf(err)})`, { cause: err })
  const at = found.path.replace(/^\./, '')
  return new SerializationError(`${where}${at === '' ? '' : ` at \`${at}\``} ${found.what}`, { cause: found.cause ?? err })
}
