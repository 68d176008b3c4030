/**
 * Every error stockpyle throws is a {@link StockpyleError} with a stable string `code` (`E_…`).
 * Codes are public API: match on them (or use {@link isStockpyleError}) rather than on messages.
 */

/** The codes an error from stockpyle may carry. */
export type StockpyleErrorCode =
  | 'E_STOCKPYLE'
  | 'E_UNKNOWN_KEY'
  | 'E_INVALID_KEY'
  | 'E_MISSING_KEY_ATTRIBUTE'
  | 'E_NON_UNIQUE_KEY'
  | 'E_KEY_CONFLICT'
  | 'E_SERIALIZATION'
  | 'E_UNKNOWN_MODEL'
  | 'E_DUPLICATE_MODEL'
  | 'E_STORE_UNAVAILABLE'
  | 'E_STORE_CLOSED'
  | 'E_VALUE_TOO_LARGE'
  | 'E_INVALID_OPTION'
  | 'E_SCHEMA'
  | 'E_LAYER_SKIPPED'
  | 'E_CONSTRAINT'
  | 'E_CORRUPT_ENTRY'
  | 'E_INVALID_ARGUMENT'
  | 'E_UNSUPPORTED'

const brand = Symbol.for('stockpyle.error')

/** Options accepted by every error constructor. */
export interface StockpyleErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown
}

/**
 * Base class of every error stockpyle throws. `code` is stable and belongs to the class (one class per
 * code); `cause` carries the underlying error. Thrown as itself (`E_STOCKPYLE`) only for a failure no
 * other class describes: a backend error stockpyle does not recognise (see `cause`), a problem an
 * invalidation watcher reports, a malformed message an invalidation bus ignored, or a read whose msgpack extension type another registration in the
 * process took (msgpackr's `addExtension` is process-wide).
 */
export class StockpyleError extends Error {
  /** The code of this class. */
  static readonly code: StockpyleErrorCode = 'E_STOCKPYLE'
  /**
   * Stable machine-readable code, `E_…`. Each subclass types it as its own literal with `declare`
   * (a type only: a class field would emit a definition that resets it to undefined after this constructor).
   */
  readonly code: StockpyleErrorCode
  /** @internal brand that survives duplicate copies of the package */
  readonly [brand] = true

  constructor(message: string, options: StockpyleErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = (new.target as typeof StockpyleError).code
  }
}

/** A lookup's field set matches none of the model's declared keys (`{id, email}`, `{}`, `{nope}`). */
export class UnknownKeyError extends StockpyleError {
  static override readonly code = 'E_UNKNOWN_KEY'
  declare readonly code: 'E_UNKNOWN_KEY'
}
/** A key value is not a finite number, a string of well-formed UTF-16, a bigint or a boolean. */
export class InvalidKeyError extends StockpyleError {
  static override readonly code = 'E_INVALID_KEY'
  declare readonly code: 'E_INVALID_KEY'
}
/** An object handed to a store lacks (or has an invalid) value for a declared key attribute. */
export class MissingKeyAttributeError extends StockpyleError {
  static override readonly code = 'E_MISSING_KEY_ATTRIBUTE'
  declare readonly code: 'E_MISSING_KEY_ATTRIBUTE'
}
/** A lookup matched more than one stored object (only when a store cannot enforce uniqueness). */
export class NonUniqueKeyError extends StockpyleError {
  static override readonly code = 'E_NON_UNIQUE_KEY'
  declare readonly code: 'E_NON_UNIQUE_KEY'
}
/** A value cannot be encoded (functions, symbols, …) or stored bytes cannot be decoded. */
export class SerializationError extends StockpyleError {
  static override readonly code = 'E_SERIALIZATION'
  declare readonly code: 'E_SERIALIZATION'
}
/** A class is not a model (no `stockpyleKeys`) or stored bytes name a type tag no registered model has. */
export class UnknownModelError extends StockpyleError {
  static override readonly code = 'E_UNKNOWN_MODEL'
  declare readonly code: 'E_UNKNOWN_MODEL'
}
/** Two different classes claim the same `stockpyleName`. */
export class DuplicateModelError extends StockpyleError {
  static override readonly code = 'E_DUPLICATE_MODEL'
  declare readonly code: 'E_DUPLICATE_MODEL'
}
/** A backend could not be reached or did not answer in time. */
export class StoreUnavailableError extends StockpyleError {
  static override readonly code = 'E_STORE_UNAVAILABLE'
  declare readonly code: 'E_STORE_UNAVAILABLE'
}
/** An operation was called after `close()`. */
export class StoreClosedError extends StockpyleError {
  static override readonly code = 'E_STORE_CLOSED'
  declare readonly code: 'E_STORE_CLOSED'
}
/** Options of a {@link ValueTooLargeError}. */
export interface ValueTooLargeErrorOptions extends StockpyleErrorOptions {
  /** See {@link ValueTooLargeError.failed}. */
  failed?: readonly number[] | undefined
}

/** An encoded object is larger than the backend accepts. */
export class ValueTooLargeError extends StockpyleError {
  static override readonly code = 'E_VALUE_TOO_LARGE'
  declare readonly code: 'E_VALUE_TOO_LARGE'
  /**
   * When the store found the values too large before writing anything: the positions, in the call's
   * input (the objects of `batchPut`, the entries of `batchPutEntries`), of every value it refused —
   * ascending, distinct. Nothing of the call was written, so a caller may write the others again
   * without them (a chain does, for its cache layers). `undefined` when the store cannot tell which
   * (a server refused a value while the batch was sent): treat the whole call as failed.
   */
  readonly failed: readonly number[] | undefined
  constructor(message: string, options: ValueTooLargeErrorOptions = {}) {
    super(message, options)
    this.failed = options.failed
  }
}
/** A constructor option is invalid; thrown synchronously from the constructor, naming the option. */
export class InvalidOptionError extends StockpyleError {
  static override readonly code = 'E_INVALID_OPTION'
  declare readonly code: 'E_INVALID_OPTION'
}

/** Why a chain did not call a cache layer (see {@link LayerSkippedError}). */
export type SkipReason = 'circuit-open' | 'repairs-pending'

/**
 * A chain did not call one of its cache layers: the layer's circuit is open after failures, or copies
 * it may hold await repair. Counted as `skipped` (not as an error) in a chain's stats; never thrown to
 * a chain's callers, also under `onCacheError: 'throw'`.
 */
export class LayerSkippedError extends StockpyleError {
  static override readonly code = 'E_LAYER_SKIPPED'
  declare readonly code: 'E_LAYER_SKIPPED'
  /** Why the layer was skipped. */
  readonly reason: SkipReason
  constructor(message: string, reason: SkipReason, options: StockpyleErrorOptions = {}) {
    super(message, options)
    this.reason = reason
  }
}

/**
 * A write collides with another stored object on an alternate unique key (SQL), or two objects of one
 * batch put claim one alternate key (every store); nothing was written.
 */
export class KeyConflictError extends StockpyleError {
  static override readonly code = 'E_KEY_CONFLICT'
  declare readonly code: 'E_KEY_CONFLICT'
}
/** The database schema does not fit the model: a missing table, column or unique index, or an invalid table name. */
export class SchemaError extends StockpyleError {
  static override readonly code = 'E_SCHEMA'
  declare readonly code: 'E_SCHEMA'
}
/** The database refused a write on a constraint other than a unique key (NOT NULL, CHECK, foreign key); nothing was written. */
export class ConstraintViolationError extends StockpyleError {
  static override readonly code = 'E_CONSTRAINT'
  declare readonly code: 'E_CONSTRAINT'
}
/** Options of a {@link CorruptEntryError}. */
export interface CorruptEntryErrorOptions<R = unknown> extends StockpyleErrorOptions {
  /** See {@link CorruptEntryError.failed}. */
  failed?: readonly number[] | undefined
  /** See {@link CorruptEntryError.results}. */
  results?: readonly (R | undefined)[] | undefined
}

/**
 * A cache layer returned bytes that are not a valid entry (truncated, altered, or written by another
 * program under the same prefix). The store replaced the entry by a tombstone, as a delete does (with
 * `tombstoneLifetime` 0: deleted it); a chain reports the error and reads the layer below, as for a
 * miss, and the key is refilled once the tombstone ends.
 *
 * A batch read fails only at the lookups whose entries were corrupt: the stores of this package name
 * them in `failed` and give what the other lookups found in `results` (`R`: the store's entries,
 * `StoreEntry`), and a chain keeps those answers and reads only the failed lookups from the layer below.
 * It is not a `StoreUnavailableError`: the store answered.
 */
export class CorruptEntryError<R = unknown> extends StockpyleError {
  static override readonly code = 'E_CORRUPT_ENTRY'
  declare readonly code: 'E_CORRUPT_ENTRY'
  /**
   * For a batch read: the positions, in the call's lookups, whose entries were corrupt (directly, or the
   * record an alias led to) — ascending, distinct. `undefined` when the error does not say (a single
   * entry decoded outside a batch read, an error of another store): treat the whole call as failed.
   */
  readonly failed: readonly number[] | undefined
  /**
   * With `failed`: one answer per lookup of the call, in order — an entry (`{ value, expiresAt }`) or
   * `undefined` for a miss and at every failed position. `undefined` when `failed` is.
   */
  readonly results: readonly (R | undefined)[] | undefined
  constructor(message: string, options: CorruptEntryErrorOptions<R> = {}) {
    super(message, options)
    this.failed = options.failed
    this.results = options.results
  }
}
/** A method was called with an argument of the wrong kind (not an array of lookups, not a function, …). */
export class InvalidArgumentError extends StockpyleError {
  static override readonly code = 'E_INVALID_ARGUMENT'
  declare readonly code: 'E_INVALID_ARGUMENT'
}
/**
 * The store cannot do what was asked as configured: leases without an atomic add, transactions on a
 * layer without them, a write to a read-only `LoaderStore`, `clear()` on memcached without
 * `ownsServers`, a statement the Kysely `CacheSyncPlugin` cannot follow, transaction control through
 * a SQL transaction's `tx.kysely()`. Nothing was written — except by a SQL `transaction()` that SQL the
 * store could not see ended (its writes were committed or rolled back by that SQL; a chain's caches
 * dropped them).
 */
export class UnsupportedOperationError extends StockpyleError {
  static override readonly code = 'E_UNSUPPORTED'
  declare readonly code: 'E_UNSUPPORTED'
}

/** Every error class, keyed by its code (one class per code). */
export const errors = {
  E_STOCKPYLE: StockpyleError,
  E_UNKNOWN_KEY: UnknownKeyError,
  E_INVALID_KEY: InvalidKeyError,
  E_MISSING_KEY_ATTRIBUTE: MissingKeyAttributeError,
  E_NON_UNIQUE_KEY: NonUniqueKeyError,
  E_SERIALIZATION: SerializationError,
  E_UNKNOWN_MODEL: UnknownModelError,
  E_DUPLICATE_MODEL: DuplicateModelError,
  E_STORE_UNAVAILABLE: StoreUnavailableError,
  E_STORE_CLOSED: StoreClosedError,
  E_VALUE_TOO_LARGE: ValueTooLargeError,
  E_INVALID_OPTION: InvalidOptionError,
  E_LAYER_SKIPPED: LayerSkippedError,
  E_KEY_CONFLICT: KeyConflictError,
  E_SCHEMA: SchemaError,
  E_CONSTRAINT: ConstraintViolationError,
  E_CORRUPT_ENTRY: CorruptEntryError,
  E_INVALID_ARGUMENT: InvalidArgumentError,
  E_UNSUPPORTED: UnsupportedOperationError,
} as const satisfies Record<StockpyleErrorCode, { readonly code: StockpyleErrorCode }>

/**
 * The error class of `code` (`errors[code]`) with `code` as its literal: `StockpyleErrorOf<'E_LAYER_SKIPPED'>`
 * is a `LayerSkippedError`. A union of codes gives the union of their classes.
 */
export type StockpyleErrorOf<C extends StockpyleErrorCode> = C extends StockpyleErrorCode
  ? InstanceType<(typeof errors)[C]> & { readonly code: C }
  : never

/**
 * True when `err` is a stockpyle error (also one thrown by another copy of the package, recognised by
 * a brand, not by `instanceof`), optionally with the given `code`. With a code, `err` is narrowed to the
 * class of that code: `if (isStockpyleError(err, 'E_LAYER_SKIPPED')) err.reason`.
 */
export function isStockpyleError(err: unknown): err is StockpyleError
export function isStockpyleError<C extends StockpyleErrorCode>(err: unknown, code: C): err is StockpyleErrorOf<C>
export function isStockpyleError(err: unknown, code?: StockpyleErrorCode): err is StockpyleError
export function isStockpyleError(err: unknown, code?: StockpyleErrorCode): err is StockpyleError {
  if (typeof err !== 'object' || err === null || (err as Record<symbol, unknown>)[brand] !== true) return false
  return code === undefined || (err as StockpyleError).code === code
}

function render(value: unknown, depth: number): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value)
    case 'number':
      return Object.is(value, -0) ? '-0' : String(value)
    case 'bigint':
      return `${value}n`
    case 'undefined':
      return 'undefined'
    case 'boolean':
      return String(value)
    case 'function':
      return `[function ${value.name || 'anonymous'}]`
    case 'symbol':
      return value.toString()
  }
  if (value === null) return 'null'
  if (depth > 3) return '…'
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'Invalid Date' : `Date(${value.toISOString()})`
  if (Array.isArray(value))
    return `[${value
      .slice(0, 10)
      .map((v) => render(v, depth + 1))
      .join(',')}${value.length > 10 ? ',…' : ''}]`
  if (value instanceof Map) return `Map(${value.size})`
  if (value instanceof Set) return `Set(${value.size})`
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${value.byteLength} bytes)`
  const object = value as Record<string, unknown>
  const proto = Object.getPrototypeOf(object)
  const ctor =
    proto === null || proto === Object.prototype ? '' : `${(proto as { constructor?: { name?: string } }).constructor?.name ?? ''} `
  const fields = Object.keys(object)
    .slice(0, 10)
    .map((k) => `${/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k)}:${render(object[k], depth + 1)}`)
  return `${ctor}{${fields.join(',')}}`
}

/**
 * Renders a value for an error message: short, in backticks, never throws, and faithful — `NaN`,
 * `-0`, `Infinity`, `undefined` and bigints (`12n`) appear as themselves, also inside objects.
 */
export function show(value: unknown): string {
  let text: string
  try {
    text = render(value, 0)
  } catch {
    text = Object.prototype.toString.call(value)
  }
  if (text.length > 80) text = `${text.slice(0, 77)}...`
  return `\`${text}\``
}

/**
 * The errors that are about the caller's input rather than a store's health: a chain lets them through
 * to the caller whatever its `onCacheError` policy, never counts them against a layer, and never opens
 * a layer's circuit for them.
 */
const CALLER_ERRORS: ReadonlySet<string> = new Set([
  UnknownKeyError.code,
  InvalidKeyError.code,
  MissingKeyAttributeError.code,
  SerializationError.code,
  ValueTooLargeError.code,
  // the caller's data refused by the database's rules (unique keys, NOT NULL, CHECK, foreign keys)
  KeyConflictError.code,
  ConstraintViolationError.code,
])

/**
 * True when `err` is about the caller's input (see {@link CALLER_ERRORS}), not a failing store. Told by
 * its code, so that an error of another copy of the package (a store built on it) counts the same.
 */
export function isCallerError(err: unknown): boolean {
  return isStockpyleError(err) && CALLER_ERRORS.has(err.code)
}
