import { createHash } from 'node:crypto'
import { InvalidKeyError, MissingKeyAttributeError, show, UnknownKeyError } from './errors.js'
import { escapeKeyText, type KeyInfo, type ModelInfo } from './registry.js'

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

function finish(key: string): string {
  if (key.length <= MAX_KEY_LENGTH) return key
  return `${key.slice(0, HEAD_KEEP)}#${createHash('sha256').update(key).digest('base64url')}`
}

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
  const fields = Object.keys(lookup)
  const spec = info.bySignature.get(fields.length === 1 ? (fields[0] as string) : fields.sort().join(','))
  if (spec === undefined) {
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
  return encodeSpec(spec, lookup as Record<string, unknown>, (field, value) => {
    throw invalidLookupValue(info, field, value, operation)
  })
}

function encodeSpec(spec: KeyInfo, source: Record<string, unknown>, fail: (field: string, value: unknown) => never): string {
  const fields = spec.fields
  if (fields.length === 1) {
    const field = fields[0] as string
    const value = source[field]
    const text = encodeValue(value)
    if (text === undefined) fail(field, value)
    return finish(spec.head + text)
  }
  let key = spec.head
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i] as string
    const value = source[field]
    const text = encodeValue(value)
    if (text === undefined) fail(field, value)
    key += `${i === 0 ? '' : '|'}${escapeKeyText(field)}=${text}`
  }
  return finish(key)
}

/** The keys an object is stored under. `record` holds the object; `aliases` point to it. */
export interface ObjectKeys {
  readonly record: string
  readonly aliases: string[]
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
 * and, when `polymorphic`, every key of every ancestor model.
 * @throws MissingKeyAttributeError / InvalidKeyError naming the attribute.
 */
export function keysOfObject(info: ModelInfo, obj: object, polymorphic: boolean, operation: string): ObjectKeys {
  const source = obj as Record<string, unknown>
  const fail = (field: string, value: unknown): never => missingAttribute(info, field, value, operation)
  const record = encodeSpec(info.primary, source, fail)
  const aliases: string[] = []
  const lineage = polymorphic ? info.lineage : [info]
  for (const model of lineage) {
    for (const spec of model.keys) {
      if (model === info && spec === info.primary) continue
      aliases.push(encodeSpec(spec, source, fail))
    }
  }
  return { record, aliases }
}

/** The canonical key of an object under one of its model's declared keys (used to verify alias hits). */
export function keyOfObjectFor(spec: KeyInfo, obj: object): string | undefined {
  let ok = true
  const key = encodeSpec(spec, obj as Record<string, unknown>, () => {
    ok = false
    return undefined as never
  })
  return ok ? key : undefined
}
