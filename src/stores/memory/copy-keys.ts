import type { LookupRequest } from '../../contracts/base-store.js'
import {
  isKeyValue,
  keyOfObjectFor,
  keyOfValue,
  keysOfObject,
  MAX_KEY_LENGTH,
  ObjectKeys,
  recordKeyOfCopy,
} from '../../core/key-encoding.js'
import { escapeKeyText, type KeyInfo, type ModelInfo } from '../../core/registry.js'
import { ALIAS_OVERHEAD } from './memory-record.js'

const NO_ALIASES: string[] = []

/**
 * The keys of a copy a store made (a backfill's): its record key, and its aliases made now or their
 * values `captured` to make later ({@link captureAliases}; `aliases` is then empty). A class: see ObjectKeys.
 */
export class CopyKeys extends ObjectKeys {
  constructor(
    record: string,
    aliases: string[],
    /** The copy's model. */
    readonly info: ModelInfo,
    /** The copy's alternate-key values to index later ({@link captureAliases}); `undefined` when `aliases` holds its keys. */
    readonly captured: unknown,
  ) {
    super(record, aliases)
  }
}

/**
 * The keys of `obj`, a copy of model `info` a store made: as keysOfObject's (`copy`), but with the
 * alternate-key values captured to index later where the model allows it (not `polymorphic`), and the
 * record key taken from `request`, the read that found the copy, when it is by this model's primary
 * key and holds the copy's values of it (the same canonical key, made and hashed once per read).
 * @throws MissingKeyAttributeError / InvalidKeyError naming the attribute.
 */
export function keysOfCopy(
  info: ModelInfo,
  obj: object,
  polymorphic: boolean,
  operation: string,
  request?: LookupRequest | undefined,
): CopyKeys {
  const captured = polymorphic ? undefined : captureAliases(info, obj)
  if (captured !== undefined) {
    return new CopyKeys(keyOfRequest(info, obj, request) ?? recordKeyOfCopy(info, obj, operation), NO_ALIASES, info, captured)
  }
  const keys = keysOfObject(info, obj, polymorphic, operation, true)
  return new CopyKeys(keys.record, keys.aliases, info, undefined)
}

/** The alternate keys of a copy (its aliases, made now from its captured values when it has them). */
export function aliasKeysOfCopy(keys: CopyKeys): readonly string[] {
  return keys.captured === undefined ? keys.aliases : aliasKeysOf(keys.info, keys.captured)
}

/** The canonical key of `request` when it is the record key of `obj` (see {@link keysOfCopy}). */
function keyOfRequest(info: ModelInfo, obj: object, request: LookupRequest | undefined): string | undefined {
  if (request === undefined || request.key === undefined || request.spec !== info.primary) return undefined
  const source = obj as Record<string, unknown>
  // (=== holds only for equal key values of one type, which make one canonical key; 0 and -0 make `n0`)
  for (const field of info.primary.fields) if (source[field] !== request.lookup[field]) return undefined
  return request.key
}

/**
 * The alternate-key values of `obj`, a copy of model `info` (not polymorphic) a store made, to index
 * later ({@link AliasIndex}): the value itself for a model whose one alternate key has one field, else
 * the values of every alternate key's fields, in the order of the model's keys and of their fields.
 * `undefined` when they must be indexed at once: the model has no alternate key, or a value is not a
 * key value (keysOfObject then throws the error that names it).
 */
export function captureAliases(info: ModelInfo, obj: object): unknown {
  const keys = info.keys
  if (keys.length === 1) return undefined
  const source = obj as Record<string, unknown>
  const single = singleAlias(info)
  if (single !== undefined) {
    const value = source[single.fields[0] as string]
    return isKeyValue(value) ? value : undefined
  }
  const values: unknown[] = []
  for (const spec of keys) {
    if (spec === info.primary) continue
    for (const field of spec.fields) {
      const value = source[field]
      if (!isKeyValue(value)) return undefined
      values.push(value)
    }
  }
  return values
}

/** The model's one alternate key when it is its only one and has one field (its values are captured bare). */
function singleAlias(info: ModelInfo): KeyInfo | undefined {
  const keys = info.keys
  if (keys.length !== 2) return undefined
  const spec = (keys[0] === info.primary ? keys[1] : keys[0]) as KeyInfo
  return spec.fields.length === 1 ? spec : undefined
}

/**
 * What a record's `captured` values (from {@link captureAliases}) count against a store's `maxSize`
 * until its aliases are made: what the aliases would hold if escaping left every string as long as it
 * is — more than the values hold meanwhile. Strings are counted by their length, not read: reading a
 * freshly decoded string costs as much as escaping it.
 */
export function sizeOfCaptured(info: ModelInfo | undefined, captured: unknown): number {
  if (info === undefined || captured === undefined) return 0
  const single = singleAlias(info)
  if (single !== undefined) return Math.min(single.head.length + lengthOfValue(captured), MAX_KEY_LENGTH) + ALIAS_OVERHEAD
  const values = captured as unknown[]
  let size = 0
  let at = 0
  for (const spec of info.keys) {
    if (spec === info.primary) continue
    let length = spec.head.length
    for (const field of spec.fields) {
      // `field=value`, joined by `|`, after a composite key's head
      length += (spec.fields.length === 1 ? 0 : escapeKeyText(field).length + 2) + lengthOfValue(values[at++])
    }
    size += Math.min(length, MAX_KEY_LENGTH) + ALIAS_OVERHEAD
  }
  return size
}

/** The length of a key value's text in a key (its type tag and text), a string's before escaping. */
function lengthOfValue(value: unknown): number {
  switch (typeof value) {
    case 'string':
      return 1 + value.length
    case 'boolean':
      return 1
    default:
      return value === 0 ? 2 : 1 + String(value).length
  }
}

/** The alias keys of `captured` (from {@link captureAliases}), in the order of the model's keys. */
export function aliasKeysOf(info: ModelInfo, captured: unknown): string[] {
  const single = singleAlias(info)
  if (single !== undefined) return [keyOfValue(single, captured)]
  const values = captured as unknown[]
  const aliases: string[] = []
  let at = 0
  for (const spec of info.keys) {
    if (spec === info.primary) continue
    const fields: Record<string, unknown> = {}
    for (const field of spec.fields) fields[field] = values[at++]
    aliases.push(keyOfObjectFor(spec, fields) as string)
  }
  return aliases
}
