import type { ConnectionOptions } from 'node:tls'
import type { MultiRetrievalResponse } from 'memcache-client'
import { StoreClosedError, StoreUnavailableError, ValueTooLargeError } from '../../core/errors.js'
import { messageOf } from '../../core/unavailable-unless-ours.js'
import { clientBackstop } from '../../core/with-timeout.js'
import { withDeadline } from './memcache-deadline.js'
import { addOnServer, type NodeSetEntry } from './memcache-node-refill.js'
import { deleteKey, type NodeRepair, type ReplyError, repairOnServer } from './memcache-node-repair.js'
import { MemcacheRestartWatch } from './memcache-restart-watch.js'
import type { MemcacheServerStats } from './memcache-server-stats.js'
import { RawMemcacheClient } from './raw-memcache-client.js'

/** Settings of {@link MemcacheNodeClient}. */
export interface NodeClientSettings {
  /** Name of the backend, first in every message. */
  readonly owner: string
  readonly timeout: number
  readonly connectTimeout: number
  readonly retryDelay: number
  readonly tls: ConnectionOptions | undefined
  /** The store's clock (ms since the epoch): when a write failed, as {@link NodeClientSettings.repairKey} is told. */
  readonly now: () => number
  /**
   * What a repair does to a key whose write failed at `failedAt`, given what it holds (`undefined`:
   * nothing): keep it, delete it, or write an entry in its place. `undefined`: the key is deleted.
   */
  readonly repairKey?: ((current: Buffer | undefined, failedAt: number) => NodeRepair) | undefined
  /** The server holds nothing but this store's entries: past {@link MAX_PENDING_REPAIRS} it is flushed, not quarantined. */
  readonly ownsServer: boolean
}

export { NodeSetEntry } from './memcache-node-refill.js'
export type { NodeRepair } from './memcache-node-repair.js'
export type { MemcacheServerStats } from './memcache-server-stats.js'

/** What {@link MemcacheNodeClient.repairBeforeClose} left: keys still to repair, a flush still needed, and why. */
export interface RepairsLeft {
  readonly keys: number
  readonly flush: boolean
  /** The last attempt's failure; `undefined` when it succeeded and the keys were marked meanwhile. */
  readonly error: unknown
}

/** Reads and writes a repair ({@link MemcacheNodeClient.repair}) tries before giving up on a key that keeps changing. */
const REPAIR_ATTEMPTS = 3

/**
 * Above this many keys awaiting repair the server is flushed (`flush_all`) before its next use when the
 * store owns it, and otherwise quarantined until it restarts (see {@link MemcacheServerStats.quarantined}).
 */
export const MAX_PENDING_REPAIRS = 10_000

/**
 * One memcached server: a memcache-client instance with a single pipelined connection, a deadline on
 * every call, fail-fast while the server is known to be down, and repair of failed writes.
 *
 * Repair: when a `set` or `delete` fails, the server may still hold the key's previous value (a frozen
 * or partitioned server keeps its data). Such keys are remembered with the time of the failure and
 * repaired before this client sends the server anything else, so this process never serves a value its
 * own failed write meant to replace. With `repairKey` (the store's tombstones) a repair reads the keys
 * (`gets`) and changes only those it must, each only if no one changed it since (`cas`; `add` where it
 * held nothing): never a plain delete or set, which could remove or cut short the tombstone another
 * client's later delete left there and let a backfill (`add`) of a copy read before that delete land.
 * A key changed between the read and the write is looked at again before the next command. A failed
 * `add` needs no repair: whether or not it landed, the server holds what a successful add could have
 * left. Past {@link MAX_PENDING_REPAIRS} keys the server is flushed instead when the store owns it; a
 * server shared with others is never flushed: this process keeps away from it until it has restarted.
 */
export class MemcacheNodeClient {
  /** `host:port` as configured. */
  readonly address: string
  readonly #client: RawMemcacheClient
  readonly #settings: NodeClientSettings
  #down = false
  #retryAt = 0
  /** A call is probing a server that was down: the others keep failing fast until it settles. */
  #probing = false
  #lastFailure: unknown
  #outageReported = false
  #closed = false
  /** Keys awaiting repair, each with when its last write failed (on the store's clock). */
  readonly #dirty = new Map<string, number>()
  /** The repair being sent: every call waits for it before sending its own command. */
  #repairing: Promise<void> | undefined
  #flushNeeded = false
  /** Quarantine of a server this client may not flush, after failed writes were forgotten on it. */
  readonly #restarts: MemcacheRestartWatch
  #getRequests = 0
  #keysRead = 0
  #hits = 0
  #setRequests = 0
  #addRequests = 0
  #deleteRequests = 0
  #repairRequests = 0
  #errors = 0

  constructor(address: string, settings: NodeClientSettings) {
    this.address = address
    this.#settings = settings
    this.#client = new RawMemcacheClient({
      server: { server: address, maxConnections: 1 },
      // our deadline decides (withDeadline); memcache-client's closes the connection after a stall too
      cmdTimeout: clientBackstop(settings.timeout),
      connectTimeout: settings.connectTimeout,
      noDelay: true,
      ...(settings.tls === undefined ? {} : { tls: settings.tls }),
    })
    this.#restarts = new MemcacheRestartWatch(this.#client, address, settings.timeout, settings.retryDelay)
  }

  /** A snapshot of this server's counters. */
  stats(): MemcacheServerStats {
    return {
      server: this.address,
      getRequests: this.#getRequests,
      keysRead: this.#keysRead,
      hits: this.#hits,
      setRequests: this.#setRequests,
      addRequests: this.#addRequests,
      deleteRequests: this.#deleteRequests,
      repairRequests: this.#repairRequests,
      errors: this.#errors,
      down: this.#down,
      pendingRepairs: this.#flushNeeded ? MAX_PENDING_REPAIRS : this.#dirty.size,
      quarantined: this.#restarts.quarantined,
    }
  }

  /**
   * True once after the server went down (until it answers again): the default reporter warns once per outage, not once per call.
   */
  takeOutageReport(): boolean {
    if (this.#outageReported) return false
    this.#outageReported = true
    return true
  }

  /**
   * Reads `keys` (distinct) with one multi-get. Resolves with the hits by key: the bytes each holds,
   * whatever flags its writer gave it (another client's value too: the caller tells it is not an entry).
   * @throws StoreUnavailableError naming the server, `cause` the underlying error.
   */
  async get(keys: readonly string[], operation: string): Promise<Map<string, Buffer>> {
    const reply = await this.#run(operation, undefined, () => {
      this.#getRequests++
      this.#keysRead += keys.length
      return this.#client.get<MultiRetrievalResponse<Buffer>>(keys as string[])
    })
    const found = new Map<string, Buffer>()
    for (const key of keys) {
      // (every value is its bytes, whatever flags its writer gave it: see RawMemcacheClient)
      if (Object.hasOwn(reply, key)) found.set(key, (reply[key] as { value: Buffer }).value)
    }
    this.#hits += found.size
    return found
  }

  /**
   * Stores every entry (distinct keys), pipelined on one connection.
   * @throws StoreUnavailableError naming the server; ValueTooLargeError when the server refuses a value
   *   as too large for its item limit. Either way the keys are repaired before the server is read again.
   */
  async set(entries: readonly NodeSetEntry[], operation: string): Promise<void> {
    await this.#run(
      operation,
      entries.map((e) => e.key),
      () => {
        this.#setRequests += entries.length
        return Promise.all(entries.map((e) => this.#client.set(e.key, e.value, { lifetime: e.exptime })))
      },
    )
  }

  /**
   * Stores each entry only where its key holds nothing (memcached `add`), pipelined in order on one
   * connection, so of repeated keys only the first can be stored — and, with `replaceable`, also where
   * it accepts what the key holds (an expired record kept for grace), by `gets` then `cas` (see
   * {@link addOnServer}). Resolves with whether each was stored.
   * @throws StoreUnavailableError naming the server (nothing to repair: an add or cas that landed late
   *   stored only where nothing, or what was read, was); ValueTooLargeError when the server refuses a
   *   value as too large.
   */
  async add(entries: readonly NodeSetEntry[], operation: string, replaceable?: (held: Buffer) => boolean): Promise<boolean[]> {
    return this.#run(operation, undefined, () => {
      this.#addRequests += entries.length
      return addOnServer(this.#client, entries, replaceable)
    })
  }

  /**
   * Deletes `keys` (distinct), pipelined on one connection; absent keys are fine.
   * @throws StoreUnavailableError naming the server; the keys are then repaired before the server is read again.
   */
  async delete(keys: readonly string[], operation: string): Promise<void> {
    await this.#run(operation, keys, () => {
      this.#deleteRequests += keys.length
      return Promise.all(keys.map((k) => deleteKey(this.#client, k)))
    })
  }

  /**
   * Repairs `keys` (distinct) after a change that failed, as `decide` says from what each holds: a
   * `gets`, then per key a `cas` over what was read (a negative expiry deletes) or an `add` where it held
   * nothing, so nothing written since the read is overwritten; a key changed in between is read and
   * decided again, up to {@link REPAIR_ATTEMPTS} times.
   * @throws StoreUnavailableError naming the server, also when a key changed before each attempt's write
   *   (without marking the server down: it answered).
   */
  async repair(keys: readonly string[], decide: (current: Buffer | undefined) => NodeRepair, operation: string): Promise<void> {
    await this.#run(operation, undefined, async () => {
      let left: readonly string[] = keys
      for (let attempt = 0; attempt < REPAIR_ATTEMPTS && left.length > 0; attempt++) {
        const changed: string[] = []
        this.#repairRequests += left.length
        await repairOnServer(
          this.#client,
          left.map((key) => [key, 0] as const),
          decide,
          (key) => changed.push(key),
        )
        left = changed
      }
      if (left.length > 0) {
        const err: ReplyError = new Error(
          `${left.length} key(s) changed between the read and the write of each of ${REPAIR_ATTEMPTS} attempts`,
        )
        err.cmdTokens = ['EXISTS']
        throw err
      }
    })
  }

  /** Sends `flush_all`: empties the whole server. @throws StoreUnavailableError naming the server. */
  async flushAll(operation: string): Promise<void> {
    await this.#run(operation, undefined, async () => {
      await this.#client.cmd('flush_all')
    })
  }

  /**
   * Before {@link close}: one last attempt, within `timeout` ms, to repair the keys whose writes failed
   * (or the flush past {@link MAX_PENDING_REPAIRS}) — tried also while the server is thought down: it
   * may be back. A repair already running is waited for instead. Resolves, never rejects, to what is
   * still pending and why (the attempt's failure, or `undefined` when keys were marked meanwhile), or
   * `undefined` when nothing is.
   */
  async repairBeforeClose(): Promise<RepairsLeft | undefined> {
    let error: unknown
    try {
      await this.#repair()
    } catch (err) {
      error = err
    }
    if (this.#dirty.size === 0 && !this.#flushNeeded) return undefined
    return { keys: this.#dirty.size, flush: this.#flushNeeded, error }
  }

  /** Closes the connection (pending repairs are forgotten: see {@link repairBeforeClose}); calls afterwards reject with `StoreClosedError`. */
  close(): void {
    this.#closed = true
    this.#client.shutdown()
  }

  /**
   * Runs one command group against the server: fails fast while it is down, first waits for the
   * pending repairs (each bounded by `timeout`), bounds the command by `timeout`, and turns failures
   * into stockpyle errors.
   * `writtenKeys` (for writes) are marked for repair when the call fails.
   */
  async #run<T>(operation: string, writtenKeys: readonly string[] | undefined, send: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new StoreClosedError(`${this.#settings.owner}: ${operation} was called after close()`)
    if (this.#restarts.quarantined) await this.#leaveQuarantine(operation, writtenKeys)
    const now = performance.now()
    if (this.#down && (this.#retryAt > now || this.#probing)) {
      this.#errors++
      if (writtenKeys !== undefined) this.#markDirty(writtenKeys)
      const cause = this.#lastFailure
      throw new StoreUnavailableError(
        `${this.#settings.owner}: ${operation} on memcache server ${this.address} failed without trying: the server is down (${messageOf(cause)}) and is ${this.#probing ? 'being probed' : `retried in ${Math.ceil(this.#retryAt - now)} ms`}`,
        { cause },
      )
    }
    const probe = this.#down
    if (probe) this.#probing = true
    try {
      const repair = this.#repair()
      if (repair !== undefined) await repair
      const value = await withDeadline(send(), this.#settings.timeout, this.address)
      this.#restarts.answered(now)
      this.#down = false
      this.#outageReported = false
      return value
    } catch (err) {
      this.#restarts.failed(now, err)
      this.#errors++
      if (writtenKeys !== undefined) this.#markDirty(writtenKeys)
      const reply = (err as ReplyError).cmdTokens
      if (reply === undefined) {
        // no reply: connection refused or lost, or no answer in time
        this.#lastFailure = err
        this.#down = true
        this.#retryAt = performance.now() + this.#settings.retryDelay
      } else if (reply?.[0] === 'SERVER_ERROR' && /too large/i.test(reply.join(' '))) {
        throw new ValueTooLargeError(
          `${this.#settings.owner}: ${operation} on memcache server ${this.address} was refused: ${(err as Error).message}`,
          { cause: err },
        )
      }
      throw new StoreUnavailableError(
        `${this.#settings.owner}: ${operation} on memcache server ${this.address} failed: ${(err as Error).message}`,
        { cause: err },
      )
    } finally {
      if (probe) this.#probing = false
    }
  }

  #markDirty(keys: readonly string[]): void {
    const failedAt = this.#settings.now()
    for (const key of keys) this.#markOne(key, failedAt)
  }

  /** Marks `key` for repair, remembering the latest failure of a write to it. */
  #markOne(key: string, failedAt: number): void {
    if (this.#flushNeeded) return
    this.#dirty.set(key, Math.max(failedAt, this.#dirty.get(key) ?? failedAt))
    if (this.#dirty.size > MAX_PENDING_REPAIRS) {
      this.#dirty.clear()
      // A server others use is never flushed (it would drop their entries, as clear() refuses to).
      if (this.#settings.ownsServer) this.#flushNeeded = true
      else this.#restarts.quarantine()
    }
  }

  /**
   * Lets a call through once the quarantined server has restarted since this process last wrote to
   * it (see {@link MemcacheRestartWatch}): it then holds nothing from before. Otherwise the call fails
   * fast, and a write's keys are marked for repair (kept for when it is lifted).
   * @throws StoreUnavailableError naming the server and why.
   */
  async #leaveQuarantine(operation: string, writtenKeys: readonly string[] | undefined): Promise<void> {
    if (await this.#restarts.restarted()) return
    this.#errors++
    if (writtenKeys !== undefined) this.#markDirty(writtenKeys)
    throw new StoreUnavailableError(
      `${this.#settings.owner}: ${operation} on memcache server ${this.address} failed without trying: more than ${MAX_PENDING_REPAIRS} writes to it failed, too many to repair, so it may hold stale entries; it is not flushed (option \`ownsServers\` is false) and is used again once it has restarted`,
    )
  }

  /**
   * The repair in progress, or a new one of the pending keys; undefined when there is nothing to repair.
   * A repair that fails or runs out of time leaves its keys pending again at once: the next command
   * repairs them first, whatever the late answer of this one (a frozen server answers after SIGCONT).
   */
  #repair(): Promise<void> | undefined {
    if (this.#repairing !== undefined) return this.#repairing
    if (!this.#flushNeeded && this.#dirty.size === 0) return undefined
    const flush = this.#flushNeeded
    const pending = flush ? [] : [...this.#dirty]
    this.#flushNeeded = false
    this.#dirty.clear()
    this.#repairRequests += flush ? 1 : pending.length
    const repairing = withDeadline(this.#sendRepairs(flush, pending), this.#settings.timeout, this.address)
      .catch((err: unknown) => {
        if (flush) this.#flushNeeded = true
        for (const [key, failedAt] of pending) this.#markOne(key, failedAt)
        throw err
      })
      .finally(() => {
        this.#repairing = undefined
      })
    this.#repairing = repairing
    return repairing
  }

  async #sendRepairs(flush: boolean, pending: readonly (readonly [string, number])[]): Promise<void> {
    if (flush) {
      await this.#client.cmd('flush_all')
      return
    }
    const repairKey = this.#settings.repairKey
    if (repairKey === undefined) {
      await Promise.all(pending.map(([key]) => deleteKey(this.#client, key)))
      return
    }
    await repairOnServer(this.#client, pending, repairKey, (key, failedAt) => this.#markOne(key, failedAt))
  }
}
