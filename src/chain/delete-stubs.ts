import type { LookupRequest, WriteItem } from '../contracts/base-store.js'
import { KeyRequest } from '../contracts/batch-records.js'
import { MissingKeyAttributeError } from '../core/errors.js'
import { encodeLookup, keysOfObject } from '../core/key-encoding.js'
import type { Model } from '../core/model.js'
import { isPartialFailure } from '../core/partial-failure.js'
import { describeModel, type ModelInfo } from '../core/registry.js'
import type { LayerCalls } from './layer-calls.js'
import type { LayerGuard } from './layer-guard.js'

/**
 * What a delete's objects leave to the caches: `whole` objects (every key attribute set: each cache
 * removes them under every key) and, per model, the primary-key lookups of the stubs — objects that
 * carry their primary key but not every alternate key attribute. The authoritative layer deletes a
 * stub by its primary key; a cache cannot remove it under keys it does not know, so it is removed by
 * key (the chain's delete) or dropped by its primary key (a transaction's delete, a clean-up).
 */
export interface DeleteStubs<T> {
  readonly whole: T[]
  readonly stubs: Map<ModelInfo, KeyRequest[]>
}

/**
 * Checks a delete's items before anything is written (keys the caches could not use are refused, as a
 * put's are) and splits off the stubs; `undefined` when there are none. Also for a chain of one layer:
 * a stub is then deleted by key there too, whatever that layer's own delete accepts.
 * @throws MissingKeyAttributeError for an object without its primary key; InvalidKeyError for a key
 *   attribute that holds a value no key can hold — naming the chain.
 */
export function checkDeletable(items: readonly WriteItem[], name: string): DeleteStubs<WriteItem> | undefined {
  const operation = `${name} store delete`
  let split: DeleteStubs<WriteItem> | undefined
  for (let k = 0; k < items.length; k++) {
    const item = items[k] as WriteItem
    const lookup = stubLookup(item.info, item.obj, operation)
    if (lookup === undefined) {
      split?.whole.push(item)
      continue
    }
    split ??= { whole: items.slice(0, k) as WriteItem[], stubs: new Map() }
    addStub(split.stubs, item.info, lookup)
  }
  return split
}

/**
 * {@link checkDeletable} for objects already written (a transaction's deletes, a failed write's
 * clean-up): splits off the stubs without throwing (an object whose keys fail otherwise counts as
 * whole: its layer reports it); `undefined` when there are none.
 */
export function splitStubs(objs: readonly object[]): DeleteStubs<object> | undefined {
  let split: DeleteStubs<object> | undefined
  for (let k = 0; k < objs.length; k++) {
    const obj = objs[k] as object
    let info: ModelInfo
    let lookup: Record<string, unknown> | undefined
    try {
      info = describeModel((Object.getPrototypeOf(obj) as { constructor: Model }).constructor)
      lookup = stubLookup(info, obj, 'chain delete')
    } catch {
      lookup = undefined
    }
    if (lookup === undefined) {
      split?.whole.push(obj)
      continue
    }
    split ??= { whole: objs.slice(0, k) as object[], stubs: new Map() }
    addStub(split.stubs, info!, lookup)
  }
  return split
}

/** The primary-key lookup of `obj` when it is a stub; `undefined` when every key attribute is set. */
function stubLookup(info: ModelInfo, obj: object, operation: string): Record<string, unknown> | undefined {
  try {
    keysOfObject(info, obj, false, operation)
    return undefined
  } catch (err) {
    if (!(err instanceof MissingKeyAttributeError)) throw err
    const source = obj as Record<string, unknown>
    const lookup: Record<string, unknown> = {}
    for (const field of info.primary.fields) {
      const value = source[field]
      // the primary key missing too (keysOfObject named it: it is made first)
      if (value === undefined || value === null || !Object.prototype.propertyIsEnumerable.call(source, field)) throw err
      lookup[field] = value
    }
    encodeLookup(info, lookup, operation)
    return lookup
  }
}

function addStub(stubs: Map<ModelInfo, KeyRequest[]>, info: ModelInfo, lookup: Record<string, unknown>): void {
  let requests = stubs.get(info)
  if (requests === undefined) stubs.set(info, (requests = []))
  requests.push(new KeyRequest(info.primary, lookup))
}

/** Drops stubs from cache layer `index` of `calls` by their primary keys; if that fails, remembers the lookups for repair. */
export async function dropStubs(calls: LayerCalls, index: number, stubs: ReadonlyMap<ModelInfo, readonly LookupRequest[]>): Promise<void> {
  const guard = calls.guards[index] as LayerGuard
  for (const [info, requests] of stubs) {
    const lookups = requests.map((r) => r.lookup)
    const invalidate = guard.layer.batchInvalidate
    try {
      await calls.run(index, 'invalidate', (layer) =>
        invalidate === undefined ? layer.batchDelete(info.model, lookups as never) : invalidate.call(layer, info.model, lookups as never),
      )
    } catch (err) {
      try {
        calls.fail(index, 'invalidate', err)
      } finally {
        guard.rememberLookups(info.model, isPartialFailure(err) ? err.failed.map((k) => lookups[k] as object) : lookups)
      }
    }
  }
}
