import type { Lifetime, Store, StoreCapabilities } from '../index.js'
import type { ManualClock } from './manual-clock.js'

/** What the suite asks a store factory for; pass every field through to the store's constructor. */
export interface ConformanceStoreOptions {
  /**
   * Set only by the cases about expiry. A store that is not authoritative must honour it and declare
   * `capabilities.expires`: one that declares `expires: false` fails these cases.
   */
  lifetime?: Lifetime
  /** Set only by the polymorphic cases. */
  polymorphic?: boolean
  /** Set only by the stale-read cases: seconds an expired copy is kept for `{ stale: true }` reads. */
  grace?: number
  /** The clock the store must use for expiry. */
  clock: ManualClock
  /** A prefix unique to this test; stores on shared servers must use it to isolate tests. */
  prefix: string
}

/** How to make (and scope) the stores of a conformance run: what {@link runConformanceCase} needs. */
export interface ConformanceTarget {
  /** Name of the configuration, shown in test names and messages. */
  name: string
  /** Creates an empty store (or one isolated by `prefix`). The suite closes it after each test. */
  createStore(options: ConformanceStoreOptions): Store | Promise<Store>
  /** Runs each test body inside a scope the store needs (e.g. `AsyncLocalStore.run`). */
  scope?: ((store: Store, body: () => Promise<void>) => Promise<unknown>) | undefined
}

/** Options of {@link runStoreConformance}. */
export interface ConformanceOptions extends ConformanceTarget {
  /** The runner's `describe` (vitest, node:test, jest, mocha). */
  describe(name: string, body: () => void): unknown
  /**
   * The runner's `test`/`it`. The suite passes on the runner's test context: when it has a
   * `skip(note)` method (vitest, node:test), a case the store's capabilities exclude is reported to the
   * runner as skipped with its reason, so the runner counts it; otherwise the reason is printed.
   */
  test(name: string, body: (...context: unknown[]) => Promise<void>): unknown
  /** Cases not to run, each with the reason printed when the suite runs. */
  skip?: readonly { test: string; reason: string }[] | undefined
}

/** Passed to each case. */
export interface CaseContext {
  /** The clock given to the store of this test. */
  readonly clock: ManualClock
}

/** A conformance case: a name, the store options it needs, an optional capability requirement, and the body. */
export interface ConformanceCase {
  readonly name: string
  readonly options?: Partial<Omit<ConformanceStoreOptions, 'clock' | 'prefix'>>
  /**
   * Returns why the case does not apply to a store with these capabilities, or `undefined`. Cases
   * decide on declared capabilities (and, for optional methods of the Store contract, on whether the
   * store has them), never on a store's name.
   */
  readonly unless?: (capabilities: StoreCapabilities, store: Store) => string | undefined
  readonly body: (store: Store, ctx: CaseContext) => Promise<void>
}
