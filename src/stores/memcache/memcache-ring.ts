import HashRing from 'hashring'

/** How keys are mapped to servers; see {@link MemcacheRing}. */
export type MemcacheHashing = 'ketama' | 'libmemcached'

/** A server of the ring: `host:port` and its relative weight (> 0). */
export interface RingServer {
  readonly address: string
  readonly weight: number
}

/**
 * Consistent hashing of keys to servers, compatible with other ketama clients.
 *
 * `'ketama'` is libketama's continuum (also used by python-ketama and the Node `memcached` client): per
 * server `floor(40 * servers * weight / totalWeight)` MD5 digests of `"host:port-i"`, 4 points each;
 * a key belongs to the first point at or after the first 4 bytes (little-endian) of its MD5.
 * `'libmemcached'` is the same except that servers on port 11211 are hashed by host alone, as
 * libmemcached and pylibmc do. With one server every key maps to it without hashing.
 */
export class MemcacheRing {
  readonly #ring: HashRing | undefined
  readonly #only: string | undefined

  /** @param servers distinct servers (validated by the caller); at least one. */
  constructor(servers: readonly RingServer[], hashing: MemcacheHashing = 'ketama') {
    if (servers.length === 1) {
      this.#only = (servers[0] as RingServer).address
      return
    }
    const weighted: Record<string, number> = {}
    for (const s of servers) weighted[s.address] = s.weight
    this.#ring = new HashRing(weighted, 'md5', {
      'max cache size': 10_000,
      ...(hashing === 'libmemcached' ? { 'default port': 11211 } : {}),
    })
  }

  /** The address (`host:port`, as configured) of the server that owns `key`. */
  serverFor(key: string): string {
    return this.#only ?? (this.#ring?.get(key) as string)
  }
}
