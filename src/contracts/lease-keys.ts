import type { ModelInfo } from '../core/registry.js'
import { requestKeys } from './key-value-reads.js'
import type { LookupRequest } from './store.js'

/** The keys of the leases on some lookups, and the keys that place them (see `KeyValueEntry.routeKey`). */
export interface LeaseKeys {
  /** `<prefix>lease:<key>` per lookup, in order. */
  readonly keys: string[]
  /** `<prefix><key>` per lookup, in order: the record's key, whose node holds the lease too. */
  readonly routeKeys: string[]
}

/**
 * The lease keys of `requests` under the store's `prefix` (`<name>:`), each with its record's key to
 * route by: a lease lives on its record's node, so a failing node fails only its own keys' leases.
 * @param store The store's name, for messages.
 * @throws InvalidKeyError for a lookup that makes no valid key.
 */
export function leaseKeys(store: string, info: ModelInfo, requests: readonly LookupRequest[], prefix: string): LeaseKeys {
  const routeKeys = requestKeys(store, info, requests, prefix)
  const leasePrefix = `${prefix}lease:`
  return { keys: routeKeys.map((key) => leasePrefix + key.slice(prefix.length)), routeKeys }
}
