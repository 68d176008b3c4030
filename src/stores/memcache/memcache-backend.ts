import type { BackendReadOptions, BackendRouteOptions, KeyValueBackend, KeyValueEntry } from '../../contracts/key-value-backend.js'
import { isExpiredEnvelope } from '../../core/codec.js'
import { InvalidKeyError, StoreClosedError, StoreUnavailableError, show, ValueTooLargeError } from '../../core/errors.js'
import type { Clock } from '../../core/lifetime.js'
import { repairWrite } from '../../core/repair-action.js'
import { memcacheExptime } from './memcache-exptime.js'
import { combinedFailure, partialFailure, throwFailures } from './memcache-failures.js'
import { MemcacheNodeClient, type MemcacheServerStats, type NodeRepair, NodeSetEntry } from './memcache-node-client.js'
import { toBuffer } from './memcache-node-refill.js'
import { checkBackendOptions, type MemcacheBackendOptions } from './memcache-options.js'
import { MemcacheReports } from './memcache-reports.js'
import { MemcacheRing } from './memcache-ring.js'
import { nodeRepair } from './node-repair-decision.js'

export type { MemcacheBackendOptions } from './memcache-options.js'

/** A memcached key: 1–250 printable ASCII characters, no spaces or control characters. */
const VALID_KEY = /^[\x21-\x7e]{1,250}$/

/** Whether a part of a call failed. */
const rejected = (result: PromiseSettledResult<unknown>): boolean => result.status === 'rejected'

/**
 * A {@link KeyValueBackend} over a pool of memcached servers.
 *
 * - Keys are spread with ketama consistent hashing (the `hashring` package), so they land where other
 *   ketama clients put them; each server has its own memcache-client instance with one connection.
 *   An entry with a `routeKey` (a lease) goes to the server of that key (its record's), and is read
 *   and deleted there through `routeKeys`: a server that fails fails only its own keys' leases.
 * - `getMany` sends exactly one multi-get (`get k1 k2 …`) per server involved, all in parallel;
 *   `setMany` / `deleteMany` group the keys per server and pipeline one command per key on each
 *   server's connection, all servers in parallel. Repeated keys are sent once (the last entry wins).
 * - `addMany`: memcached `add`. `refillMany` (every backfill, and leases: memcached keeps an item up to
 *   two seconds past its expiry, see {@link memcacheExptime}): `add`, then for the keys taken `gets` and
 *   `cas` where they hold a record or tombstone (or lease) whose envelope expiry has passed.
 * - Expiry: see {@link memcacheExptime} (rounded up, never early; relative up to 30 days, absolute
 *   beyond; `0` for never — always sent explicitly).
 * - Failures: every call waits at most `timeout` ms per server. A server that fails is named in a
 *   `StoreUnavailableError` (its `cause` is the client error). Writes reject when any server fails;
 *   reads with `partialReads` (default) answer from the servers that work, report the failed ones to
 *   `onError`, and reject only when every server involved failed. A failed server is retried after
 *   `retryDelay` ms; memcache-client reconnects by itself.
 */
export class MemcacheBackend implements KeyValueBackend {
  /** Name used in messages. */
  readonly name: string
  /** Largest value in bytes sent to a server; `KeyValueStore` rejects larger ones with `ValueTooLargeError`. */
  readonly maxValueBytes: number
  /** memcached's expiry has whole-second resolution (lifetimes are rounded up). */
  readonly secondResolution = true
  readonly #nodes: Map<string, MemcacheNodeClient>
  readonly #single: MemcacheNodeClient | undefined
  readonly #ring: MemcacheRing
  readonly #clock: Clock
  readonly #partialReads: boolean
  readonly #reports: MemcacheReports
  #closed = false
  #closing: Promise<void> | undefined
  /** Only with `ownsServers`: memcached cannot remove one prefix, so clearing means `flush_all` everywhere. */
  readonly clear?: (prefix: string) => Promise<void>

  /**
   * No connection is opened before the first call.
   * @param otherOptions option names a wrapping store accepts besides these (not an error here).
   * @throws InvalidOptionError naming the option (also an unknown one).
   */
  constructor(options: MemcacheBackendOptions, otherOptions: readonly string[] = []) {
    const { name, settings, clock, repairKey } = checkBackendOptions(options, otherOptions)
    this.name = name
    this.#clock = clock
    this.maxValueBytes = settings.maxValueBytes
    this.#partialReads = settings.partialReads
    this.#reports = new MemcacheReports(this.name, settings.onError)
    this.#ring = new MemcacheRing(settings.servers, settings.hashing)
    const now = () => clock.now()
    const nodeRepairKey =
      repairKey === undefined
        ? undefined
        : (current: Buffer | undefined, failedAt: number) => nodeRepair(repairKey(current, failedAt), clock.now())
    this.#nodes = new Map(
      settings.servers.map(({ address }) => [
        address,
        new MemcacheNodeClient(address, {
          ...settings,
          owner: name,
          now,
          repairKey: nodeRepairKey,
          ownsServer: options.ownsServers === true,
        }),
      ]),
    )
    this.#single = this.#nodes.size === 1 ? this.#nodes.values().next().value : undefined
    if (options.ownsServers === true) this.clear = () => this.flushAll()
  }

  /** The configured servers, `host:port`. */
  get servers(): string[] {
    return [...this.#nodes.keys()]
  }

  /** The server (`host:port`) that owns `key`; an entry given a `routeKey` (a lease) is on `serverFor(routeKey)`. */
  serverFor(key: string): string {
    return this.#ring.serverFor(key)
  }

  /** A snapshot of each server's counters, in configuration order. */
  stats(): MemcacheServerStats[] {
    return [...this.#nodes.values()].map((n) => n.stats())
  }

  /**
   * One value per key, same order, `undefined` at a miss; one multi-get per server involved. Each key
   * is read on the server of its `routeKeys` element where given (see `KeyValueEntry.routeKey`).
   * @throws InvalidKeyError for a key memcached cannot hold; StoreUnavailableError when a server fails
   *   (only when every server involved failed, unless `partialReads` is `false`); StoreClosedError after close.
   */
  async getMany(keys: readonly string[], options?: BackendReadOptions): Promise<(Uint8Array | undefined)[]> {
    this.#assertOpen('getMany')
    if (keys.length === 0) return []
    const routes = options?.routeKeys
    if (keys.length === 1) {
      // (a chain's `get`: one key on one server, read without grouping keys per server)
      const node = this.#nodeFor(keys[0] as string, routes?.[0])
      try {
        return [(await node.get(keys, 'get of 1 key(s)')).get(keys[0] as string)]
      } catch (err) {
        const error = err as Error
        throw this.#readFailure(keys, routes, [{ node, error }], 1, [undefined], options) ?? error
      }
    }
    const groups = [...this.#group(keys, routes)]
    const settled = await Promise.allSettled(groups.map(([node, ks]) => node.get([...ks], `get of ${ks.size} key(s)`)))
    const failures: { node: MemcacheNodeClient; error: Error }[] = []
    let found: Map<string, Buffer> | undefined
    settled.forEach((result, i) => {
      if (result.status === 'rejected')
        failures.push({ node: (groups[i] as [MemcacheNodeClient, unknown])[0], error: result.reason as Error })
      else if (found === undefined) found = result.value
      else for (const [k, v] of result.value) found.set(k, v)
    })
    const out: (Uint8Array | undefined)[] = new Array(keys.length)
    for (let i = 0; i < keys.length; i++) out[i] = found?.get(keys[i] as string)
    if (failures.length > 0) {
      const error = this.#readFailure(keys, routes, failures, settled.length, out, options)
      if (error !== undefined) throw error
    }
    return out
  }

  /**
   * What a {@link getMany} some of whose `involved` servers failed throws, or `undefined` when the
   * others answer for them (`partialReads`): the failed servers are then reported.
   */
  #readFailure(
    keys: readonly string[],
    routes: readonly (string | undefined)[] | undefined,
    failures: readonly { node: MemcacheNodeClient; error: Error }[],
    involved: number,
    out: readonly (Uint8Array | undefined)[],
    options: BackendReadOptions | undefined,
  ): Error | undefined {
    const errors = failures.map((f) => f.error)
    const unavailable = errors.every((e) => e instanceof StoreUnavailableError)
    if (options?.partial === true && unavailable && this.#single === undefined) {
      return partialFailure(this.name, 'getMany', keys, failures, out, this.#serverOf(routes))
    }
    if (!this.#partialReads || failures.length === involved || !unavailable) return combinedFailure(this.name, 'getMany', errors, involved)
    for (const f of failures) this.#reports.serverFailed(f.node, f.error as StoreUnavailableError)
    return undefined
  }

  /**
   * Stores every entry; `expiresAt` (ms since the epoch on the store's clock, `undefined` = never)
   * becomes memcached's `exptime` via {@link memcacheExptime}. Later entries for the same key win.
   * @throws ValueTooLargeError (before sending anything) for a value over `maxValueBytes`, or when a
   *   server refuses one; InvalidKeyError; StoreUnavailableError when any server fails.
   */
  async setMany(entries: readonly KeyValueEntry[]): Promise<void> {
    this.#assertOpen('setMany')
    if (entries.length === 0) return
    const now = this.#clock.now()
    const systemNow = Date.now()
    const last = new Map<string, KeyValueEntry>()
    for (const entry of entries) {
      this.#checkEntry('setMany', entry)
      last.set(entry.key, entry)
    }
    const groups = [...this.#group([...last.keys()])]
    const settled = await Promise.allSettled(
      groups.map(([node, ks]) => {
        const batch: NodeSetEntry[] = []
        for (const key of ks) {
          const e = last.get(key) as KeyValueEntry
          batch.push(new NodeSetEntry(key, toBuffer(e.value), memcacheExptime(e.expiresAt, now, systemNow)))
        }
        return node.set(batch, `set of ${batch.length} key(s)`)
      }),
    )
    this.#throwFailures(
      'setMany',
      settled,
      groups.map(([node]) => node),
      entries.map((e) => e.key),
    )
  }

  /**
   * Stores each entry only where its key holds nothing (memcached `add`, atomic per key on its server),
   * resolving with whether each entry was stored, in order. Of entries repeating a key only the first
   * can be stored. `expiresAt` is converted as in {@link setMany}.
   * @throws ValueTooLargeError (before sending anything) or InvalidKeyError; StoreUnavailableError when
   *   any server fails.
   */
  async addMany(entries: readonly KeyValueEntry[]): Promise<boolean[]> {
    return this.#add('addMany', entries, undefined)
  }

  /**
   * Like {@link addMany}, and also where the key holds an expired record, tombstone or lease (see
   * `KeyValueBackend.refillMany`): per server, the keys `add` did not store are read (`gets`), and
   * those holding such an entry replaced by `cas`, which stores only if the key still holds what was
   * read — a put or delete of another client in between is never overwritten; such a key is tried
   * again (3 rounds at most, then left unstored).
   * @throws as {@link addMany}.
   */
  async refillMany(entries: readonly KeyValueEntry[], expiredBy: number): Promise<boolean[]> {
    return this.#add('refillMany', entries, (held) => isExpiredEnvelope(held, expiredBy))
  }

  async #add(
    operation: string,
    entries: readonly KeyValueEntry[],
    replaceable: ((held: Buffer) => boolean) | undefined,
  ): Promise<boolean[]> {
    this.#assertOpen(operation)
    if (entries.length === 0) return []
    const now = this.#clock.now()
    const systemNow = Date.now()
    const groups = new Map<MemcacheNodeClient, number[]>()
    entries.forEach((entry, i) => {
      this.#checkEntry(operation, entry)
      const node = this.#nodeFor(entry.key, entry.routeKey)
      const slots = groups.get(node)
      if (slots === undefined) groups.set(node, [i])
      else slots.push(i)
    })
    const out: boolean[] = new Array(entries.length).fill(false)
    const nodes = [...groups.keys()]
    const settled = await Promise.allSettled(
      [...groups].map(async ([node, slots]) => {
        const batch = slots.map((i) => {
          const e = entries[i] as KeyValueEntry
          return new NodeSetEntry(e.key, toBuffer(e.value), memcacheExptime(e.expiresAt, now, systemNow))
        })
        const stored = await node.add(batch, `${replaceable === undefined ? 'add' : 'refill'} of ${batch.length} key(s)`, replaceable)
        slots.forEach((slot, j) => {
          out[slot] = stored[j] === true
        })
      }),
    )
    // (the keys and routes are gathered only when a server failed: backfills come this way too)
    if (settled.some(rejected)) {
      const [keys, routes] = [entries.map((e) => e.key), entries.map((e) => e.routeKey)]
      this.#throwFailures(operation, settled, nodes, keys, out, routes)
    }
    return out
  }

  /**
   * Removes the keys; absent keys are a no-op. Each key is removed on the server of its `routeKeys`
   * element where given (see `KeyValueEntry.routeKey`).
   * @throws InvalidKeyError; StoreUnavailableError when any server fails.
   */
  async deleteMany(keys: readonly string[], options?: BackendRouteOptions): Promise<void> {
    this.#assertOpen('deleteMany')
    if (keys.length === 0) return
    const routes = options?.routeKeys
    const groups = [...this.#group(keys, routes)]
    const settled = await Promise.allSettled(groups.map(([node, ks]) => node.delete([...ks], `delete of ${ks.size} key(s)`)))
    const nodes = groups.map(([node]) => node)
    this.#throwFailures('deleteMany', settled, nodes, keys, undefined, routes)
  }

  /**
   * Repairs the keys after a failed change (see {@link KeyValueBackend.repairMany}): per server a `gets`
   * of its keys, then per key `cas` (a negative expiry deletes) or `add`, as `repairAction` decides, so
   * nothing another client writes between the read and the write is overwritten: such a key is read
   * and decided again (up to 3 times).
   * @throws InvalidKeyError; StoreUnavailableError (a `PartialFailureError` in a pool of several when
   *   some servers failed).
   */
  async repairMany(keys: readonly string[], until: number): Promise<void> {
    this.#assertOpen('repairMany')
    if (keys.length === 0) return
    const decide = (current: Buffer | undefined): NodeRepair => {
      const now = this.#clock.now()
      return nodeRepair(repairWrite(current, until, now), now)
    }
    const groups = [...this.#group(keys)]
    const settled = await Promise.allSettled(groups.map(([node, ks]) => node.repair([...ks], decide, `repair of ${ks.size} key(s)`)))
    const nodes = groups.map(([node]) => node)
    this.#throwFailures('repairMany', settled, nodes, keys)
  }

  /**
   * Sends `flush_all` to every server of the pool: everything they hold goes, whoever wrote it. Only
   * for servers that hold nothing else (see `MemcacheStore`'s `ownsServers`).
   * @throws StoreUnavailableError naming every server that failed.
   */
  async flushAll(): Promise<void> {
    this.#assertOpen('flushAll')
    const settled = await Promise.allSettled([...this.#nodes.values()].map((node) => node.flushAll('flush_all')))
    const failures = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []))
    // A flush has no keys to blame: any failed server fails the whole call.
    if (failures.length > 0) throw combinedFailure(this.name, 'flushAll', failures, settled.length)
  }

  /**
   * Closes every connection, after one last attempt per server (all at once, each within `timeout` ms)
   * to repair the keys whose writes failed there: another process must not read what this one failed
   * to replace. Keys a server still could not take are reported — to `onError`, else as a process
   * warning (`STOCKPYLE_MEMCACHE_REPAIRS_LEFT`) — and stay as they are until their lifetime ends.
   * Idempotent; calls afterwards reject with `StoreClosedError`. Never rejects.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    this.#closed = true
    const nodes = [...this.#nodes.values()]
    const left = await Promise.all(nodes.map((node) => node.repairBeforeClose()))
    for (const node of nodes) node.close()
    left.forEach((l, i) => {
      if (l !== undefined) this.#reports.repairsLeft(nodes[i] as MemcacheNodeClient, l)
    })
  }

  #assertOpen(operation: string): void {
    if (this.#closed) throw new StoreClosedError(`${this.name}: ${operation} was called after close()`)
  }

  /** @throws ValueTooLargeError for a value over `maxValueBytes`. */
  #checkEntry(operation: string, entry: KeyValueEntry): void {
    if (entry.value.length > this.maxValueBytes) {
      throw new ValueTooLargeError(
        `${this.name} ${operation} of ${show(entry.key)}: the value is ${entry.value.length} bytes, over the limit of ${this.maxValueBytes} (option \`maxValueBytes\`)`,
      )
    }
  }

  /**
   * The server of `key`: the ring's for `route` (see `KeyValueEntry.routeKey`), else for `key`.
   * @throws InvalidKeyError for a key memcached cannot hold.
   */
  #nodeFor(key: string, route?: string): MemcacheNodeClient {
    if (typeof key !== 'string' || !VALID_KEY.test(key)) {
      throw new InvalidKeyError(`${this.name}: ${show(key)} is not a memcached key (1-250 printable ASCII characters, no spaces)`)
    }
    return this.#single ?? (this.#nodes.get(this.#ring.serverFor(route ?? key)) as MemcacheNodeClient)
  }

  /** The address of the server of the `i`th of some keys (routed by `routes[i]` where given). */
  #serverOf(routes: readonly (string | undefined)[] | undefined): (key: string, i: number) => string {
    return (key, i) => this.#ring.serverFor(routes?.[i] ?? key)
  }

  /** Distinct keys per server, validated; each routed by its element of `routes` where given. */
  #group(keys: readonly string[], routes?: readonly (string | undefined)[]): Map<MemcacheNodeClient, Set<string>> {
    const groups = new Map<MemcacheNodeClient, Set<string>>()
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string
      const node = this.#nodeFor(key, routes?.[i])
      const held = groups.get(node)
      if (held === undefined) groups.set(node, new Set([key]))
      else held.add(key)
    }
    return groups
  }

  /** Throws when a node failed (see {@link throwFailures}): positions of `keys`, each routed by `routes` where given. */
  #throwFailures(
    operation: string,
    settled: readonly PromiseSettledResult<unknown>[],
    nodes: readonly MemcacheNodeClient[],
    keys: readonly string[],
    results?: readonly unknown[],
    routes?: readonly (string | undefined)[],
  ): void {
    throwFailures(this.name, operation, settled, nodes, keys, this.#single === undefined, this.#serverOf(routes), results)
  }
}
