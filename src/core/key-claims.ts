import { KeyConflictError, show } from './errors.js'
import { keyOfObjectFor } from './key-encoding.js'
import { primaryLookup } from './primary-lookup.js'
import type { KeyInfo, ModelInfo } from './registry.js'

/** One object of a batch put, as {@link keyConflict} needs it. */
export interface ClaimingItem {
  readonly obj: object
  readonly info: ModelInfo
}

/** An object's primary key as a lookup (`{id: 10}`), with its model's name. */
function describeItem(item: ClaimingItem): string {
  return `\`${item.info.name}\` ${show(primaryLookup(item.info, item.obj))}`
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
 * The error for two objects of a batch put claiming one alternate key (see {@link supersededCopies}):
 * `items[at]` claims `alias`
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
 * @throws KeyConflictError when the last copies of two records claim one alternate key, or one
 *   claims as an ancestor model's key (polymorphic) what is another's record key (see
 *   {@link keyConflict}; `where` names the store and operation, e.g. `redis store put`).
 */
export function supersededCopies(
  where: string,
  items: readonly (ClaimingItem & { readonly backfill?: boolean | undefined })[],
  keys: readonly BatchKeys[],
): Set<number> | undefined {
  if (items.length < 2) return undefined
  // each record key → the position of its last copy (a put's only)
  const last = new Map<string, number>()
  let puts = 0
  for (let i = 0; i < items.length; i++) {
    if ((items[i] as { backfill?: boolean }).backfill === true) continue
    puts++
    last.set((keys[i] as BatchKeys).record, i)
  }
  // every alternate key unique among the last copies (a record's first copy gives its place in the map)
  const owners = new Map<string, string>()
  for (const [record, at] of last) {
    const aliases = (keys[at] as BatchKeys).aliases
    // Only an ancestor model's key (a polymorphic store's alias: more aliases than the model's own
    // alternate keys) can be another object's record key.
    const ancestral = aliases.length >= (items[at] as ClaimingItem).info.keys.length
    for (const alias of aliases) {
      const owner = owners.get(alias)
      if (owner === undefined) owners.set(alias, record)
      else if (owner !== record) throw keyConflict(where, items, at, alias, owner)
      if (ancestral && alias !== record && last.has(alias)) throw keyConflict(where, items, at, alias, alias)
    }
  }
  if (last.size === puts) return undefined
  const superseded = new Set<number>()
  for (let i = 0; i < items.length; i++) {
    if ((items[i] as { backfill?: boolean }).backfill === true) continue
    if (last.get((keys[i] as BatchKeys).record) !== i) superseded.add(i)
  }
  return superseded
}
