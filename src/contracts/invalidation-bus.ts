/**
 * A channel between processes that carries invalidations of canonical record keys, so every
 * process's in-memory layer drops objects written elsewhere. Implementations: `RedisBus` (pub/sub)
 * and `PostgresBus` (LISTEN/NOTIFY) in `stockpyle/invalidation`, `LocalBusHub` in `stockpyle/testing`,
 * or your own.
 *
 * Delivery is at-most-once: a listener that is down (between `onDown` and `onUp`) misses what is
 * published meanwhile, and nothing replays it. A listener must therefore treat everything it held
 * before `onUp` as possibly stale (`ProcessMemoryStore` serves nothing while down and clears on `onUp`).
 * See docs/invalidation.md.
 */
export interface InvalidationBus {
  /** Name for messages. */
  readonly name: string
  /**
   * Sends the canonical record keys (no store prefix) to every other subscriber of the bus.
   * Resolves once the message is handed to the transport; rejects when it cannot be sent, and with
   * `InvalidArgumentError` when `keys` is not an array of strings (nothing is sent).
   */
  publish(keys: readonly string[]): Promise<void>
  /**
   * Starts delivering other processes' invalidations to `listener` (never this process's own).
   * Calls `listener.onUp()` right away only when the bus is already connected and delivering;
   * otherwise the listener must assume it is down until `onUp` is called.
   * Returns a function that stops the delivery. Throws `InvalidArgumentError` for a listener without
   * `onInvalidate`, `onDown` and `onUp`.
   */
  subscribe(listener: InvalidationListener): () => void
  /** Releases the connections; idempotent. */
  close(): Promise<void>
}

/** Receives what a bus delivers. */
export interface InvalidationListener {
  /** Canonical record keys another process wrote or deleted. */
  onInvalidate(keys: readonly string[]): void
  /** The bus lost its connection: invalidations may be missed from now on until `onUp`. */
  onDown(): void
  /** The bus is connected (again) and delivering. */
  onUp(): void
}
