/**
 * The part of the `hashring` package (3.x, plain JavaScript) that stockpyle uses: a ketama
 * (libketama-compatible) consistent hash ring over `host:port` strings.
 */
declare module 'hashring' {
  /** Servers as an array of `host:port`, or an object mapping `host:port` to a weight. */
  type HashRingServers = readonly string[] | Readonly<Record<string, number | { weight?: number; vnodes?: number }>>

  /** Options of the ring; names contain spaces, as in the package. */
  interface HashRingOptions {
    /** Virtual nodes per server, default 40 (x4 replicas = 160 points, as libketama). */
    'vnode count'?: number
    /** `'hash_ring'` uses 3 replicas per virtual node; anything else (default) 4, as libketama. */
    compatibility?: 'hash_ring' | 'ketama'
    /** Servers on this port are hashed by host only (libmemcached / pylibmc behaviour). */
    'default port'?: number
    /** Size of the key -> server lookup cache, default 5000. */
    'max cache size'?: number
  }

  /** A consistent hash ring. */
  class HashRing {
    constructor(servers: HashRingServers, algorithm?: string, options?: HashRingOptions)
    /** The server (as given) that owns `key`, or `undefined` for an empty ring. */
    get(key: string): string | undefined
    /** Removes every server and point. */
    end(): this
  }

  export default HashRing
}
