import {
  type DecoratedOperation,
  InvalidArgumentError,
  type Store,
  type StoreCapabilities,
  StoreDecorator,
  type StoreDecoratorOptions,
  StoreUnavailableError,
} from '../index.js'
import { shown } from './shown.js'

/** Operations a {@link FaultStore} can fail or delay. */
export type FaultOperation = 'get' | 'put' | 'delete'

/** Every {@link FaultOperation}, the default of `fail()` and `gate()`. */
const OPERATIONS: readonly FaultOperation[] = ['get', 'put', 'delete']

/**
 * The operations named (all of them when none is).
 * @throws InvalidArgumentError for a name that is not `'get'`, `'put'` or `'delete'`.
 */
function operationsOf(method: string, operations: readonly unknown[]): readonly FaultOperation[] {
  for (const op of operations) {
    if (typeof op !== 'string') {
      throw new InvalidArgumentError(`FaultStore.${method}: an operation is 'get', 'put' or 'delete', got ${shown(op)}`)
    }
    if (!(OPERATIONS as readonly string[]).includes(op)) {
      throw new InvalidArgumentError(`FaultStore.${method}: ${shown(op)} is not an operation: use 'get', 'put' or 'delete'`)
    }
  }
  return operations.length > 0 ? (operations as readonly FaultOperation[]) : OPERATIONS
}

/** The longest delay or jitter, in ms (about 12.4 days): the two together stay within Node's timers. */
const MAX_MS = 2 ** 30

/**
 * Checks a number of milliseconds.
 * @throws InvalidArgumentError when `ms` is not a finite number from 0 to 2^30.
 */
function checkMs(method: string, name: string, ms: unknown): number {
  if (typeof ms !== 'number') {
    throw new InvalidArgumentError(`FaultStore.${method}: ${name} must be a number of milliseconds, got ${shown(ms)}`)
  }
  // Node's timers take at most 2^31 - 1 ms (a longer one fires after 1 ms); a delay plus a jitter must fit.
  if (!(Number.isFinite(ms) && ms >= 0 && ms <= MAX_MS)) {
    throw new InvalidArgumentError(`FaultStore.${method}: ${name} must be a finite number from 0 to 2^30 (${MAX_MS}), got ${ms}`)
  }
  return ms
}

/** Which fault operation each forwarded call counts as (transactions and `close` are never failed or delayed). */
const FAULT_OF: Partial<Record<DecoratedOperation, FaultOperation>> = {
  get: 'get',
  batchGet: 'get',
  batchGetEntries: 'get',
  acquireLeases: 'get',
  leasesHeld: 'get',
  put: 'put',
  batchPut: 'put',
  batchPutEntries: 'put',
  delete: 'delete',
  batchDelete: 'delete',
  batchInvalidate: 'delete',
  batchDeleteByKey: 'delete',
  clear: 'delete',
  clearCaches: 'delete',
  releaseLeases: 'delete',
}

/**
 * Wraps a store and injects failures and delays, for testing chain policy without a network:
 * `fail('get')` makes reads reject with StoreUnavailableError until `recover()`; `delay(ms)` holds
 * every call for `ms` first; `jitter(maxMs)` holds each call for a random 0–`maxMs` ms; `gate()` holds
 * calls until the returned release function is called. Arguments are checked: an operation other than
 * `'get'`, `'put'` and `'delete'` throws InvalidArgumentError, and so does a delay that is not a finite
 * number of ms from 0 to 2^30, before anything changes. Reads (`get`, `batchGet`, `batchGetEntries`,
 * `acquireLeases`, `leasesHeld`) count as `'get'`; `put`, `batchPut`, `batchPutEntries` as `'put'`;
 * `delete`, `batchDelete`, `batchDeleteByKey`, `batchInvalidate`, `clear`, `releaseLeases` as
 * `'delete'`. Built on {@link StoreDecorator}: everything else (capabilities, transactions, `close`) is
 * forwarded as is; optional methods exist when the wrapped store has them, and it takes the same
 * options (`name`; any other is refused with `InvalidOptionError`).
 */
export class FaultStore extends StoreDecorator {
  readonly #failing = new Set<FaultOperation>()
  #delay = 0
  #jitter = 0
  #random: () => number = Math.random
  readonly #gates = new Map<FaultOperation, Promise<void>>()
  /** How many calls are held by a gate now, per operation. */
  readonly waiting: Record<FaultOperation, number> = { get: 0, put: 0, delete: 0 }
  /** How many calls were made to this wrapper, failed or not, per operation. */
  readonly attempts: Record<FaultOperation, number> = { get: 0, put: 0, delete: 0 }
  /** How many calls reached the wrapped store, per operation. */
  readonly calls: Record<FaultOperation, number> = { get: 0, put: 0, delete: 0 }

  /**
   * @param options {@link StoreDecorator}'s: `name` (default `fault(<the wrapped store's name>)`).
   * @throws InvalidOptionError when `inner` is not a store, `options` is not an object, or an option is
   *   unknown or invalid.
   */
  constructor(inner: Store, options: StoreDecoratorOptions = {}) {
    super(inner, options)
  }

  /** `fault(<the wrapped store's name>)`. */
  protected static override defaultName(inner: Store): string {
    return `fault(${inner.name})`
  }

  override get capabilities(): StoreCapabilities {
    // It fails on purpose, so it is never an in-process layer a chain may call unguarded.
    const inner = this.inner
    return { ...inner.capabilities, inProcess: false, clearable: inner.capabilities.clearable ?? typeof inner.clear === 'function' }
  }

  /**
   * Makes the given operations (default: all) reject with StoreUnavailableError until {@link recover}.
   * @throws InvalidArgumentError for an operation that is not `'get'`, `'put'` or `'delete'` (nothing
   *   is changed then).
   */
  fail(...operations: FaultOperation[]): void {
    for (const op of operationsOf('fail', operations)) this.#failing.add(op)
  }
  /** Ends every injected failure, delay and jitter. */
  recover(): void {
    this.#failing.clear()
    this.#delay = 0
    this.#jitter = 0
  }
  /**
   * Delays every later call by `ms` milliseconds (`0` turns it off).
   * @throws InvalidArgumentError when `ms` is not a finite number from 0 to 2^30 (the delay set before
   *   stays).
   */
  delay(ms: number): void {
    this.#delay = checkMs('delay', 'ms', ms)
  }
  /**
   * Delays each later call by a random whole number of milliseconds from 0 to `maxMs` (on top of
   * {@link delay}), drawn from `random` (default `Math.random`; pass a seeded generator for
   * reproducible delays). `0` turns it off.
   * @throws InvalidArgumentError when `maxMs` is not a finite number from 0 to 2^30 or `random` not a
   *   function (the jitter set before stays).
   */
  jitter(maxMs: number, random: () => number = Math.random): void {
    checkMs('jitter', 'maxMs', maxMs)
    if (typeof random !== 'function') {
      throw new InvalidArgumentError(`FaultStore.jitter: random must be a function, got ${shown(random)}`)
    }
    this.#jitter = maxMs
    this.#random = random
  }
  /**
   * Holds later calls of the given operations (default: all) until the returned function is called.
   * @throws InvalidArgumentError for an operation as {@link fail} does (nothing is gated then).
   */
  gate(...operations: FaultOperation[]): () => void {
    const ops = operationsOf('gate', operations)
    let open!: () => void
    const gate = new Promise<void>((resolve) => {
      open = resolve
    })
    for (const op of ops) this.#gates.set(op, gate)
    return () => {
      for (const op of ops) if (this.#gates.get(op) === gate) this.#gates.delete(op)
      open()
    }
  }

  async #enter(op: FaultOperation): Promise<void> {
    this.attempts[op]++
    const gate = this.#gates.get(op)
    if (gate !== undefined) {
      this.waiting[op]++
      await gate
      this.waiting[op]--
    }
    const ms = this.#delay + (this.#jitter > 0 ? Math.floor(this.#random() * (this.#jitter + 1)) : 0)
    if (ms > 0) await new Promise((r) => setTimeout(r, ms))
    if (this.#failing.has(op)) throw new StoreUnavailableError(`${this.name} store is failing ${op} (injected)`)
    this.calls[op]++
  }

  protected override async around<T>(operation: DecoratedOperation, _args: readonly unknown[], call: () => Promise<T>): Promise<T> {
    const op = FAULT_OF[operation]
    if (op !== undefined) await this.#enter(op)
    return call()
  }
}
