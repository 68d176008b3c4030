import { KeyConflictError, show } from './errors.js'
import { keyOfObjectFor } from './key-encoding.js'
import type { KeyInfo, ModelInfo } from './registry.js'

/**
 * The alternate keys the objects of one batch put claim, so that two objects claiming one are refused
 * before anything is written: every declared key is unique, and a cache would otherwise keep the key
 * pointing to whichever object it wrote last (the database refuses such a batch with `E_KEY_CONFLICT`).
 * A store makes one only for a put of two objects or more; backfills, copies of what an authoritative
 * layer holds, are not checked.
 */
export class KeyClaims {
  /** Each alternate key (canonical, without a store's prefix) claimed so far → its object's record key. */
  readonly #owners = new Map<string, string>()

  /**
   * Claims `aliases` (canonical keys, without a store's prefix) for the object whose record key is
   * `record`. Returns the position in `aliases` of the first key another record claimed already,
   * `-1` when none was (the same object twice in a batch claims its keys once).
   */
  claim(record: string, aliases: readonly string[]): number {
    for (let a = 0; a < aliases.length; a++) {
      const alias = aliases[a] as string
      const owner = this.#owners.get(alias)
      if (owner === undefined) this.#owners.set(alias, record)
      else if (owner !== record) return a
    }
    return -1
  }

  /** The record key that claimed `alias` (see {@link claim}). */
  ownerOf(alias: string): string | undefined {
    return this.#owners.get(alias)
  }
}

/** One object of a batch put, as {@link keyConflict} needs it. */
export interface ClaimingItem {
  readonly obj: object
  readonly info: ModelInfo
}

/** An object's primary key as a lookup (`{id: 10}`), with its model's name. */
function describeItem(item: ClaimingItem): string {
  const source = item.obj as Record<string, unknown>
  const lookup = Object.fromEntries(item.info.primary.fields.map((f) => [f, source[f]]))
  return `\`${item.info.name}\` ${show(lookup)}`
}

/** Which declared key (of the object's model or an ancestor's) `alias` is, described as a lookup. */
function describeKey(item: ClaimingItem, alias: string): string {
  for (const model of item.info.lineage) {
    for (const spec of model.keys as readonly KeyInfo[]) {
      if (keyOfObjectFor(spec, item.obj) !== alias) continue
      const source = item.obj as Record<string, unknown>
      const lookup = show(Object.fromEntries(spec.fields.map((f) => [f, source[f]])))
      return model === item.info ? lookup : `${lookup} of model \`${model.name}\``
    }
  }
  return show(alias)
}

/**
 * The error for two objects of a batch put claiming one alternate key: `items[at]` claims `alias`
 * (canonical, without a store's prefix), which the earlier object whose record key is `owner` claimed.
 * Names the key and both objects' primary keys; `where` names the store and operation (`redis store put`).
 */
export function keyConflict(where: string, items: readonly ClaimingItem[], at: number, alias: string, owner: string): KeyConflictError {
  const item = items[at] as ClaimingItem
  const earlier = items.slice(0, at).find((other) => keyOfObjectFor(other.info.primary, other.obj) === owner)
  const first = earlier === undefined ? show(owner) : describeItem(earlier)
  return new KeyConflictError(
    `${where} of model \`${item.info.name}\`: two objects of the batch, ${first} and ${describeItem(item)}, claim the unique key ${describeKey(item, alias)}; nothing was written`,
  )
}
