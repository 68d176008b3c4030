import { DuplicateModelError, show, UnknownModelError } from './errors.js'
import type { KeySpec, Model } from './model.js'

/**
 * Joins the sorted fields of a composite key into its signature (how a lookup's field set finds its
 * key): a character no attribute name of a key may hold, so `'a,b'` and `['a', 'b']` stay two keys.
 */
export const SIGNATURE_SEPARATOR = '\u0000'
/** One declared unique key of a model, as stockpyle uses it at runtime. */
export interface KeyInfo {
  /** Attribute names, sorted. */
  readonly fields: readonly string[]
  /** The sorted field names joined with U+0000 ({@link SIGNATURE_SEPARATOR}): how a lookup's field set is matched to this key. */
  readonly signature: string
  /** Position in the model's declaration; 0 is the primary key. */
  readonly index: number
  /** The canonical key's leading text for this key: `Model|field=` (single) or `Model|` (composite). */
  readonly head: string
}

/** What stockpyle knows about a model class. */
export interface ModelInfo {
  readonly model: Model
  /** The type tag: own `stockpyleName`, else the class name. */
  readonly name: string
  /** `stockpyleVersion`, default 0. */
  readonly version: number
  readonly keys: readonly KeyInfo[]
  readonly primary: KeyInfo
  readonly bySignature: ReadonlyMap<string, KeyInfo>
  /** This model followed by each ancestor that is a model, nearest first (for polymorphic stores). */
  readonly lineage: readonly ModelInfo[]
}

const infos = new WeakMap<object, ModelInfo>()
const byName = new Map<string, ModelInfo>()
/** The registered models by their name as it leads their canonical keys (escaped, see escapeKeyText). */
const byKeyText = new Map<string, ModelInfo>()
const listeners: ((info: ModelInfo) => void)[] = []

/**
 * Escapes a name or string so that a canonical key has no spaces, control characters, `|` or `=`:
 * `A–Z a–z 0–9 _ . ~ -` stay, every other character becomes the `%XX` (uppercase) of its UTF-8 bytes —
 * exactly `encodeURIComponent` with `! ' ( ) *` escaped as well. `text` must be well-formed.
 */
export function escapeKeyText(text: string): string {
  const length = text.length
  let out = ''
  let start = 0
  for (let i = 0; i < length; i++) {
    const code = text.charCodeAt(i)
    if (code < 128) {
      if (SAFE_ASCII[code] === 1) continue
      // Most escaped text (an email address) has one or two ASCII marks: slicing around them is several
      // times faster than encodeURIComponent on the strings a decoder hands out (slices of its input).
      out += text.slice(start, i) + (ASCII_ESCAPES[code] as string)
      start = i + 1
      continue
    }
    const encoded = encodeURIComponent(text)
    // it leaves these five as they are
    return MARKS.test(encoded) ? encoded.replace(MARKS_ALL, (c) => ASCII_ESCAPES[c.charCodeAt(0)] as string) : encoded
  }
  return start === 0 ? text : out + text.slice(start)
}
const MARKS = /[!'()*]/
const MARKS_ALL = /[!'()*]/g
const SAFE_ASCII = new Uint8Array(128)
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.~-') SAFE_ASCII[c.charCodeAt(0)] = 1
const ASCII_ESCAPES = Array.from({ length: 128 }, (_, c) => `%${c.toString(16).toUpperCase().padStart(2, '0')}`)

function normaliseSpecs(model: Model, name: string): KeySpec[] {
  const specs = model.stockpyleKeys
  if (!Array.isArray(specs) || specs.length === 0) {
    throw new UnknownModelError(`Model \`${name}\` declares no keys: static stockpyleKeys must be a non-empty array`)
  }
  return specs as KeySpec[]
}

function buildInfo(model: Model): ModelInfo {
  const ownName = Object.hasOwn(model, 'stockpyleName') ? model.stockpyleName : (model as unknown as { name: string }).name
  if (typeof ownName !== 'string' || ownName.length === 0) {
    throw new UnknownModelError(`A model class has no name: declare static stockpyleName on it (keys ${show(model.stockpyleKeys)})`)
  }
  const name = ownName
  if (!name.isWellFormed()) {
    throw new UnknownModelError(
      `The type tag ${show(name)} is not well-formed UTF-16 (it holds a lone surrogate), so no cache key can name its model: declare a static stockpyleName without one on class ${show((model as unknown as { name: string }).name)}`,
    )
  }
  const version = model.stockpyleVersion ?? 0
  if (!Number.isSafeInteger(version)) {
    throw new UnknownModelError(`Model \`${name}\` has an invalid stockpyleVersion ${show(version)}: it must be an integer`)
  }
  const seen = new Set<string>()
  const keyInfos = normaliseSpecs(model, name).map((spec, index): KeyInfo => {
    const fields = typeof spec === 'string' ? [spec] : [...spec]
    if (
      fields.length === 0 ||
      fields.some((f) => typeof f !== 'string' || f.length === 0 || f.includes(SIGNATURE_SEPARATOR)) ||
      new Set(fields).size !== fields.length
    ) {
      throw new UnknownModelError(
        `Model \`${name}\` declares an invalid key ${show(spec)}: a key is a non-empty attribute name (without U+0000) or tuple of distinct names`,
      )
    }
    const illFormed = fields.find((f) => !f.isWellFormed())
    if (illFormed !== undefined) {
      throw new UnknownModelError(
        `Model \`${name}\` declares the key attribute ${show(illFormed)}, which is not well-formed UTF-16 (it holds a lone surrogate), so no cache key can name it: rename the attribute`,
      )
    }
    fields.sort()
    const signature = fields.join(SIGNATURE_SEPARATOR)
    if (seen.has(signature)) throw new UnknownModelError(`Model \`${name}\` declares the key ${show(spec)} twice`)
    seen.add(signature)
    const modelText = escapeKeyText(name)
    const head = fields.length === 1 ? `${modelText}|${escapeKeyText(fields[0] as string)}=` : `${modelText}|`
    return { fields, signature, index, head }
  })
  const primary = keyInfos[0] as KeyInfo
  const lineage: ModelInfo[] = []
  const info: ModelInfo = {
    model,
    name,
    version,
    keys: keyInfos,
    primary,
    bySignature: new Map(keyInfos.map((k) => [k.signature, k])),
    lineage,
  }
  lineage.push(info)
  for (let parent = Object.getPrototypeOf(model); parent && parent !== Function.prototype; parent = Object.getPrototypeOf(parent)) {
    if (Array.isArray((parent as Model).stockpyleKeys)) lineage.push(describeModel(parent as Model))
  }
  return info
}

/**
 * Returns (and on first sight registers) the runtime description of a model class.
 * @throws UnknownModelError when `model` is not a class with a valid `stockpyleKeys`.
 * @throws DuplicateModelError when another class already registered the same `stockpyleName`.
 */
export function describeModel(model: Model): ModelInfo {
  const known = infos.get(model)
  if (known !== undefined) return known
  if (typeof model !== 'function' || !Array.isArray((model as Model).stockpyleKeys)) {
    throw new UnknownModelError(`${show(model)} is not a model: a model is a class with a static stockpyleKeys array`)
  }
  const info = buildInfo(model)
  const other = byName.get(info.name)
  if (other !== undefined && other.model !== model) {
    throw new DuplicateModelError(
      `Model name \`${info.name}\` is already used by another class (the registered one ${describeClass(other.model)}; this one ${describeClass(model)}): give one of them a distinct static stockpyleName`,
    )
  }
  infos.set(model, info)
  byName.set(info.name, info)
  byKeyText.set(escapeKeyText(info.name), info)
  for (const listener of listeners) listener(info)
  return info
}

/**
 * {@link describeModel} for a call named `where` (`app store get`): a class that is not a model, or
 * claims another class's name, is refused with the registry's error worded after that call (see
 * {@link modelErrorIn}). For a model it costs what `describeModel` costs: the message is built only
 * when it fails.
 * @throws UnknownModelError / DuplicateModelError whose message starts with `where`.
 */
export function describeModelIn(model: Model, where: string): ModelInfo {
  const known = infos.get(model)
  if (known !== undefined) return known
  try {
    return describeModel(model)
  } catch (err) {
    throw modelErrorIn(err, where)
  }
}

/**
 * A model error met by the call `where` (`app store get`): an `UnknownModelError` or
 * `DuplicateModelError` of the same class whose message starts with `where`, the registry's error as
 * its `cause`; any other error as it is.
 */
export function modelErrorIn(err: unknown, where: string): unknown {
  if (err instanceof UnknownModelError) return new UnknownModelError(`${where}: ${err.message}`, { cause: err })
  if (err instanceof DuplicateModelError) return new DuplicateModelError(`${where}: ${err.message}`, { cause: err })
  return err
}

/** What tells two classes of one name apart: the class it extends and its keys. */
function describeClass(model: Model): string {
  const parent = Object.getPrototypeOf(model) as { name?: unknown } | null
  const base =
    parent === Function.prototype || typeof parent?.name !== 'string' || parent.name === ''
      ? 'extends no class'
      : `extends \`${parent.name}\``
  return `${base}, keys ${JSON.stringify(model.stockpyleKeys)}`
}

/**
 * Registers model classes ahead of use, so that a process can decode objects of a class it has not
 * stored itself (a polymorphic `get(Vehicle, …)` that finds a `Car`).
 */
export function registerModel(...models: Model[]): void {
  for (const model of models) describeModel(model)
}

/** The registered model with this type tag, or `undefined`. */
export function modelByName(name: string): ModelInfo | undefined {
  return byName.get(name)
}

/** The registered model whose canonical keys begin with `text` and `|` (its escaped name), or `undefined`. */
export function modelByKeyText(text: string): ModelInfo | undefined {
  return byKeyText.get(text)
}

/** @internal called for every model registered, including those registered before the call. */
export function onModelRegistered(listener: (info: ModelInfo) => void): void {
  listeners.push(listener)
  for (const info of byName.values()) listener(info)
}

/** The model info of an object's class. @throws UnknownModelError when its class is not a model. */
export function describeObject(obj: object): ModelInfo {
  if (typeof obj !== 'object' || obj === null) {
    throw new UnknownModelError(`${show(obj)} is not an object of a model class`)
  }
  // the prototype's constructor: an own attribute named `constructor` is data, not the class
  const ctor = (Object.getPrototypeOf(obj) as { constructor?: unknown } | null)?.constructor
  if (typeof ctor !== 'function' || !Array.isArray((ctor as unknown as Model).stockpyleKeys)) {
    throw new UnknownModelError(`${show(obj)} is not an instance of a model: its class has no static stockpyleKeys`)
  }
  return describeModel(ctor as unknown as Model)
}
