import { encodeLookup } from './key-encoding.js'
import type { Lookup, Model } from './model.js'
import { describeModel } from './registry.js'

/**
 * The canonical key of a lookup (no store prefix): what cache layers store the object under and what
 * an invalidation bus carries. Deterministic across processes and machines.
 * @throws UnknownKeyError / InvalidKeyError for a bad lookup.
 */
export function canonicalKey<M extends Model>(model: M, lookup: Lookup<M>): string {
  const info = describeModel(model)
  return encodeLookup(info, lookup, 'canonicalKey')
}
