import { encodeLookup } from './key-encoding.js'
import type { Lookup, Model } from './model.js'
import { describeModelIn } from './registry.js'

/**
 * The canonical key of a lookup (no store prefix): what cache layers store the object under and what
 * an invalidation bus carries. Deterministic across processes and machines.
 * @throws UnknownModelError for a class that is not a model; UnknownKeyError / InvalidKeyError for a bad
 *   lookup — each message starting `canonicalKey:`.
 */
export function canonicalKey<M extends Model>(model: M, lookup: Lookup<M>): string {
  const info = describeModelIn(model, 'canonicalKey')
  return encodeLookup(info, lookup, 'canonicalKey')
}
