import type { WriteItem } from '../contracts/base-store.js'
import { MissingKeyAttributeError, show } from '../core/errors.js'
import { keysOfObject } from '../core/key-encoding.js'
import type { ModelInfo } from '../core/registry.js'
import { checkEncodable } from '../core/value-refusal.js'

/**
 * Every check a chain's layers would make of a put's items, before the first write: keys complete
 * (unless the database fills the primary key: `generatesKeys`) and values encodable (checked, not
 * encoded: the caches encode after the database write, which may change the objects). A chain of one
 * layer (`last` 0) leaves the checks to it.
 * @param name the chain, named in errors.
 * @throws MissingKeyAttributeError, InvalidKeyError or SerializationError naming the chain.
 */
export function checkWritable(items: readonly WriteItem[], name: string, last: number, generatesKeys: boolean): void {
  if (last === 0) return
  for (const { obj, info } of items) {
    try {
      keysOfObject(info, obj, false, `${name} store put`)
    } catch (err) {
      if (!(generatesKeys && err instanceof MissingKeyAttributeError)) throw err
      if (!missingOnlyPrimary(info, obj)) {
        // The primary key may be the database's to fill; name the attribute that is really missing.
        const field = missingAlternate(info, obj)
        if (field === undefined) throw err
        throw new MissingKeyAttributeError(
          `${name} store put of model \`${info.name}\` got an object without key attribute \`${field}\` (${show((obj as Record<string, unknown>)[field])}); only the primary key may be left for the database to generate`,
        )
      }
    }
    checkEncodable(obj, `${name} store put`)
  }
}

function missingAlternate(info: ModelInfo, obj: object): string | undefined {
  const source = obj as Record<string, unknown>
  for (const spec of info.keys) {
    if (spec === info.primary) continue
    for (const f of spec.fields) if (source[f] === undefined || source[f] === null) return f
  }
  return undefined
}

function missingOnlyPrimary(info: ModelInfo, obj: object): boolean {
  const source = obj as Record<string, unknown>
  if (!info.primary.fields.some((f) => source[f] === undefined || source[f] === null)) return false
  for (const spec of info.keys) {
    if (spec === info.primary) continue
    for (const f of spec.fields) if (source[f] === undefined || source[f] === null) return false
  }
  return true
}
