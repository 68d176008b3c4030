import type { WriteItem } from '../contracts/base-store.js'
import { MissingKeyAttributeError, show } from '../core/errors.js'
import { type BatchKeys, supersededCopies } from '../core/key-claims.js'
import { keysOfObject } from '../core/key-encoding.js'
import type { KeyInfo, ModelInfo } from '../core/registry.js'
import { checkEncodable } from '../core/value-refusal.js'

/**
 * Every check a chain's layers would make of a put's items, before the first write: keys complete
 * (unless the database fills the primary key: `generatesKeys`) and values encodable (checked, not
 * encoded: the caches encode after the database write, which may change the objects). A chain of one
 * layer (`last` 0) leaves the checks to it. With a `polymorphic` cache layer the keys include every
 * ancestor model's (which that layer needs), and a batch in which two objects claim one key — an
 * ancestor model's too — is refused as that layer would refuse it, before the database holds it.
 * @param name the chain, named in errors.
 * @throws MissingKeyAttributeError, InvalidKeyError or SerializationError naming the chain;
 *   KeyConflictError (with a `polymorphic` cache layer) naming the key and both objects.
 */
export function checkWritable(items: readonly WriteItem[], name: string, last: number, generatesKeys: boolean, polymorphic = false): void {
  if (last === 0) return
  // (made only for a batch through a polymorphic layer: a chain's other puts allocate nothing more)
  const claims: BatchKeys[] | undefined = polymorphic && items.length > 1 ? [] : undefined
  const claiming: WriteItem[] | undefined = claims === undefined ? undefined : []
  for (const item of items) {
    const { obj, info } = item
    try {
      const keys = keysOfObject(info, obj, polymorphic, `${name} store put`)
      if (claims !== undefined) {
        claims.push(keys)
        claiming?.push(item)
      }
    } catch (err) {
      if (!(generatesKeys && err instanceof MissingKeyAttributeError)) throw err
      if (!missingOnlyPrimary(info, obj, polymorphic)) {
        // The primary key may be the database's to fill; name the attribute that is really missing.
        const field = missingAlternate(info, obj, polymorphic)
        if (field === undefined) throw err
        throw new MissingKeyAttributeError(
          `${name} store put of model \`${info.name}\` got an object without key attribute \`${field}\` (${show((obj as Record<string, unknown>)[field])}); only the primary key may be left for the database to generate`,
        )
      }
    }
    checkEncodable(obj, `${name} store put`)
  }
  // (an object whose primary key the database fills claims no key the others could know yet)
  if (claims !== undefined && claiming !== undefined) supersededCopies(`${name} store put`, claiming, claims)
}

/**
 * The key specs other than the primary key an object of `info` is stored under: its model's, and with
 * `polymorphic` its ancestors' (an ancestor key on the primary key's own fields is filled with it).
 */
function otherKeys(info: ModelInfo, polymorphic: boolean): KeyInfo[] {
  const own = info.primary.fields
  const out: KeyInfo[] = []
  for (const model of polymorphic ? info.lineage : [info])
    for (const spec of model.keys) if (spec !== info.primary && !spec.fields.every((f) => own.includes(f))) out.push(spec)
  return out
}

function missingAlternate(info: ModelInfo, obj: object, polymorphic: boolean): string | undefined {
  const source = obj as Record<string, unknown>
  for (const spec of otherKeys(info, polymorphic)) {
    for (const f of spec.fields) if (source[f] === undefined || source[f] === null) return f
  }
  return undefined
}

function missingOnlyPrimary(info: ModelInfo, obj: object, polymorphic: boolean): boolean {
  const source = obj as Record<string, unknown>
  if (!info.primary.fields.some((f) => source[f] === undefined || source[f] === null)) return false
  return missingAlternate(info, obj, polymorphic) === undefined
}
