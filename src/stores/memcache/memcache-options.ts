import type { ConnectionOptions } from 'node:tls'
import { InvalidOptionError, type StoreUnavailableError, show } from '../../core/errors.js'
import { type Clock, systemClock } from '../../core/lifetime.js'
import { msOption } from '../../core/option-values.js'
import { checkOptionNames } from '../../core/options.js'
import type { MemcacheHashing, RingServer } from './memcache-ring.js'

/** A weighted memcached server: `address` is `'host:port'`, `weight` a number > 0 (default 1). */
export interface MemcacheWeightedServer {
  readonly address: string
  readonly weight?: number | undefined
}

/** A memcached server: `'host:port'` (IPv4 or a host name; IPv6 literals are not supported) or a weighted entry. */
export type MemcacheServer = string | MemcacheWeightedServer

/** Options of the connection to a memcached pool, shared by {@link MemcacheStoreOptions} and the backend. */
export interface MemcacheConnectionOptions {
  /**
   * The pool: one or more `'host:port'` strings or `{ address, weight }` entries. Keys are spread with
   * ketama consistent hashing (see `hashing`); one connection per server. Required.
   */
  servers: readonly MemcacheServer[]
  /**
   * Milliseconds a call waits for each server, connecting included (default 1000). A server that has
   * not answered by then fails the call with `StoreUnavailableError`; also memcache-client's
   * `cmdTimeout`, after which its connection is dropped and reopened.
   */
  timeout?: number | undefined
  /** Milliseconds allowed to open a TCP/TLS connection before it is abandoned (default: `timeout`). */
  connectTimeout?: number | undefined
  /**
   * After a server fails to connect or answer, calls that need it fail at once with
   * `StoreUnavailableError` for this many milliseconds, then the next call tries it again
   * (default 1000; `0` tries every call). Spares callers a full `timeout` per call while a server
   * is frozen or unreachable.
   */
  retryDelay?: number | undefined
  /**
   * Largest value in bytes that is sent; a larger encoded object fails the put with
   * `ValueTooLargeError` before anything is written. Default {@link DEFAULT_MEMCACHE_MAX_VALUE_BYTES}
   * (memcached's default 1 MiB item limit `-I 1m`, minus room for the item header and a 250-byte key).
   * Raise it only with the servers' `-I`.
   */
  maxValueBytes?: number | undefined
  /** TLS options for every connection (memcached built with TLS, started with `-Z`); default: plain TCP. */
  tls?: ConnectionOptions | undefined
  /**
   * Key-to-server mapping: `'ketama'` (default; libketama, python-ketama, Node `memcached`) or
   * `'libmemcached'` (the same, but servers on port 11211 are hashed by host alone, like
   * libmemcached / pylibmc). Every client sharing a pool must use the same mapping.
   */
  hashing?: MemcacheHashing | undefined
  /**
   * What a read does when some, but not all, of the servers it needs fail: `true` (default) answers
   * with the other servers' hits and misses for the failed servers' keys, and reports each failure to
   * `onError`; `false` rejects the read with `StoreUnavailableError`. A read whose every server fails
   * always rejects, and writes always reject when any server fails.
   */
  partialReads?: boolean | undefined
  /**
   * Receives each server failure that a call did not reject with (the failed share of a partial
   * read), and the keys `close()` left unrepaired on a server. Default: a process warning
   * (`STOCKPYLE_MEMCACHE_SERVER_DOWN`) once per server outage; `STOCKPYLE_MEMCACHE_REPAIRS_LEFT` at close.
   * What the handler throws, or its promise rejects with (an `async` handler), never fails a call nor
   * ends the process: the first such failure is a process warning (`STOCKPYLE_CALLBACK`), later ones
   * are dropped.
   */
  onError?: ((error: StoreUnavailableError) => void) | undefined
}

/** memcached's default item size limit (1 MiB) minus 1 KiB for the item header and key. */
export const DEFAULT_MEMCACHE_MAX_VALUE_BYTES = 1024 * 1024 - 1024

/** Default of {@link MemcacheConnectionOptions.timeout}, in ms. */
export const DEFAULT_MEMCACHE_TIMEOUT = 1000

/** Default of {@link MemcacheConnectionOptions.retryDelay}, in ms. */
export const DEFAULT_MEMCACHE_RETRY_DELAY = 1000

/** {@link MemcacheConnectionOptions} validated, with defaults applied. */
export interface ResolvedMemcacheOptions {
  readonly servers: readonly RingServer[]
  readonly timeout: number
  readonly connectTimeout: number
  readonly retryDelay: number
  readonly maxValueBytes: number
  readonly tls: ConnectionOptions | undefined
  readonly hashing: MemcacheHashing
  readonly partialReads: boolean
  readonly onError: ((error: StoreUnavailableError) => void) | undefined
}

/** The option names of {@link MemcacheConnectionOptions}. */
export const MEMCACHE_CONNECTION_OPTIONS: readonly string[] = [
  'servers',
  'timeout',
  'connectTimeout',
  'retryDelay',
  'maxValueBytes',
  'tls',
  'hashing',
  'partialReads',
  'onError',
]

/** The setting names of a {@link MemcacheWeightedServer}. */
const WEIGHTED_SERVER_SETTINGS: readonly string[] = ['address', 'weight']

const ADDRESS = /^([A-Za-z0-9._-]+):(\d{1,5})$/

/**
 * Validates the connection options of a memcached pool and applies the defaults.
 * @param store name used in messages.
 * @param otherOptions names of the caller's own options; any other unknown name is an error (a typo).
 * @throws InvalidOptionError naming the offending option.
 */
export function checkMemcacheOptions(
  store: string,
  options: MemcacheConnectionOptions,
  otherOptions: readonly string[],
): ResolvedMemcacheOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError(`${store}: options must be an object with \`servers\`, got ${show(options)}`)
  }
  checkOptionNames(store, options, [...MEMCACHE_CONNECTION_OPTIONS, ...otherOptions])
  const timeout = msOption(store, 'timeout', options.timeout, DEFAULT_MEMCACHE_TIMEOUT)
  const hashing = options.hashing ?? 'ketama'
  if (hashing !== 'ketama' && hashing !== 'libmemcached') {
    throw new InvalidOptionError(`${store}: option \`hashing\` must be 'ketama' or 'libmemcached', got ${show(hashing)}`)
  }
  const maxValueBytes = options.maxValueBytes ?? DEFAULT_MEMCACHE_MAX_VALUE_BYTES
  if (!Number.isSafeInteger(maxValueBytes) || maxValueBytes <= 0) {
    throw new InvalidOptionError(
      `${store}: option \`maxValueBytes\` must be a positive integer number of bytes, got ${show(maxValueBytes)}`,
    )
  }
  if (options.tls !== undefined && (typeof options.tls !== 'object' || options.tls === null)) {
    throw new InvalidOptionError(`${store}: option \`tls\` must be an object of tls.connect() options, got ${show(options.tls)}`)
  }
  if (options.partialReads !== undefined && typeof options.partialReads !== 'boolean') {
    throw new InvalidOptionError(`${store}: option \`partialReads\` must be a boolean, got ${show(options.partialReads)}`)
  }
  if (options.onError !== undefined && typeof options.onError !== 'function') {
    throw new InvalidOptionError(`${store}: option \`onError\` must be a function, got ${show(options.onError)}`)
  }
  return {
    servers: checkServers(store, options.servers),
    timeout,
    connectTimeout: msOption(store, 'connectTimeout', options.connectTimeout, timeout),
    retryDelay: msOption(store, 'retryDelay', options.retryDelay, DEFAULT_MEMCACHE_RETRY_DELAY, true),
    maxValueBytes,
    tls: options.tls,
    hashing,
    partialReads: options.partialReads ?? true,
    onError: options.onError,
  }
}

/** @throws InvalidOptionError naming the entry: not 'host:port', a misspelt or unknown setting, a weight ≤ 0, a duplicate. */
function checkServers(store: string, servers: unknown): RingServer[] {
  if (!Array.isArray(servers) || servers.length === 0) {
    throw new InvalidOptionError(`${store}: option \`servers\` must be a non-empty array of 'host:port' strings, got ${show(servers)}`)
  }
  const seen = new Set<string>()
  return servers.map((entry: unknown, i) => {
    const weighted = typeof entry === 'object' && entry !== null
    // a misspelt setting (`wieght`, `adress`) would silently be weight 1 or a refused address
    if (weighted && !Array.isArray(entry)) checkOptionNames(`${store}: option \`servers\`[${i}]`, entry, WEIGHTED_SERVER_SETTINGS)
    const address = weighted ? (entry as MemcacheWeightedServer).address : entry
    const weight = weighted ? ((entry as MemcacheWeightedServer).weight ?? 1) : 1
    const match = typeof address === 'string' ? ADDRESS.exec(address) : null
    const port = Number(match?.[2])
    if (match === null || !(port >= 1 && port <= 65535)) {
      throw new InvalidOptionError(
        `${store}: option \`servers\`[${i}] must be 'host:port' (or { address: 'host:port', weight }) with a port 1-65535, got ${show(entry)}`,
      )
    }
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) {
      throw new InvalidOptionError(`${store}: option \`servers\`[${i}].weight must be a number > 0, got ${show(weight)}`)
    }
    if (seen.has(address as string)) {
      throw new InvalidOptionError(`${store}: option \`servers\` lists ${show(address)} twice`)
    }
    seen.add(address as string)
    return { address: address as string, weight }
  })
}

/** Options of `MemcacheBackend`. */
export interface MemcacheBackendOptions extends MemcacheConnectionOptions {
  /**
   * The time source `expiresAt` values are measured on (the store's clock); the remaining lifetime
   * `expiresAt - clock.now()` is what memcached is told. Default: `Date.now`.
   */
  clock?: Clock | undefined
  /** Name in messages; default `memcache(<servers>)`. */
  name?: string | undefined
  /** The servers hold nothing else: the backend gets `clear()`, which sends `flush_all` to each. Default `false`. */
  ownsServers?: boolean | undefined
  /**
   * What a server's repair does to a key whose write failed (see `MemcacheServerStats.pendingRepairs`),
   * told what the key holds when the server answers again (`undefined`: nothing) and when the write
   * failed (ms on `clock`): `'keep'` it, `'delete'` it, or write an entry in its place. The repair
   * reads the keys first (`gets`) and changes a key only if no one has since (`cas`; `add` where it
   * held nothing). `MemcacheStore` sets it to leave its tombstones and never cut one short. Default:
   * the key is deleted, without reading.
   */
  repairKey?:
    | ((
        current: Uint8Array | undefined,
        failedAt: number,
      ) => 'keep' | 'delete' | { readonly value: Uint8Array; readonly expiresAt: number | undefined })
    | undefined
}

/** {@link MemcacheBackendOptions} checked, with the backend's name (the option, or one made from the servers). */
export interface CheckedBackendOptions {
  readonly name: string
  readonly settings: ResolvedMemcacheOptions
  readonly clock: Clock
  readonly repairKey: MemcacheBackendOptions['repairKey']
}

/**
 * Checks a backend's options: the connection's ({@link checkMemcacheOptions}) and its own (`name`,
 * `clock`, `repairKey`, `ownsServers`); `otherOptions` are names a wrapping store accepts besides these.
 * @throws InvalidOptionError naming the option (also an unknown one).
 */
export function checkBackendOptions(options: MemcacheBackendOptions, otherOptions: readonly string[]): CheckedBackendOptions {
  const provisional = typeof options?.name === 'string' && options.name !== '' ? options.name : 'memcache'
  const settings = checkMemcacheOptions(provisional, options, ['clock', 'name', 'ownsServers', 'repairKey', ...otherOptions])
  if (options.name !== undefined && (typeof options.name !== 'string' || options.name === '')) {
    throw new InvalidOptionError(`${provisional}: option \`name\` must be a non-empty string, got ${show(options.name)}`)
  }
  const addresses = settings.servers.map((s) => s.address)
  const name = options.name ?? `memcache(${addresses.length <= 3 ? addresses.join(',') : `${addresses[0]} +${addresses.length - 1}`})`
  const clock = options.clock ?? systemClock
  if (typeof clock?.now !== 'function') throw new InvalidOptionError(`${name}: option \`clock\` must have a now() method`)
  const repairKey = options.repairKey
  if (repairKey !== undefined && typeof repairKey !== 'function') {
    throw new InvalidOptionError(`${name}: option \`repairKey\` must be a function, got ${show(repairKey)}`)
  }
  if (options.ownsServers !== undefined && typeof options.ownsServers !== 'boolean') {
    throw new InvalidOptionError(`${name}: option \`ownsServers\` must be a boolean, got ${show(options.ownsServers)}`)
  }
  return { name, settings, clock, repairKey }
}
