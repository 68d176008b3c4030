import { decodeRecord, encodeRecord } from '../../core/codec.js'
import { describeObject } from '../../core/registry.js'

/** A copy of `obj` as it is now (through the cache codec), or `undefined` when the codec cannot copy it. */
export function copyOf(obj: object): object | undefined {
  try {
    return decodeRecord(encodeRecord(obj, undefined))
  } catch {
    return undefined
  }
}

/** The key attributes of `obj` as they are now, on an object of its class: what a delete of it needs. */
export function keysOf(obj: object): object {
  const copy = Object.create(Object.getPrototypeOf(obj)) as object
  for (const model of describeObject(obj).lineage) {
    for (const spec of model.keys) {
      for (const field of spec.fields) {
        if (!Object.hasOwn(obj, field)) continue
        const value = (obj as Record<string, unknown>)[field]
        Object.defineProperty(copy, field, { value, enumerable: true, writable: true, configurable: true })
      }
    }
  }
  return copy
}
