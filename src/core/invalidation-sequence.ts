let current = 0

/**
 * A process-wide counter advanced by every invalidation an in-process layer applies (a delete, an
 * invalidation, an eviction published by another process). A read notes it when it begins; a layer
 * refuses to backfill a copy of a key invalidated after that point, however long the read took —
 * unlike a tombstone, which protects only for its lifetime.
 */
export function invalidationSequence(): number {
  return current
}

/** Advances the counter; returns the new value, which stamps the invalidation being applied. */
export function nextInvalidation(): number {
  current += 1
  return current
}
