import type { InvalidationBus, InvalidationListener } from '../contracts/invalidation-bus.js'
import { InvalidOptionError, StockpyleError, StoreClosedError, show } from '../core/errors.js'
import {
  type PgClientConfig as ClientConfig,
  checkChannel,
  checkPool,
  listenConfig,
  loadPg,
  type PgPool as Pool,
  type PgPoolClient as PoolClient,
} from '../stores/sql/pg-driver.js'
import { PgListener } from '../stores/sql/pg-listener.js'
import { executeRaw, type Kysely } from '../stores/sql/postgres-access.js'
import { BusListeners } from './bus-listeners.js'
import { checkListener, decodeMessage, newOrigin, publishFailed, publishMessages, publishUnavailable } from './bus-message.js'
import { callbackOption, checkKnown, errorReporter, msOption, withTimeout } from './bus-options.js'

/**
 * Options of {@link PostgresBus}. The bus LISTENs on a dedicated connection made from `url`,
 * `connection` or the options of `pool`, and publishes through `db`, else `pool`, else a small pool
 * of its own.
 */
export interface PostgresBusOptions {
  /** `postgres://user:password@host:port/database`. */
  url?: string | undefined
  /** pg client options (host, port, user, password, database, ssl, …), instead of `url`. */
  connection?: ClientConfig | undefined
  /** A pg Pool you own to publish through (never closed by the bus); without `url`/`connection` its options also configure the LISTEN connection. */
  pool?: Pool | undefined
  /** A Kysely instance (on PostgreSQL) you own to publish through, e.g. `await sqlStore.kysely()`; needs `url`, `connection` or `pool` for LISTEN. */
  db?: Kysely<any> | undefined
  /** The NOTIFY channel: at most 63 bytes. Default `'stockpyle_invalidate'`. Every process of one application must use the same. */
  channel?: string | undefined
  /** Upper bound in ms for a publish, for connecting and LISTEN, and for a heartbeat query. Default `1000`. */
  timeout?: number | undefined
  /** Ms between heartbeat queries on the LISTEN connection, so a frozen server is noticed within `heartbeatInterval + timeout`. `0` = off. Default `2000`. */
  heartbeatInterval?: number | undefined
  /** Longest wait in ms between reconnect attempts of the LISTEN connection (doubling from 100 ms). Default `2000`. */
  maxBackoff?: number | undefined
  /**
   * Receives what cannot be thrown to a caller: LISTEN connection errors (the first of each outage),
   * malformed notifications (a `StockpyleError` `E_STOCKPYLE`: no outage), what listeners throw or
   * their promises reject with. Default
   * (undefined): the bus's first such error is one process warning `STOCKPYLE_INVALIDATION_ERROR`
   * naming the bus and the error; later ones are dropped. What `onError` throws, or its promise
   * rejects with, is one process warning `STOCKPYLE_CALLBACK` (the first time; later ones are dropped).
   */
  onError?: ((error: unknown) => void) | undefined
  /** Name for messages; default `postgres-bus(host:port/database)`. */
  name?: string | undefined
}

const KNOWN = ['url', 'connection', 'pool', 'db', 'channel', 'timeout', 'heartbeatInterval', 'maxBackoff', 'onError', 'name'] as const
/** NOTIFY payloads must be shorter than 8000 bytes. */
const MAX_PAYLOAD_BYTES = 7999
const PUBLISH_SQL = 'select pg_notify($1, p) from unnest($2::text[]) as p'

/**
 * An {@link InvalidationBus} over PostgreSQL LISTEN/NOTIFY (pg 8): `publish` sends
 * `{"o": origin, "k": keys}` with `pg_notify`, split into payloads under PostgreSQL's 8000-byte limit
 * (all of one publish in one statement, so they arrive together), and every other `PostgresBus` on the
 * same database and channel delivers the keys to its listeners. A bus never delivers its own messages
 * (each instance has a random origin id).
 *
 * - Publishing fails fast: a publish that fails or gets no answer within `timeout` ms rejects with
 *   `StoreUnavailableError`.
 * - The LISTEN connection is dedicated (LISTEN needs its own session) and reconnects by itself with
 *   backoff. Listeners get `onDown` when it fails or misses a heartbeat and `onUp` once LISTEN is
 *   confirmed again. NOTIFY is at-most-once for a listener that is disconnected: what was sent
 *   meanwhile is lost for it, which is why a `ProcessMemoryStore` serves nothing between `onDown` and
 *   `onUp` and is cleared on `onUp`.
 * - Errors no caller can be given (the LISTEN connection, malformed notifications, failing listeners)
 *   go to `onError`; without it, the bus's first one is one process warning
 *   `STOCKPYLE_INVALIDATION_ERROR` and later ones are dropped. A malformed notification is a
 *   `StockpyleError` (`E_STOCKPYLE`), not a `StoreUnavailableError`: it says nothing about the server.
 *
 * @example
 * const bus = new PostgresBus({ url: 'postgres://app@db/app' })
 * const memory = new ProcessMemoryStore({ bus, lifetime: 60 })
 * @throws InvalidOptionError (synchronously) naming an invalid option.
 */
export class PostgresBus implements InvalidationBus {
  readonly name: string
  /** The NOTIFY channel. */
  readonly channel: string
  /** This instance's origin id: messages carrying it are not delivered here. */
  readonly origin = newOrigin()
  readonly #config: ClientConfig
  readonly #userPool: Pool | undefined
  readonly #db: Kysely<any> | undefined
  readonly #timeout: number
  /**
   * Hands an error to `onError` (what that throws or rejects with: one process warning, never the bus's
   * failure); without `onError`, the first error is one process warning. Never throws.
   */
  readonly #report: (err: unknown) => void
  readonly #listeners: BusListeners
  readonly #listener: PgListener
  #ownPool: Promise<Pool> | undefined
  /**
   * The publishes under way, each settling within `timeout` ms: close() lets them finish before it ends
   * the pool (pg-pool's `end()` never serves the queries still waiting for a connection).
   */
  readonly #inFlight = new Set<Promise<void>>()
  /** The own pool's clients running a publish: one still busy when the publishes settled is on a frozen server. */
  readonly #busy = new Set<PoolClient>()
  #closed = false
  #closing: Promise<void> | undefined

  constructor(options: PostgresBusOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError(`postgres bus: options must be an object, got ${show(options)}`)
    }
    checkKnown('postgres bus', options, KNOWN)
    this.#config = listenConfig('postgres bus', options)
    if (options.pool !== undefined) checkPool('postgres bus', options.pool)
    const db = options.db as Partial<Kysely<any>> | undefined
    if (db !== undefined && (typeof db !== 'object' || db === null || typeof db.executeQuery !== 'function')) {
      throw new InvalidOptionError(`postgres bus: option \`db\` must be a Kysely instance, got ${show(db)}`)
    }
    if (options.name !== undefined && (typeof options.name !== 'string' || options.name === '')) {
      throw new InvalidOptionError(`postgres bus: option \`name\` must be a non-empty string, got ${show(options.name)}`)
    }
    this.channel = checkChannel('postgres bus', options.channel ?? 'stockpyle_invalidate')
    this.#timeout = msOption('postgres bus', 'timeout', options.timeout, 1000)
    const heartbeatInterval = msOption('postgres bus', 'heartbeatInterval', options.heartbeatInterval, 2000, true)
    const maxBackoff = msOption('postgres bus', 'maxBackoff', options.maxBackoff, 2000)
    const onError = callbackOption<(error: unknown) => void>('postgres bus', 'onError', options.onError)
    this.#userPool = options.pool
    this.#db = options.db
    this.name = options.name ?? `postgres-bus(${describeTarget(this.#config)})`
    this.#report = errorReporter(this.name, onError)
    this.#listeners = new BusListeners(this.#report)
    this.#listener = new PgListener({
      name: this.name,
      config: this.#config,
      channels: [this.channel],
      timeout: this.#timeout,
      heartbeatInterval,
      maxBackoff,
      onNotification: (_channel, payload) => this.#deliver(payload),
      onUp: () => this.#listeners.markUp(),
      onDown: () => this.#listeners.down(),
      onError: this.#report,
    })
  }

  /** True while the LISTEN connection is up (listeners are up). */
  get subscribed(): boolean {
    return this.#listeners.up
  }

  /**
   * Sends the keys to every other bus on the channel with `pg_notify`, in payloads of under 8000
   * bytes, in one statement. Resolves once PostgreSQL ran it; `[]` sends nothing.
   * @throws StoreUnavailableError when the database cannot be reached or does not answer within `timeout` ms.
   * @throws StoreClosedError after `close()`, or when `close()` was called while this publish was
   * under way and it then failed (the cause says why).
   * @throws InvalidArgumentError (a rejection) when `keys` is not an array of strings.
   * @throws ValueTooLargeError when a single key does not fit into one payload.
   */
  async publish(keys: readonly string[]): Promise<void> {
    const payloads = publishMessages(this.name, this.origin, this.#closed, keys, MAX_PAYLOAD_BYTES)
    if (payloads.length === 0) return
    const work = withTimeout(this.#notify(payloads), this.#timeout, () =>
      publishUnavailable(this.name, this.channel, `no answer within ${this.#timeout} ms (option \`timeout\`)`),
    )
    this.#inFlight.add(work)
    try {
      await work
    } catch (err) {
      const failure = publishFailed(this.name, this.channel, err)
      if (this.#closed) throw new StoreClosedError(`${this.name} was closed while publishing`, { cause: failure })
      throw failure
    } finally {
      this.#inFlight.delete(work)
    }
  }

  async #notify(payloads: string[]): Promise<void> {
    const params = [this.channel, payloads]
    if (this.#db !== undefined) {
      await executeRaw(this.name, this.#db, PUBLISH_SQL, params)
      return
    }
    if (this.#userPool !== undefined) {
      await this.#userPool.query(PUBLISH_SQL, params)
      return
    }
    const client = await (await this.#pool()).connect()
    // pg-pool listens for a client's errors only while it is idle: a connection lost during the query
    // would be an 'error' event nobody handles, ending the process (the query's rejection carries it).
    client.on('error', ignoreError)
    this.#busy.add(client)
    try {
      await client.query(PUBLISH_SQL, params)
      client.off('error', ignoreError)
      client.release()
    } catch (err) {
      client.release(err as Error) // the pool drops it (the listener stays: its socket may still report)
      throw err
    } finally {
      this.#busy.delete(client)
    }
  }

  #pool(): Promise<Pool> {
    this.#ownPool ??= loadPg(this.name).then(({ Pool }) => {
      const pool = new Pool({ ...this.#config, max: 2, idleTimeoutMillis: 10_000, connectionTimeoutMillis: this.#timeout })
      pool.on('error', () => {}) // an idle client that lost its server: the next publish reports it
      return pool
    })
    this.#ownPool.catch(() => {
      this.#ownPool = undefined
    })
    return this.#ownPool
  }

  /**
   * Delivers other buses' invalidations to `listener`, opening the LISTEN connection on first use.
   * Calls `listener.onUp()` right away only when already listening; otherwise `onUp` follows once
   * LISTEN is confirmed.
   * @returns a function that stops the delivery to this listener.
   * @throws StoreClosedError after `close()`; InvalidArgumentError for a listener without onInvalidate, onDown and onUp.
   */
  subscribe(listener: InvalidationListener): () => void {
    if (this.#closed) throw new StoreClosedError(`${this.name} is closed: subscribe was called after close()`)
    checkListener(this.name, listener)
    const remove = this.#listeners.add(listener)
    this.#listener.start()
    return remove
  }

  /**
   * Ends the LISTEN connection and the bus's own pool (never a `pool` or `db` you passed) and tells the
   * listeners `onDown`. Publishes under way are let finish first (each within its `timeout` ms); one
   * that fails meanwhile rejects with `StoreClosedError`. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    this.#closed = true
    this.#listeners.down()
    this.#listeners.clear()
    await Promise.all([this.#listener.close(), this.#endPool()])
  }

  async #endPool(): Promise<void> {
    // each publish settles within `timeout` ms of its start, so this waits at most that long
    if (this.#inFlight.size > 0) await Promise.allSettled(this.#inFlight)
    // a query that got no answer holds its client, and pool.end() waits for every client: drop its socket
    for (const client of this.#busy) {
      ;(client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy()
    }
    const pool = await this.#ownPool?.catch(() => undefined)
    await pool?.end().catch(() => {})
  }

  #deliver(payload: string): void {
    const message = decodeMessage(payload)
    if (message === undefined) {
      // a third party's junk on the channel: no outage (an onError counting outages by class must not count it)
      this.#report(new StockpyleError(`${this.name}: ignored a malformed notification on ${show(this.channel)}: ${show(payload)}`))
      return
    }
    if (message.o === this.origin || message.k.length === 0) return
    this.#listeners.invalidate(message.k)
  }
}

/** `host:port/database` for names, without credentials. */
export function describeTarget(config: ClientConfig): string {
  if (config.connectionString !== undefined) {
    try {
      const url = new URL(config.connectionString)
      return `${url.hostname}:${url.port || 5432}${url.pathname}`
    } catch {
      return 'postgres'
    }
  }
  return `${config.host ?? 'localhost'}:${config.port ?? 5432}/${config.database ?? ''}`
}

/** What a publishing client's 'error' event does: nothing (the query it runs rejects with the error). */
function ignoreError(): void {}
