import { keysOfObject } from '../core/key-encoding.js'
import { describeObject } from '../core/registry.js'

/**
 * Every canonical key of an object, its ancestor models' included: what negative caching must forget
 * when it is written, and what a pending repair of it may block. None for an object that has no
 * complete key (it was refused before anything remembered it).
 */
export function lineageKeys(obj: object): string[] {
  try {
    const keys = keysOfObject(describeObject(obj), obj, true, 'chain')
    return [keys.record, ...keys.aliases]
  } catch {
    return []
  }
}
