import { encodeTombstone } from '../core/codec.js'
import type { KeyValueBackend } from './key-value-backend.js'

/**
 * Writes a tombstone under each of `keys` that ends at `expiresAt` (ms since the epoch, the store's
 * clock): what a delete or invalidation leaves, refusing add-only backfills until then.
 * @throws what the backend's `setMany` rejects with.
 */
export function writeTombstones(backend: KeyValueBackend, keys: readonly string[], expiresAt: number): Promise<void> {
  const value = encodeTombstone(expiresAt)
  return backend.setMany(keys.map((key) => ({ key, value, expiresAt })))
}
