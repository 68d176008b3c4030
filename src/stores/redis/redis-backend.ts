import type { Cluster, Redis } from 'ioredis'
import type { BackendReadOptions, KeyValueBackend, KeyValueBackfill, KeyValueEntry } from '../../contracts/key-value-backend.js'
import { encodeTombstone } from '../../core/codec.js'
import { StoreUnavailableError, UnsupportedOperationError } from '../../core/errors.js'
import type { Clock } from '../../core/lifetime.js'
import { PartialFailureError } from '../../core/partial-failure.js'
import { unavailableUnlessOurs } from '../../core/unavailable-unless-ours.js'
import { withTimeout } from '../../core/with-timeout.js'
import { closeOwnedClient } from './close-owned-client.js'
import { ClusterNodes, type NodeFailure } from './cluster-nodes.js'
import { describeConnection } from './describe-connection.js'
import { heldForMaster } from './held-for-master.js'
import { hideCredentials } from './hide-credentials.js'
import { checkRedisBackendOptions, type RedisBackendOptions } from './redis-backend-options.js'
import { backfillOnNode, refillOnNode } from './redis-backfill.js'
import { unlinkByPrefix } from './redis-clear.js'
import { indicesByMaster, keysByMaster } from './redis-groups.js'
import { CHUNK, check, chunked, queueAdds } from './redis-pipeline.js'
import { NodePipeline } from './redis-redirects.js'
import { repairOnNode } from './redis-repair.js'
import { setOnNode } from './redis-sets.js'

export type { RedisBackendOptions } from './redis-backend-options.js'

/**
 * A {@link KeyValueBackend} over ioredis, for a single Redis node or a Redis Cluster.
 *
 * - `getMany`: one `MGET` of the distinct keys (single node), or one `MGET` per hash slot sent as one
 *   pipeline per cluster node, so a batch costs one round trip per node.
 * - `setMany`: one pipeline of `SET key value [PX ms]` per node (a single node's few commands, e.g. a
 *   put's record and aliases, are sent in one tick without a pipeline: one round trip all the same); the lifetime is the remaining time
 *   to `expiresAt` by the store's clock, rounded up (relative, so clock skew between this process and
 *   the server never cuts an entry short). An entry already expired is deleted instead.
 * - `addMany` (backfills): the same with `NX`, so a copy read before a write or delete never replaces
 *   what that write stored or the tombstone the delete left. `addWithAliases` (single node): the record
 *   `SET NX` — unless an alias key holds a live tombstone — and,
 *   where it was stored, the aliases' `SET`, in one Lua script call per 250 backfills, all in one round trip. For a store with a `grace`, `refillMany` (and `addWithAliases` given
 *   `expiredBy`) also replaces a record (or tombstone) expired by then, kept for stale reads: what the
 *   key holds is checked and replaced in one script step, so a put or delete never lands in between.
 * - `deleteMany`: `DEL` per slot, pipelined per node.
 *
 * Fails fast: every operation is bounded by `timeout` ms and every failure (connection refused, not
 * connected, timeout, reply error) rejects with `StoreUnavailableError` whose `cause` is the ioredis
 * error. The client reconnects by itself in the background. A node out of memory (`maxmemory` with
 * policy `noeviction`) refuses every SET with OOM but still runs DEL: where a `setMany` or a repair was
 * refused so, the copies its keys hold are deleted at once (tombstones kept) before the call rejects,
 * so no old value outlives the failed write.
 *
 * In a cluster each master has its own health: its part of a batch is bounded by `timeout`, and a
 * master that failed is skipped for `retryDelay` ms (its keys fail at once), then probed by one call.
 * When some masters fail and others answer, the call rejects with a `PartialFailureError` naming the
 * positions of the failed masters' keys (reads: with the other masters' values when asked with
 * `partial: true`; otherwise a read rejects with the same error). A reshard is no failure: commands a
 * master redirects (`MOVED`, `ASK`, `TRYAGAIN`) are sent again to the slot's master (see
 * `NodePipeline`) and never open its breaker, nor does a part that times out on a master that answers
 * (see `ClusterNodes`).
 */
export class RedisBackend implements KeyValueBackend {
  readonly name: string
  /** Redis' `proto-max-bulk-len` default: 512 MiB. */
  readonly maxValueBytes = 512 * 1024 * 1024
  readonly #client: Redis | Cluster
  readonly #owns: boolean
  readonly #timeout: number
  readonly #clock: Clock
  readonly #cluster: boolean
  /**
   * Single node only: each record `SET NX` and, where it was stored, its aliases' `SET`, in one Lua
   * script call per 250 backfills, one round trip. `undefined` on a cluster (the store then adds the
   * records and sets the aliases per node, with per-node failures).
   */
  readonly addWithAliases?: (backfills: readonly KeyValueBackfill[], expiredBy?: number) => Promise<boolean[]>
  /**
   * Removes every key starting with `prefix` on the node, or on every master of a cluster, by cursor
   * SCAN and `UNLINK` in bounded batches (never `KEYS` or `FLUSHDB`); each round trip is bounded by
   * `timeout`. On a cluster a reshard during the clear is followed (see `unlinkByPrefix`): slots that
   * moved are swept again, redirected `UNLINK`s sent again. Absent with `clearable: false`.
   * @throws UnsupportedOperationError for an empty prefix; StoreUnavailableError naming the master
   * that failed, or saying the cluster kept resharding (keys of the prefix may remain).
   */
  readonly clear?: (prefix: string) => Promise<void>
  readonly #nodes: ClusterNodes
  #connecting: Promise<void> | undefined
  #lastError: Error | undefined
  /** The server's refusal of SELECT on the last connection: the cause to report over what followed it. */
  #selectRefused: Error | undefined
  readonly #onError = (err: Error): void => {
    this.#lastError = hideCredentials(err)
    // A refused SELECT (no such database; an ACL user without it) leaves ioredis on database 0, and the
    // connection turns ready right after: drop it so nothing is read or written in another database.
    if ((err as { command?: { name?: string } }).command?.name === 'select' && !this.#cluster) {
      this.#selectRefused = err
      ;(this.#client as { stream?: { destroy(): void } }).stream?.destroy()
    }
  }
  readonly #onReady = (): void => {
    this.#selectRefused = undefined
  }

  /** @throws InvalidOptionError (synchronously) naming an unknown, missing or invalid option. */
  constructor(options: RedisBackendOptions) {
    const checked = checkRedisBackendOptions(options)
    this.#client = checked.client
    this.#owns = checked.ownsClient
    this.#timeout = checked.timeout
    this.#clock = checked.clock
    this.name = checked.name
    this.#cluster = checked.cluster
    // a record and its aliases live in different hash slots of a cluster: no script can touch them together
    if (!this.#cluster) this.addWithAliases = (backfills, expiredBy) => this.#addWithAliases(backfills, expiredBy)
    if (checked.clearable) this.clear = (prefix) => this.#clear(prefix)
    this.#nodes = new ClusterNodes(this.name, checked.timeout, checked.retryDelay)
    // ioredis drops a dead master from its pool and sends its slots' pipelines elsewhere (MOVED back to
    // it, followed one command at a time): a fresh slot map finds it again.
    this.#nodes.onFailure = () => {
      try {
        ;(this.#client as Cluster).refreshSlotsCache()
      } catch {
        // a refresh already running, or a closing client: the next failure tries again
      }
    }
    this.#nodes.describe = (node) => describeConnection(this.#client as Cluster, node)
    this.#nodes.held = (node) => heldForMaster(this.#client as Cluster, node)
    // an owned client's errors are reported through the operations that hit them, never as an unhandled 'error' event
    if (this.#owns) this.#client.on('error', this.#onError).on('ready', this.#onReady)
  }

  /** The ioredis client in use. */
  get client(): Redis | Cluster {
    return this.#client
  }

  async getMany(keys: readonly string[], options?: BackendReadOptions): Promise<(Uint8Array | undefined)[]> {
    if (keys.length === 0) return []
    const unique = keys.length === 1 ? (keys as string[]) : [...new Set(keys)]
    let failures: NodeFailure<string[][]>[] = []
    const values = await this.#guard('get', async () => {
      if (!this.#cluster && unique.length <= CHUNK) return (this.#client as Redis).mgetBuffer(unique)
      const groups = this.#groups(unique)
      const found = new Map<string, Buffer | null>()
      failures = await this.#each('get', groups, async (group) => {
        const chunks = group.flatMap((slotKeys) => chunked(slotKeys))
        if (chunks.length === 1) {
          const chunk = chunks[0] as string[]
          const values = await this.#client.mgetBuffer(chunk)
          for (let i = 0; i < chunk.length; i++) found.set(chunk[i] as string, values[i] ?? null)
          return
        }
        const pipeline = new NodePipeline()
        for (const chunk of chunks) pipeline.callBuffer('mget', ...chunk)
        const results = check(await pipeline.exec(this.#client))
        chunks.forEach((chunk, c) => {
          const values = results[c] as (Buffer | null)[]
          for (let i = 0; i < chunk.length; i++) found.set(chunk[i] as string, values[i] ?? null)
        })
      })
      return unique.map((key) => found.get(key) ?? null)
    })
    let out: (Uint8Array | undefined)[]
    if (unique.length === keys.length) out = values.map((v) => v ?? undefined)
    else {
      const byKey = new Map(unique.map((key, i) => [key, values[i] ?? undefined]))
      out = keys.map((key) => byKey.get(key))
    }
    if (failures.length > 0) throw this.#partial('get', keys, failures, flat, options?.partial === true ? out : undefined)
    return out
  }

  async setMany(entries: readonly KeyValueEntry[]): Promise<void> {
    if (entries.length === 0) return
    const last = new Map<string, KeyValueEntry>()
    for (const entry of entries) {
      last.delete(entry.key) // later entries win; re-insert to keep write order
      last.set(entry.key, entry)
    }
    const unique = [...last.values()]
    const now = this.#clock.now()
    const failures = await this.#guard('set', () =>
      this.#each('set', this.#nodeGroups(unique.map((e) => e.key)), (indices) =>
        setOnNode(this.#client, this.#cluster, unique, indices, now),
      ),
    )
    if (failures.length > 0) throw this.#partial('set', entries.map(keyOf), failures, (ix) => ix.map((i) => keyOf(unique[i])))
  }

  /**
   * `SET key value [PX ms] NX` per entry, pipelined per node: stores an entry only where its key holds
   * nothing, atomically on the server. Resolves to whether each entry (same order) was stored; of two
   * entries for one key only the first can be. An entry already expired is not stored (`false`).
   */
  async addMany(entries: readonly KeyValueEntry[]): Promise<boolean[]> {
    const added: boolean[] = new Array(entries.length).fill(false)
    if (entries.length === 0) return added
    const now = this.#clock.now()
    const failures = await this.#guard('add', () =>
      this.#each('add', this.#nodeGroups(entries.map((e) => e.key)), async (indices) => {
        {
          const pipeline = new NodePipeline()
          const sent = queueAdds(pipeline, entries, indices, now)
          if (sent.length === 0) return
          const results = check(await pipeline.exec(this.#client))
          sent.forEach((i, j) => {
            added[i] = results[j] === 'OK'
          })
        }
      }),
    )
    if (failures.length > 0) throw this.#partial('add', entries.map(keyOf), failures, (ix) => ix.map((i) => keyOf(entries[i])), added)
    return added
  }

  async #addWithAliases(backfills: readonly KeyValueBackfill[], expiredBy: number | undefined): Promise<boolean[]> {
    if (backfills.length === 0) return []
    const now = this.#clock.now()
    return this.#guard('add', () => backfillOnNode(this.#client as Redis, backfills, now, expiredBy))
  }

  /**
   * Like {@link addMany}, and also over an expired record kept for grace or an expired tombstone (see
   * {@link KeyValueBackend.refillMany}): per key, one Lua script step checks what the key holds and
   * stores the entry; one script call per hash slot and 250 entries.
   */
  async refillMany(entries: readonly KeyValueEntry[], expiredBy: number): Promise<boolean[]> {
    const added: boolean[] = new Array(entries.length).fill(false)
    if (entries.length === 0) return added
    const now = this.#clock.now()
    const keys = entries.map((e) => e.key)
    const failures = await this.#guard('add', () =>
      this.#each('add', this.#nodeGroups(keys), (indices) =>
        refillOnNode(this.#client, entries, indices, this.#cluster, now, expiredBy, added),
      ),
    )
    if (failures.length > 0) throw this.#partial('add', keys, failures, (ix) => ix.map((i) => keys[i] as string), added)
    return added
  }

  /**
   * Repairs each key in one Lua script step on its node (see {@link KeyValueBackend.repairMany}): one
   * script call per hash slot and 500 keys, pipelined per node.
   */
  async repairMany(keys: readonly string[], until: number): Promise<void> {
    if (keys.length === 0) return
    const tombstone = encodeTombstone(until)
    const px = Math.ceil(until - this.#clock.now())
    const failures = await this.#guard('repair', () =>
      this.#each('repair', this.#groups([...new Set(keys)]), (group) => repairOnNode(this.#client, group, tombstone, px)),
    )
    if (failures.length > 0) throw this.#partial('repair', keys, failures, flat)
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return
    const unique = [...new Set(keys)]
    const failures = await this.#guard('delete', async () => {
      if (!this.#cluster && unique.length <= CHUNK) {
        await this.#client.del(unique)
        return []
      }
      return this.#each('delete', this.#groups(unique), async (group) => {
        const pipeline = new NodePipeline()
        for (const slotKeys of group) for (const chunk of chunked(slotKeys)) pipeline.call('del', ...chunk)
        check(await pipeline.exec(this.#client))
      })
    })
    if (failures.length > 0) throw this.#partial('delete', keys, failures, flat)
  }

  /**
   * Runs `work` for each node's group: all at once on a single node (its failure is the call's); per
   * master in a cluster, each under its own timeout and health, resolving with the masters that failed.
   */
  async #each<G>(operation: string, groups: Map<string, G>, work: (group: G) => Promise<void>): Promise<NodeFailure<G>[]> {
    if (!this.#cluster) {
      await Promise.all([...groups.values()].map(work))
      return []
    }
    return this.#nodes.run(operation, groups, work)
  }

  /**
   * The PartialFailureError of a cluster call: the positions of `keys` sent to a master that failed
   * (`keysOf` its part). Not by the slot map after the failure: a failover's refresh may already name
   * another master for them, and a key left out of `failed` would never be repaired.
   */
  #partial<G>(
    operation: string,
    keys: readonly string[],
    failures: readonly NodeFailure<G>[],
    keysOf: (group: G) => readonly string[],
    results?: readonly unknown[],
  ): PartialFailureError {
    const down = new Set(failures.map((f) => f.node))
    const sent = new Set(failures.flatMap((f) => keysOf(f.group)))
    const failed: number[] = []
    keys.forEach((key, i) => {
      if (sent.has(key)) failed.push(i)
    })
    const errors = failures.map((f) => f.error)
    return new PartialFailureError(
      `${this.name} store ${operation}: ${failed.length} of ${keys.length} key(s) on failed master(s) ${[...down].join(', ')}: ${errors.map((e) => e.message).join('; ')}`,
      { failed, results, nodes: [...down], cause: errors.length === 1 ? errors[0] : new AggregateError(errors, `${operation} failures`) },
    )
  }

  async #clear(prefix: string): Promise<void> {
    if (prefix === '') throw new UnsupportedOperationError(`${this.name} store cannot clear() without a prefix: every key would go`)
    await unlinkByPrefix(this.#client, prefix, {
      owner: this.name,
      step: (work, node) => this.#guard(node === undefined ? 'clear' : `clear on master ${node}`, work),
    })
  }

  async close(): Promise<void> {
    if (!this.#owns) return
    await closeOwnedClient(this.#client, this.#cluster, this.#timeout, () => this.#timedOut('close'))
    this.#client.off('error', this.#onError).off('ready', this.#onReady)
  }

  /** Indices of `keys` grouped by the master serving them (one group for a single node), in order. */
  #nodeGroups(keys: readonly string[]): Map<string, number[]> {
    return indicesByMaster(this.#cluster ? (this.#client as Cluster).slots : undefined, keys)
  }

  /** Keys grouped for pipelining: per master, a list of per-slot key lists (one list on a single node). */
  #groups(keys: readonly string[]): Map<string, string[][]> {
    return keysByMaster(this.#cluster ? (this.#client as Cluster).slots : undefined, keys)
  }

  /** Runs `work` once the client is ready, bounded by the timeout; every failure becomes `StoreUnavailableError`. */
  async #guard<T>(operation: string, work: () => Promise<T>): Promise<T> {
    const run = async () => {
      if (this.#client.status !== 'ready') await this.#ready(operation)
      return work()
    }
    try {
      // In a cluster each master's part has its own deadline (a late master is a partial failure), so the
      // whole call gets room for the first connection and those deadlines.
      return await withTimeout(run(), this.#cluster ? 2 * this.#timeout : this.#timeout, () => this.#timedOut(operation))
    } catch (err) {
      throw unavailableUnlessOurs(hideCredentials(err), `${this.name} store ${operation}`)
    }
  }

  #timedOut(operation: string): StoreUnavailableError {
    return new StoreUnavailableError(`${this.name} store ${operation}: no answer within ${this.#timeout} ms (option \`timeout\`)`)
  }

  /**
   * Resolves when the client is ready. A client that never connected (or is connecting right now) is
   * waited for; one that lost its connection and is waiting to reconnect fails at once — a cache
   * layer that is down must answer fast.
   */
  #ready(operation: string): Promise<void> {
    const client = this.#client
    const status = client.status
    if (status === 'ready') return Promise.resolve()
    if (status === 'wait' || status === 'connecting' || status === 'connect') {
      this.#connecting ??= new Promise<void>((resolve, reject) => {
        const done = (): void => {
          client.off('ready', onReady)
          client.off('close', onClose)
          client.off('end', onClose)
          this.#connecting = undefined
        }
        const onReady = (): void => {
          done()
          resolve()
        }
        const onClose = (): void => {
          done()
          reject(this.#unavailable(operation, 'the connection failed'))
        }
        client.once('ready', onReady)
        client.once('close', onClose)
        client.once('end', onClose)
        if (client.status === 'wait') client.connect().catch(() => {})
      })
      return this.#connecting
    }
    return Promise.reject(this.#unavailable(operation, `not connected (${status})`))
  }

  #unavailable(operation: string, what: string): StoreUnavailableError {
    const cause = this.#selectRefused ?? this.#lastError
    const detail = cause === undefined ? '' : `: ${cause.message}`
    return new StoreUnavailableError(`${this.name} store ${operation}: ${what}${detail}`, cause === undefined ? {} : { cause })
  }
}

const keyOf = (entry: KeyValueEntry | undefined): string => (entry as KeyValueEntry).key
const flat = (group: string[][]): string[] => group.flat()
