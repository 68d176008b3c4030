import { KeyConflictError, show } from './errors.js'
import { keyOfObjectFor } from './key-encoding.js'
import type { KeyInfo, ModelInfo } from './registry.js'

/**
 * The alternate keys the objects of one batch put claim, so that two objects claiming one are refused
 * before anything is written: every declared key is unique, and a cache would otherwise keep the key
 * pointing to whichever object it wrote last (the database refuses such a batch with `E_KEY_CONFLICT`).
 * An object put twice in one batch claims the keys of its last copy only (the last copy wins, as in
 * the database: `[User(30, 'e1'), User(30, 'e2'), User(31, 'e1')]` is no conflict). A store makes one
 * only for a put of two objects or more; backfills, copies of what an authoritative layer holds, are
 * not checked.
 */
export class KeyClaims {
  /** Each record key of the batch → the alternate keys of its last copy and that copy's position. */
  readonly #last = new Map<string, { readonly aliases: readonly string[]; readonly at: number }>()

  /**
   * Notes that the object at position `at` of the batch, whose record key is `record`, claims `aliases`
   * (canonical keys, without a store's prefix); a later copy of the same record replaces its claims.
   */
  claim(record: string, aliases: readonly string[], at: number): void {
    this.#last.set(record, { aliases, at })
  }

  /**
   * The first alternate key two records of the batch claim: the position of the later claimant, the
   * key, and the record key of the one that claimed it first; `undefined` when there is none.
   */
  conflict(): { readonly at: number; readonly alias: string; readonly owner: string } | undefined {
    const owners = new Map<string, string>()
    for (const [record, { aliases, at }] of this.#last) {
      for (const alias of aliases) {
        const owner = owners.get(alias)
        if (owner === undefined) owners.set(alias, record)
        else if (owner !== record) return { at, alias, owner }
      }
    }
    return undefined
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
 * (canonical, without a store's prefix), which the object whose record key is `owner` claimed.
 * Names the key and both objects' primary keys; `where` names the store and operation (`redis store put`).
 */
export function keyConflict(where: string, items: readonly ClaimingItem[], at: number, alias: string, owner: string): KeyConflictError {
  const item = items[at] as ClaimingItem
  const earlier = items.findLast((other) => keyOfObjectFor(other.info.primary, other.obj) === owner)
  const first = earlier === undefined ? show(owner) : describeItem(earlier)
  return new KeyConflictError(
    `${where} of model \`${item.info.name}\`: two objects of the batch, ${first} and ${describeItem(item)}, claim the unique key ${describeKey(item, alias)}; nothing was written`,
  )
}

/** An object's keys as {@link supersededCopies} needs them (an `ObjectKeys`). */
export interface BatchKeys {
  readonly record: string
  readonly aliases: readonly string[]
}

/**
 * Plans a batch put of `items` whose keys are `keys` (one per item, canonical): the positions of the
 * copies a later copy of the same record replaces (the last copy wins: a store writes only it, so an
 * earlier copy's alternate keys cannot point at the record, or take a key the last copies give to
 * another object), or `undefined` when none is. Backfills (`backfill: true`) are neither planned nor
 * checked: they are copies of what an authoritative layer holds. A put of one object costs nothing.
 * @throws KeyConflictError when the last copies of two records claim one alternate key (see
 *   {@link keyConflict}; `where` names the store and operation, e.g. `redis store put`).
 */
export function supersededCopies(
  where: string,
  items: readonly (ClaimingItem & { readonly backfill?: boolean | undefined })[],
  keys: readonly BatchKeys[],
): Set<number> | undefined {
  if (items.length < 2) return undefined
  let last: Map<string, number> | undefined
  let claims: KeyClaims | undefined
  for (let i = 0; i < items.length; i++) {
    if ((items[i] as { backfill?: boolean }).backfill === true) continue
    const k = keys[i] as BatchKeys
    ;(last ??= new Map()).set(k.record, i)
    if (k.aliases.length > 0) (claims ??= new KeyClaims()).claim(k.record, k.aliases, i)
  }
  const conflict = claims?.conflict()
  if (conflict !== undefined) throw keyConflict(where, items, conflict.at, conflict.alias, conflict.owner)
  if (last === undefined || last.size === items.length) return undefined
  let superseded: Set<number> | undefined
  for (let i = 0; i < items.length; i++) {
    if ((items[i] as { backfill?: boolean }).backfill === true) continue
    if (last.get((keys[i] as BatchKeys).record) !== i) (superseded ??= new Set()).add(i)
  }
  return superseded
}
