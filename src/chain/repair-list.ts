import { encodeLookup } from '../core/key-encoding.js'
import type { Model } from '../core/model.js'
import { primaryLookup } from '../core/primary-lookup.js'
import { describeModel, describeObject } from '../core/registry.js'
import type { Repair } from './layer-guard-options.js'
import { lineageKeys } from './lineage-keys.js'

/**
 * The repairs awaiting one cache layer (objects and lookups whose copy there may be stale), oldest
 * first, one per object, and the canonical keys whose reads they block. {@link LayerGuard} drains it.
 */
export class RepairList {
  readonly #pending = new Map<string, Repair>()
  /** Canonical key → number of pending repairs blocking it. */
  readonly #blocked = new Map<string, number>()
  #seq = 0
  /** Keep each object (a layer without `batchInvalidate` is repaired by `batchDelete`). */
  readonly #keepObjects: boolean

  constructor(keepObjects: boolean) {
    this.#keepObjects = keepObjects
  }

  /** Repairs pending. */
  get size(): number {
    return this.#pending.size
  }

  /** The counter of the last repair added (see {@link Repair.seq}). */
  get seq(): number {
    return this.#seq
  }

  /** True while some key is blocked. */
  get blocking(): boolean {
    return this.#blocked.size > 0
  }

  /** Whether a pending repair blocks any key of `obj`. */
  blocks(obj: object): boolean {
    for (const key of lineageKeys(obj)) if (this.#blocked.has(key)) return true
    return false
  }

  /** Adds objects (skipping what is not a model's object); each blocks every key of the object. */
  addObjects(objs: readonly object[]): void {
    for (const obj of objs) {
      let model: Model
      let lookup: Record<string, unknown>
      try {
        const info = describeObject(obj)
        model = info.model
        lookup = primaryLookup(info, obj)
      } catch {
        continue
      }
      this.#add(model, lookup, obj, lineageKeys(obj))
    }
  }

  /** Adds lookups; each blocks reads of its own key only. */
  addLookups(model: Model, lookups: readonly object[]): void {
    for (const lookup of lookups) this.#add(model, lookup as Record<string, unknown>, undefined, undefined)
  }

  /** Adds one repair, replacing an older one of the same object; `blocks`: default the lookup's own key. */
  #add(model: Model, lookup: Record<string, unknown>, obj: object | undefined, blocks: readonly string[] | undefined): void {
    let id: string
    try {
      id = encodeLookup(describeModel(model), lookup, 'repair')
    } catch {
      return
    }
    const previous = this.#pending.get(id)
    if (previous !== undefined) {
      this.#pending.delete(id)
      this.#unblock(previous)
    }
    const repair: Repair = {
      model,
      lookup,
      obj: this.#keepObjects ? obj : undefined,
      blocks: blocks === undefined ? [id] : [...new Set([id, ...blocks])],
      seq: ++this.#seq,
      at: Date.now(),
    }
    this.#pending.set(id, repair)
    for (const key of repair.blocks) this.#blocked.set(key, (this.#blocked.get(key) ?? 0) + 1)
  }

  /** The oldest `count` repairs, with their ids. */
  first(count: number): [string, Repair][] {
    const batch: [string, Repair][] = []
    for (const entry of this.#pending) {
      batch.push(entry)
      if (batch.length >= count) break
    }
    return batch
  }

  /**
   * A repair taken by {@link first} was sent: removed and its keys unblocked when `applied`, else moved
   * behind the others. False when it had been replaced meanwhile (a newer repair of the object stays).
   */
  settle(id: string, repair: Repair, applied: boolean): boolean {
    if (this.#pending.get(id) !== repair) return false
    this.#pending.delete(id)
    if (applied) this.#unblock(repair)
    else this.#pending.set(id, repair)
    return true
  }

  /** Removes every repair added up to `seq` (a clear that began after them covered them). */
  dropUpTo(seq: number): void {
    for (const [id, repair] of this.#pending) {
      if (repair.seq > seq) continue
      this.#pending.delete(id)
      this.#unblock(repair)
    }
  }

  /** Forgets every repair. */
  clear(): void {
    this.#pending.clear()
    this.#blocked.clear()
  }

  #unblock(repair: Repair): void {
    for (const key of repair.blocks) {
      const n = (this.#blocked.get(key) ?? 1) - 1
      if (n <= 0) this.#blocked.delete(key)
      else this.#blocked.set(key, n)
    }
  }
}
