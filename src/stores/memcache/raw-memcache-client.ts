import { MemcacheClient, type PackedData } from 'memcache-client'

/**
 * A memcache-client that hands every fetched value back as the bytes the server sent (a `Buffer`),
 * whatever its `flags`.
 *
 * memcache-client decodes a value by its flags: JSON (2), a number (4), compressed (1, which it cannot
 * undo without a compressor). Other clients write those flags too — python-memcached's and pylibmc's
 * pickles and PHP's longs carry 1, another memcache-client application's objects 2 — and a value it
 * cannot decode (a body that is not JSON, flag 1 without zstd) makes it reject the whole multi-get of
 * the connection. This store writes only raw bytes (flags 8, which memcache-client leaves as they
 * are), so nothing of its own needs decoding: every value is read as its bytes, and one another client
 * left under the prefix is what `KeyValueStore` reports as a `CorruptEntryError` naming its key (the
 * store's read of that batch fails, the server is not counted as failing: a chain reads the batch from
 * the layer below).
 * Reading the bytes as they are also skips memcache-client's flag parsing on every hit.
 */
export class RawMemcacheClient extends MemcacheClient {
  /** The value's bytes as received (never decoded by its flags). */
  override _unpackValue(result: PackedData): Buffer {
    return result.data as Buffer
  }
}
