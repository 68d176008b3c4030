import type { Client, ClientConfig } from 'pg'
import { backoff } from '../../core/backoff.js'
import { detach } from '../../core/detach.js'
import { StoreUnavailableError } from '../../core/errors.js'
import { withTimeout } from '../../core/with-timeout.js'
import { loadPg, quoteIdent } from './pg-driver.js'

/** Options of {@link PgListener}. */
export interface PgListenerOptions {
  /** Name for messages. */
  readonly name: string
  /** Where to connect (pg client options). */
  readonly config: ClientConfig
  /** Channels to LISTEN on. */
  readonly channels: readonly string[]
  /** Ms allowed for connecting, for the LISTEN commands and for a heartbeat query. */
  readonly timeout: number
  /** Ms between heartbeat queries (`SELECT 1`, or `heartbeatQuery`'s); `0` = none. */
  readonly heartbeatInterval: number
  /**
   * The query each heartbeat runs on the LISTEN connection instead of `SELECT 1` (`values` are its
   * parameters): it must be answered within `timeout` like `SELECT 1`, and any failure counts as the
   * connection not answering. Asked at every heartbeat; `undefined` (or no option): `SELECT 1`.
   */
  readonly heartbeatQuery?: (() => { readonly text: string; readonly values: readonly unknown[] } | undefined) | undefined
  /** Receives the rows of each answered `heartbeatQuery` (what it throws goes to `onError`). */
  readonly onHeartbeat?: ((rows: readonly Record<string, unknown>[]) => void) | undefined
  /** Longest wait in ms between reconnect attempts. */
  readonly maxBackoff: number
  /** A notification arrived on the current connection (possibly just before `onUp`). */
  readonly onNotification: (channel: string, payload: string) => void
  /** Connected and every LISTEN confirmed. */
  readonly onUp: () => void
  /** The connection was lost (called once per outage, only after `onUp`). */
  readonly onDown: () => void
  /** The first error of each outage (connection refused, terminated, heartbeat unanswered, …). */
  readonly onError: (error: unknown) => void
}

interface Attempt {
  readonly client: Client
  dead: boolean
}

/**
 * A dedicated PostgreSQL connection that LISTENs on some channels and keeps doing so: it reconnects
 * with backoff (100 ms doubling up to `maxBackoff`) whenever the connection fails, and a heartbeat
 * query detects a server that stopped answering. LISTEN needs a session of its own, so this is never
 * a pooled connection.
 */
export class PgListener {
  readonly #options: PgListenerOptions
  #current: Attempt | undefined
  #retry: NodeJS.Timeout | undefined
  #heartbeat: NodeJS.Timeout | undefined
  #attempts = 0
  #up = false
  #reported = false
  #started = false
  #closed = false

  constructor(options: PgListenerOptions) {
    this.#options = options
  }

  /** True while connected with every LISTEN confirmed. */
  get up(): boolean {
    return this.#up
  }

  /** Starts connecting (once). */
  start(): void {
    if (this.#started || this.#closed) return
    this.#started = true
    // Fire-and-forget on purpose: connecting reports its own failures and retries; anything else is a loss.
    detach(this.#connect(), (err) => this.#lost(err))
  }

  /**
   * Ends the connection and stops reconnecting: whatever point connecting or reconnecting is at, no
   * connection is left open afterwards (one being set up is ended too). Does not call `onDown`. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#up = false
    clearTimeout(this.#retry)
    this.#stopHeartbeat()
    const attempt = this.#current
    this.#current = undefined
    if (attempt !== undefined) {
      attempt.dead = true
      await withTimeout(attempt.client.end(), this.#options.timeout, () => new Error('timeout')).catch(() => {})
      destroy(attempt.client)
    }
  }

  async #connect(): Promise<void> {
    if (this.#closed) return
    const { config, timeout, name } = this.#options
    let attempt: Attempt
    try {
      const { Client } = await loadPg(name)
      // closed while pg loaded: connect nothing (close() saw no client to end)
      if (this.#closed) return
      attempt = {
        // application_name: so the session is recognisable in pg_stat_activity
        client: new Client({
          application_name: 'stockpyle-listen',
          ...config,
          connectionTimeoutMillis: config.connectionTimeoutMillis ?? timeout,
          keepAlive: true,
        }),
        dead: false,
      }
    } catch (err) {
      this.#lost(err)
      this.#schedule()
      return
    }
    const { client } = attempt
    this.#current = attempt
    client.on('error', (err) => this.#fail(attempt, err))
    client.on('end', () => this.#fail(attempt, new StoreUnavailableError(`${name}: the LISTEN connection ended`)))
    // Not gated on `up`: a notification parsed from the same packet as LISTEN's reply comes before `onUp`.
    client.on('notification', (msg) => {
      if (!attempt.dead) this.#options.onNotification(msg.channel, msg.payload ?? '')
    })
    try {
      await client.connect()
      for (const channel of this.#options.channels) {
        await withTimeout(
          client.query(`LISTEN ${quoteIdent(channel)}`),
          timeout,
          () => new Error(`LISTEN not confirmed within ${timeout} ms`),
        )
      }
    } catch (err) {
      this.#fail(attempt, new StoreUnavailableError(`${name}: cannot LISTEN: ${(err as Error).message}`, { cause: err }))
      return
    }
    if (attempt.dead || this.#closed) {
      this.#fail(attempt, new StoreUnavailableError(`${name}: closed while connecting`)) // never leave a session open
      return
    }
    this.#attempts = 0
    this.#reported = false
    this.#up = true
    this.#startHeartbeat(attempt)
    this.#options.onUp()
  }

  #fail(attempt: Attempt, err: unknown): void {
    if (attempt.dead) return
    attempt.dead = true
    destroy(attempt.client)
    if (this.#current !== attempt || this.#closed) return
    this.#current = undefined
    this.#lost(err)
    this.#schedule()
  }

  #lost(err: unknown): void {
    this.#stopHeartbeat()
    if (!this.#reported) {
      this.#reported = true
      this.#options.onError(err)
    }
    if (this.#up) {
      this.#up = false
      this.#options.onDown()
    }
  }

  #schedule(): void {
    if (this.#closed) return
    clearTimeout(this.#retry)
    this.#retry = setTimeout(() => detach(this.#connect(), (err) => this.#lost(err)), backoff(++this.#attempts, this.#options.maxBackoff))
  }

  #startHeartbeat(attempt: Attempt): void {
    this.#stopHeartbeat()
    const { heartbeatInterval, timeout, name } = this.#options
    if (heartbeatInterval === 0) return
    let inFlight = false
    this.#heartbeat = setInterval(() => {
      if (inFlight || attempt.dead) return
      inFlight = true
      const query = this.#options.heartbeatQuery?.()
      const sent = query === undefined ? attempt.client.query('SELECT 1') : attempt.client.query(query.text, [...query.values])
      withTimeout(sent, timeout, () => new Error(`no answer to a heartbeat within ${timeout} ms`))
        .then(
          (result) => {
            if (query === undefined || attempt.dead) return
            try {
              this.#options.onHeartbeat?.(result.rows)
            } catch (err) {
              this.#options.onError(err)
            }
          },
          (err: unknown) =>
            this.#fail(
              attempt,
              new StoreUnavailableError(`${name}: the LISTEN connection is not answering: ${(err as Error).message}`, { cause: err }),
            ),
        )
        .finally(() => {
          inFlight = false
        })
    }, heartbeatInterval)
    this.#heartbeat.unref()
  }

  #stopHeartbeat(): void {
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat)
    this.#heartbeat = undefined
  }
}

/** Ends a client without waiting (a frozen server would never answer), dropping its socket. */
function destroy(client: Client): void {
  client.end().catch(() => {})
  ;(client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy()
}
