import type { Redis, RedisOptions } from 'ioredis'
import type { InvalidationBus, InvalidationListener } from '../contracts/invalidation-bus.js'
import { detach } from '../core/detach.js'
import { InvalidOptionError, StockpyleError, StoreClosedError, StoreUnavailableError, show } from '../core/errors.js'
import { hideCredentials } from '../stores/redis/hide-credentials.js'
import { checkRedisOptions, REDIS_BUS_OWNED } from '../stores/redis/owned-redis-options.js'
import { checkRedisUrl } from '../stores/redis/redis-url.js'
import { BusListeners } from './bus-listeners.js'
import { checkListener, decodeMessage, newOrigin, publishFailed, publishMessages, publishUnavailable } from './bus-message.js'
import { backoff, callbackOption, checkKnown, clientBackstop, errorReporter, msOption, withTimeout } from './bus-options.js'
import { checkUrlOverlap, DEFAULT_URL, KNOWN, MAX_MESSAGE_BYTES, type RedisBusOptions } from './redis-bus-options.js'
import { busName, destroyStream, loadIoredis, nextReady, quit, type ReadyWait } from './redis-connection.js'

/**
 * An {@link InvalidationBus} over Redis pub/sub (ioredis 5): `publish` sends `{"o": origin, "k": keys}`
 * on the channel (split into messages of at most 64 KiB), and every other `RedisBus` instance
 * subscribed to the channel delivers the keys to its listeners. A bus never delivers its own messages
 * (each instance has a random origin id), so give each process (each memory layer) its own bus.
 *
 * - Publishing fails fast: while the publisher is not connected, `publish` rejects at once with
 *   `StoreUnavailableError` (it waits up to `timeout` only for the very first connection), and a
 *   publish that gets no answer within `timeout` ms rejects too.
 * - The subscriber is a dedicated connection that reconnects by itself (backoff up to `maxBackoff`).
 *   Listeners get `onDown` when it closes, errs or misses a heartbeat, and `onUp` once it is
 *   connected and the SUBSCRIBE is confirmed again. Pub/sub is at-most-once: what was published
 *   while a subscriber was down is lost for it — which is why a `ProcessMemoryStore` serves nothing
 *   between `onDown` and `onUp` and is cleared on `onUp`.
 * - Errors no caller can be given (the subscriber's connection, malformed messages, failing
 *   listeners) go to `onError`; without it, the bus's first one is one process warning
 *   `STOCKPYLE_INVALIDATION_ERROR` and later ones are dropped. A malformed message is a
 *   `StockpyleError` (`E_STOCKPYLE`), not a `StoreUnavailableError`: it says nothing about the server.
 * - `close()` lets the publishes under way finish (each within `timeout` ms) before it ends the
 *   publisher: on a healthy server they are sent, also those still waiting for the first connection.
 *
 * Single Redis nodes only (a Redis Cluster client is not supported as `client`).
 *
 * @example
 * const bus = new RedisBus({ url: 'redis://127.0.0.1:6379' })
 * const memory = new ProcessMemoryStore({ bus, lifetime: 60 })
 * @throws InvalidOptionError (synchronously) naming an invalid option.
 */
export class RedisBus implements InvalidationBus {
  readonly name: string
  /** The channel messages are published on. */
  readonly channel: string
  /** This instance's origin id: messages carrying it are not delivered here. */
  readonly origin = newOrigin()
  readonly #url: string | undefined
  readonly #userClient: Redis | undefined
  readonly #redisOptions: RedisOptions | undefined
  readonly #timeout: number
  readonly #heartbeatMs: number
  readonly #maxBackoff: number
  /**
   * Hands an error to `onError` (what that throws or rejects with: one process warning, never the bus's
   * failure); without `onError`, the first error is one process warning. Never throws.
   */
  readonly #report: (err: unknown) => void
  readonly #listeners: BusListeners
  #publisher: Redis | undefined
  #publisherOpening: Promise<Redis> | undefined
  #publisherWasReady = false
  /** The wait for the publisher's first connection that every publish meanwhile shares (one set of listeners). */
  #firstReady: ReadyWait | undefined
  /** The publishes under way, each settling within `timeout` ms: close() lets them finish before it ends the publisher. */
  readonly #inFlight = new Set<Promise<void>>()
  #subscriber: Redis | undefined
  #subscriberStarted = false
  #epoch = 0
  #heartbeat: NodeJS.Timeout | undefined
  #reportedOutage = false
  #lastError: unknown
  #closed = false
  #closing: Promise<void> | undefined

  constructor(options: RedisBusOptions = {}) {
    if (typeof options !== 'object' || options === null)
      throw new InvalidOptionError(`redis bus: options must be an object, got ${show(options)}`)
    checkKnown('redis bus', options, KNOWN)
    const { url, client, channel = 'stockpyle:invalidate', redisOptions, name } = options
    if (url !== undefined && client !== undefined)
      throw new InvalidOptionError('redis bus: options `url` and `client` are exclusive: give one')
    const fromUrl = checkRedisUrl('redis bus', url ?? (client === undefined ? DEFAULT_URL : undefined))
    if (client !== undefined) {
      const c = client as Partial<Redis> & { isCluster?: boolean }
      if (
        typeof c !== 'object' ||
        c === null ||
        typeof c.publish !== 'function' ||
        typeof c.duplicate !== 'function' ||
        c.isCluster === true
      ) {
        throw new InvalidOptionError(`redis bus: option \`client\` must be an ioredis Redis instance (not a Cluster), got ${show(client)}`)
      }
      if (redisOptions !== undefined) {
        throw new InvalidOptionError(
          'redis bus: option `redisOptions` applies to connections made from `url`, not to `client`: configure your client',
        )
      }
    }
    if (typeof channel !== 'string' || channel === '')
      throw new InvalidOptionError(`redis bus: option \`channel\` must be a non-empty string, got ${show(channel)}`)
    checkRedisOptions('redis bus', redisOptions, REDIS_BUS_OWNED)
    checkUrlOverlap(fromUrl, redisOptions)
    if (name !== undefined && (typeof name !== 'string' || name === ''))
      throw new InvalidOptionError(`redis bus: option \`name\` must be a non-empty string, got ${show(name)}`)
    this.#timeout = msOption('redis bus', 'timeout', options.timeout, 1000)
    this.#heartbeatMs = msOption('redis bus', 'heartbeatInterval', options.heartbeatInterval, 2000, true)
    this.#maxBackoff = msOption('redis bus', 'maxBackoff', options.maxBackoff, 2000)
    const onError = callbackOption<(error: unknown) => void>('redis bus', 'onError', options.onError)
    this.#userClient = client
    this.#url = client === undefined ? (url ?? DEFAULT_URL) : undefined
    // (ioredis turns TLS on only for a URL starting with lower-case `rediss://`: say so for any case)
    this.#redisOptions = fromUrl.tls && redisOptions?.tls === undefined ? { ...redisOptions, tls: {} } : redisOptions
    this.channel = channel
    this.name = name ?? busName(this.#url, client)
    this.#report = errorReporter(this.name, onError)
    this.#listeners = new BusListeners(this.#report)
  }

  /** True while the subscriber is connected and subscribed (listeners are up). */
  get subscribed(): boolean {
    return this.#listeners.up
  }

  /**
   * Sends the keys to every other bus on the channel. Resolves once Redis accepted the message(s);
   * `[]` sends nothing.
   * @throws StoreUnavailableError when the publisher is not connected or Redis does not answer within `timeout` ms.
   * @throws StoreClosedError after `close()`, or when `close()` was called while this publish was
   * under way and it then failed (the cause says why).
   * @throws InvalidArgumentError (a rejection) when `keys` is not an array of strings.
   * @throws ValueTooLargeError when a single key does not fit into one message.
   */
  async publish(keys: readonly string[]): Promise<void> {
    const messages = publishMessages(this.name, this.origin, this.#closed, keys, MAX_MESSAGE_BYTES)
    if (messages.length === 0) return
    const work = this.#send(messages)
    this.#inFlight.add(work)
    try {
      await work
    } catch (err) {
      const failure = publishFailed(this.name, this.channel, hideCredentials(err))
      if (this.#closed) throw new StoreClosedError(`${this.name} was closed while publishing`, { cause: failure })
      throw failure
    } finally {
      this.#inFlight.delete(work)
    }
  }

  /** Publishes `messages`, settling within `timeout` ms. */
  async #send(messages: string[]): Promise<void> {
    const deadline = Date.now() + this.#timeout
    const publisher = await this.#readyPublisher(deadline)
    const left = Math.max(1, deadline - Date.now())
    const work: Promise<unknown> =
      messages.length === 1
        ? publisher.publish(this.channel, messages[0] as string)
        : publisher
            .pipeline(messages.map((m) => ['publish', this.channel, m]))
            .exec()
            .then((results) => {
              for (const [err] of results ?? []) if (err) throw err
            })
    await withTimeout(work, left, () => this.#unavailable(`no answer within ${this.#timeout} ms (option \`timeout\`)`))
  }

  #unavailable(what: string, cause?: unknown): StoreUnavailableError {
    return publishUnavailable(this.name, this.channel, what, cause)
  }

  /**
   * Delivers other buses' invalidations to `listener`, connecting the subscriber on first use. Calls
   * `listener.onUp()` right away only when already subscribed; otherwise `onUp` follows once the
   * SUBSCRIBE is confirmed (until then the listener must assume it is down).
   * @returns a function that stops the delivery to this listener.
   * @throws StoreClosedError after `close()`; InvalidArgumentError for a listener without onInvalidate, onDown and onUp.
   */
  subscribe(listener: InvalidationListener): () => void {
    if (this.#closed) throw new StoreClosedError(`${this.name} is closed: subscribe was called after close()`)
    checkListener(this.name, listener)
    const remove = this.#listeners.add(listener)
    if (!this.#subscriberStarted) {
      this.#subscriberStarted = true
      this.#startSubscriber().catch((err) => this.#report(err))
    }
    return remove
  }

  /**
   * Closes the connections the bus created (never a `client` you passed) and tells the listeners
   * `onDown` (no invalidation reaches them anymore). Publishes under way are let finish first (each
   * within its `timeout` ms; also one still waiting for the first connection); one that fails meanwhile
   * rejects with `StoreClosedError`. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    this.#closed = true
    this.#epoch++
    this.#stopHeartbeat()
    this.#listeners.down()
    this.#listeners.clear()
    this.#userClient?.off('ready', this.#onPublisherReady)
    const subscriber = this.#subscriber
    await Promise.all([subscriber === undefined ? undefined : quit(subscriber, this.#timeout), this.#endPublisher()])
  }

  async #endPublisher(): Promise<void> {
    // each publish settles within `timeout` ms of its start, so this waits at most that long
    if (this.#inFlight.size > 0) await Promise.allSettled(this.#inFlight)
    this.#firstReady?.stop()
    if (this.#userClient !== undefined) return
    const publisher = await this.#publisherOpening?.catch(() => undefined)
    if (publisher !== undefined) await quit(publisher, this.#timeout)
  }

  #retryStrategy = (times: number): number => backoff(times, this.#maxBackoff)

  readonly #onPublisherReady = (): void => {
    this.#publisherWasReady = true
  }

  async #newConnection(): Promise<Redis> {
    const common: RedisOptions = {
      connectTimeout: Math.max(this.#timeout, 1000),
      // (ioredis's 2 s default keeps the process alive that long after close when the server is gone)
      disconnectTimeout: this.#timeout,
      // under the bus's own settings, which it may not give (checked in the constructor) nor unset
      ...(this.#userClient === undefined ? this.#redisOptions : undefined),
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // behind the bus's own deadlines, which let a reply that came in during a stall win
      commandTimeout: clientBackstop(this.#timeout),
      // The bus subscribes again itself on every 'ready'. ioredis's own re-subscribe sends SUBSCRIBE
      // with no handler: with commandTimeout, a server that freezes right after a reconnect made it
      // reject unhandled ("Command timed out") and end the host process.
      autoResubscribe: false,
      retryStrategy: this.#retryStrategy,
    }
    if (this.#userClient !== undefined) return this.#userClient.duplicate(common)
    const { Redis } = await loadIoredis(this.name)
    return new Redis(this.#url as string, common)
  }

  async #readyPublisher(deadline: number): Promise<Redis> {
    if (this.#publisher === undefined) {
      this.#publisherOpening ??= (async () => {
        const client = this.#userClient ?? (await this.#newConnection())
        if (this.#userClient === undefined) {
          client.on('error', (err: unknown) => {
            this.#lastError = hideCredentials(err)
          })
        }
        client.on('ready', this.#onPublisherReady)
        if (client.status === 'ready') this.#publisherWasReady = true
        this.#publisher = client
        return client
      })()
      await this.#publisherOpening
    }
    const client = this.#publisher as Redis
    if (client.status === 'ready') return client
    const status = client.status
    // Only the very first connection is waited for; a publisher that lost its connection fails at once.
    if (this.#publisherWasReady || !['wait', 'connecting', 'connect'].includes(status)) {
      const cause = this.#lastError
      throw this.#unavailable(`not connected (${status})${cause instanceof Error ? `: ${cause.message}` : ''}`, cause)
    }
    // One wait that every publish meanwhile shares, each under its own deadline. The first connection
    // failing (refused, reset) fails them now rather than at the timeout; a publish during the next
    // attempt waits for that one.
    if (this.#firstReady === undefined) {
      const wait = nextReady(client, () => {
        const cause = this.#lastError
        return this.#unavailable(`the connection failed${cause instanceof Error ? `: ${cause.message}` : ''}`, cause)
      })
      this.#firstReady = wait
      wait.ready.catch(() => {
        if (this.#firstReady === wait) this.#firstReady = undefined
      })
      if (client.status === 'wait') client.connect().catch(() => {})
    }
    await withTimeout(this.#firstReady.ready, Math.max(1, deadline - Date.now()), () =>
      this.#unavailable(`not connected within ${this.#timeout} ms (option \`timeout\`)`, this.#lastError),
    )
    return client
  }

  async #startSubscriber(): Promise<void> {
    const sub = await this.#newConnection()
    if (this.#closed) {
      sub.disconnect()
      return
    }
    this.#subscriber = sub
    sub.on('error', (err: unknown) => {
      this.#lost(hideCredentials(err))
      // An error on a connection that still looks ready: start over, so the state is known again.
      if (sub.status === 'ready') destroyStream(sub)
    })
    sub.on('close', () => this.#lost())
    sub.on('end', () => this.#lost())
    sub.on('ready', () => {
      // Fire-and-forget on purpose: a failed subscribe marks the bus down itself; anything else is a loss.
      detach(this.#resubscribe(sub), (err) => this.#lost(err))
    })
    sub.on('message', (channel: string, message: string) => {
      if (channel === this.channel) this.#deliver(message)
    })
    sub.connect().catch(() => {}) // failures arrive as 'error'/'close'; ioredis retries by itself
  }

  async #resubscribe(sub: Redis): Promise<void> {
    const epoch = ++this.#epoch
    try {
      await withTimeout(sub.subscribe(this.channel), this.#timeout, () => new Error(`SUBSCRIBE not confirmed within ${this.#timeout} ms`))
    } catch (err) {
      if (epoch !== this.#epoch || this.#closed) return
      this.#lost(
        new StoreUnavailableError(`${this.name} subscribe to ${show(this.channel)} failed: ${(err as Error).message}`, { cause: err }),
      )
      destroyStream(sub)
      return
    }
    if (epoch !== this.#epoch || this.#closed || sub.status !== 'ready') return
    this.#reportedOutage = false
    this.#listeners.markUp()
    this.#startHeartbeat(sub)
  }

  /**
   * The subscriber lost its connection (or cannot be trusted): listeners go down. `err` undefined: the
   * connection closed with no error (the server closed it cleanly: CLIENT KILL, a client-output-buffer
   * limit), which is reported as such when the bus was up.
   */
  #lost(err?: unknown): void {
    this.#epoch++
    this.#stopHeartbeat()
    if (this.#closed) return
    if (err === undefined && this.#listeners.up) {
      err = new StoreUnavailableError(
        `${this.name}: the subscriber connection was closed by the server (it shut down, or dropped the client: CLIENT KILL, client-output-buffer-limit pubsub); reconnecting`,
      )
    }
    this.#listeners.down()
    if (err !== undefined && !this.#reportedOutage) {
      this.#reportedOutage = true
      this.#report(err)
    }
  }

  #deliver(message: string): void {
    const decoded = decodeMessage(message)
    if (decoded === undefined) {
      // a third party's junk on the channel: no outage (an onError counting outages by class must not count it)
      this.#report(new StockpyleError(`${this.name}: ignored a malformed message on ${show(this.channel)}: ${show(message)}`))
      return
    }
    if (decoded.o === this.origin || decoded.k.length === 0) return
    this.#listeners.invalidate(decoded.k)
  }

  #startHeartbeat(sub: Redis): void {
    this.#stopHeartbeat()
    if (this.#heartbeatMs === 0) return
    const epoch = this.#epoch
    let inFlight = false
    this.#heartbeat = setInterval(() => {
      if (inFlight) return
      inFlight = true
      withTimeout(sub.ping(), this.#timeout, () => new Error(`no answer to PING within ${this.#timeout} ms`))
        .catch((err: unknown) => {
          if (epoch !== this.#epoch || this.#closed) return
          this.#lost(
            new StoreUnavailableError(`${this.name}: the subscriber connection is not answering: ${(err as Error).message}`, {
              cause: err,
            }),
          )
          destroyStream(sub)
        })
        .finally(() => {
          inFlight = false
        })
    }, this.#heartbeatMs)
    this.#heartbeat.unref()
  }

  #stopHeartbeat(): void {
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat)
    this.#heartbeat = undefined
  }
}
