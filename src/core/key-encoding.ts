import { createHash } from 'node:crypto'
import { InvalidKeyError, MissingKeyAttributeError, show, UnknownKeyError } from './errors.js'
import { escapeKeyText, type KeyInfo, type ModelInfo, modelByKeyText, SIGNATURE_SEPARATOR } from './registry.js'

/**
 * Canonical keys: `Model|field=<tag><value>` for a single key, `Model|a=<tag><value>|b=<tag><value>`
 * (fields sorted) for a composite one. Tags: `s` string, `n` number, `i` bigint, `t`/`f` boolean.
 * Text is percent-escaped, so keys hold no spaces, control characters or non-ASCII bytes; keys longer
 * than {@link MAX_KEY_LENGTH} keep a readable head and end in `#` + a SHA-256 digest. The same lookup
 * gives the same key in every process and on every machine, whatever the field order.
 */
export const MAX_KEY_LENGTH = 200

const HEAD_KEEP = MAX_KEY_LENGTH - 44

/** Encodes one key value with its type tag. Returns `undefined` when the value cannot be a key. */
function encodeValue(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return value.isWellFormed() ? `s${escapeKeyText(value)}` : undefined
    case 'number':
      if (!Number.isFinite(value)) return undefined
      return value === 0 ? 'n0' : `n${value}`
    case 'bigint':
      return `i${value}`
    case 'boolean':
      return value ? 't' : 'f'
    default:
      return undefined
  }
}

/**
 * `key` itself when short enough, else its head, `#` and its SHA-256 digest as one flat string of
 * {@link MAX_KEY_LENGTH} characters: `key.slice` would make a string that points into the whole key and
 * keeps it alive (a memory store holds its alias keys for long and counts them by their length). Keys
 * are ASCII (escaped text), so latin1 copies them exactly.
 */
function finish(key: string): string {
  if (key.length <= MAX_KEY_LENGTH) return key
  const out = Buffer.allocUnsafe(MAX_KEY_LENGTH)
  out.write(key, 0, HEAD_KEEP, 'latin1')
  out[HEAD_KEEP] = HASH_MARK
  out.write(createHash('sha256').update(key).digest('base64url'), HEAD_KEEP + 1, 'latin1')
  return out.toString('latin1')
}

const HASH_MARK = '#'.charCodeAt(0)

function invalidLookupValue(info: ModelInfo, field: string, value: unknown, operation: string): InvalidKeyError {
  return new InvalidKeyError(
    `${operation} of model \`${info.name}\` got an invalid value ${show(value)} for key field \`${field}\`: key values are strings (well-formed), finite numbers, bigints or booleans`,
  )
}

/** The key spec a lookup addresses. @throws UnknownKeyError when its field set is not exactly one declared key. */
export function keyForLookup(info: ModelInfo, lookup: unknown, operation: string): KeyInfo {
  if (typeof lookup !== 'object' || lookup === null || Array.isArray(lookup)) {
    throw new UnknownKeyError(
      `${operation} of model \`${info.name}\` got ${show(lookup)} as a lookup: a lookup is an object holding exactly one declared key`,
    )
  }
  // The common lookup has one field: find it without allocating an array of keys.
  let only: string | undefined
  let count = 0
  for (const field in lookup) {
    if (!Object.hasOwn(lookup, field)) continue
    only = field
    if (++count > 1) break
  }
  let spec = count === 1 ? info.bySignature.get(only as string) : info.bySignature.get(Object.keys(lookup).sort().join(SIGNATURE_SEPARATOR))
  // one field named like a composite key's signature ('a\u0000b') is not that key
  if (count === 1 && spec !== undefined && spec.fields.length !== 1) spec = undefined
  if (spec === undefined) {
    const fields = Object.keys(lookup)
    throw new UnknownKeyError(
      `${operation} of model \`${info.name}\` got a lookup with fields ${show(fields)}, which match none of its keys ${show(info.keys.map((k) => k.fields))}`,
    )
  }
  return spec
}

/**
 * The canonical key of a lookup. @throws UnknownKeyError for a wrong field set,
 * InvalidKeyError for a value that cannot be a key.
 */
export function encodeLookup(info: ModelInfo, lookup: unknown, operation: string): string {
  const spec = keyForLookup(info, lookup, operation)
  const source = lookup as Record<string, unknown>
  const key = tryEncodeSpec(spec, source)
  if (key !== undefined) return key
  const field = firstInvalid(spec, source)
  throw invalidLookupValue(info, field, source[field], operation)
}

/** The key of `source` under `spec`, or `undefined` when a field holds no valid key value (no allocation but the key). */
function tryEncodeSpec(spec: KeyInfo, source: Record<string, unknown>): string | undefined {
  const fields = spec.fields
  if (fields.length === 1) {
    const text = encodeValue(source[fields[0] as string])
    return text === undefined ? undefined : finish(spec.head + text)
  }
  let key = spec.head
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i] as string
    const text = encodeValue(source[field])
    if (text === undefined) return undefined
    key += `${i === 0 ? '' : '|'}${escapeKeyText(field)}=${text}`
  }
  return finish(key)
}

/** Whether `value` can be a key value (a well-formed string, a finite number, a bigint or a boolean). */
export function isKeyValue(value: unknown): boolean {
  switch (typeof value) {
    case 'string':
      return value.isWellFormed()
    case 'number':
      return Number.isFinite(value)
    case 'bigint':
    case 'boolean':
      return true
    default:
      return false
  }
}

/** The canonical key of a single-field key `spec` whose value is `value`, a key value ({@link isKeyValue}). */
export function keyOfValue(spec: KeyInfo, value: unknown): string {
  return finish(spec.head + (encodeValue(value) as string))
}

/** The first field of `spec` whose value in `source` is not a key value (the error path). */
function firstInvalid(spec: KeyInfo, source: Record<string, unknown>): string {
  return spec.fields.find((f) => encodeValue(source[f]) === undefined) as string
}

/**
 * The keys an object is stored under. `record` holds the object; `aliases` point to it. A class, not
 * an object literal, so that V8 never allocates it in the old generation (contracts/batch-records.ts).
 */
export class ObjectKeys {
  constructor(
    readonly record: string,
    readonly aliases: string[],
  ) {}
}

const isEnumerableOwn = Object.prototype.propertyIsEnumerable

/**
 * Whether `field` is an own enumerable attribute of `obj`: what every store keeps of an object. A key
 * attribute served by a getter of the class, or a non-enumerable one, would not be stored with the
 * object (a store would hand it back without its key, and SqlStore would let the database generate one).
 */
export function isOwnAttribute(obj: object, field: string): boolean {
  return isEnumerableOwn.call(obj, field)
}

/**
 * The error for a key attribute that is not an own enumerable attribute (`where` names the store's
 * operation and the model, e.g. ``memory store put of model `User` ``).
 */
export function notOwnKeyAttribute(where: string, field: string): MissingKeyAttributeError {
  return new MissingKeyAttributeError(
    `${where} got an object whose key attribute \`${field}\` is not an own enumerable attribute (a getter of its class, or a non-enumerable property): stores keep an object's own enumerable attributes, so its key would not be stored with it`,
  )
}

function missingAttribute(info: ModelInfo, field: string, value: unknown, operation: string): never {
  if (value === undefined || value === null) {
    throw new MissingKeyAttributeError(
      `${operation} of model \`${info.name}\` got an object without key attribute \`${field}\` (${show(value)})`,
    )
  }
  throw new InvalidKeyError(
    `${operation} of model \`${info.name}\` got an object whose key attribute \`${field}\` holds ${show(value)}: key values are strings (well-formed), finite numbers, bigints or booleans`,
  )
}

/**
 * Every key an object is stored under: its own model's primary key (the record), its alternate keys
 * and, when `polymorphic`, every key of every ancestor model. `copy`: the object is a copy a store
 * made (a backfill's, decoded or built from a row), whose attributes are own data properties: its key
 * attributes are not checked to be own enumerable ones ({@link isOwnAttribute}) again.
 * @throws MissingKeyAttributeError / InvalidKeyError naming the attribute.
 */
export function keysOfObject(info: ModelInfo, obj: object, polymorphic: boolean, operation: string, copy = false): ObjectKeys {
  const source = obj as Record<string, unknown>
  if (!copy) checkOwnKeys(info, source, polymorphic, operation)
  const record = objectKey(info, info.primary, source, operation)
  if (!polymorphic) {
    // Sized at once: a literal grown by push allocates room for 16 more, and a memory store keeps
    // every object's aliases.
    const keys = info.keys
    const aliases: string[] = new Array(keys.length - 1)
    for (let i = 0, a = 0; i < keys.length; i++)
      if (keys[i] !== info.primary) aliases[a++] = objectKey(info, keys[i] as KeyInfo, source, operation)
    return new ObjectKeys(record, aliases)
  }
  const aliases: string[] = []
  for (const model of info.lineage) {
    for (const spec of model.keys) {
      if (model === info && spec === info.primary) continue
      aliases.push(objectKey(info, spec, source, operation))
    }
  }
  return new ObjectKeys(record, aliases)
}

/** Checks that every key attribute present on `source` is an own enumerable one. @throws MissingKeyAttributeError. */
function checkOwnKeys(info: ModelInfo, source: Record<string, unknown>, polymorphic: boolean, operation: string): void {
  for (const model of polymorphic ? info.lineage : [info]) {
    for (const spec of model.keys) {
      for (const field of spec.fields) {
        if (source[field] !== undefined && !isEnumerableOwn.call(source, field)) {
          throw notOwnKeyAttribute(`${operation} of model \`${info.name}\``, field)
        }
      }
    }
  }
}

function objectKey(info: ModelInfo, spec: KeyInfo, source: Record<string, unknown>, operation: string): string {
  const key = tryEncodeSpec(spec, source)
  if (key !== undefined) return key
  const field = firstInvalid(spec, source)
  return missingAttribute(info, field, source[field], operation)
}

/**
 * The record key of `obj`, a copy a store made (see {@link keysOfObject}): its own model's primary key.
 * @throws MissingKeyAttributeError / InvalidKeyError naming the attribute.
 */
export function recordKeyOfCopy(info: ModelInfo, obj: object, operation: string): string {
  return objectKey(info, info.primary, obj as Record<string, unknown>, operation)
}

/**
 * Whether canonical key `key` is, by its text alone, certainly a key of the primary key of a registered
 * model (the record key its objects are held under where a store is not polymorphic). `false` when it
 * may be an alternate key: another key's text, a model not registered in this process, or a long key
 * whose cut head does not tell which key it is (see {@link MAX_KEY_LENGTH}).
 */
export function isPrimaryKeyText(key: string): boolean {
  const bar = key.indexOf('|')
  const info = bar < 0 ? undefined : modelByKeyText(key.slice(0, bar))
  // escaped text holds no `#`: a key holding one was cut to a head and a digest
  if (info === undefined || key.includes('#')) return false
  const { head, fields } = info.primary
  if (!key.startsWith(head)) return false
  // a single key's value holds no `|`; a composite key's fields are `field=value`, joined by `|`
  if (fields.length === 1) return !key.includes('|', head.length)
  const parts = key.slice(head.length).split('|')
  return parts.length === fields.length && parts.every((part, i) => part.startsWith(`${escapeKeyText(fields[i] as string)}=`))
}

/** The canonical key of an object under one of its model's declared keys (used to verify alias hits). */
export function keyOfObjectFor(spec: KeyInfo, obj: object): string | undefined {
  return tryEncodeSpec(spec, obj as Record<string, unknown>)
}
