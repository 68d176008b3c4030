import type { LeaseCapable, Store } from '../contracts/base-store.js'
import { InvalidOptionError, show } from '../core/errors.js'
import { type Clock, systemClock } from '../core/lifetime.js'
import { booleanOption, checkNestedNames, msOption, nameOption, secondsOption } from '../core/option-values.js'
import { type BreakerOptions, DEFAULT_BREAKER } from './layer-guard-options.js'
import type { MeterLike } from './metrics.js'

/** Options of {@link ChainedStore}. */
export interface ChainedStoreOptions {
  /**
   * What a failing cache layer (any layer but the last) means to callers. `'report'` (default): the
   * call succeeds — reads are answered by the layers below, a failed cache write is cleaned up — and
   * the failure is counted in `stats()` and emitted as a `cacheError` event. `'throw'`: the same
   * clean-up happens, then the call rejects with the error.
   */
  onCacheError?: 'report' | 'throw' | undefined
  /**
   * Milliseconds each call to a cache layer may take before it counts as failed. Default: none (the
   * stores' own timeouts). In-process layers are never timed. Also how long `close()` gives each
   * layer's last drain of its pending repairs (default there 1000).
   */
  timeout?: number | undefined
  /**
   * Circuit breaker per cache layer (cockatiel): after `failures` consecutive failures the layer is
   * skipped for `halfOpenAfter` ms, then probed by one call. `false` turns it off.
   * Default `{ failures: 1, halfOpenAfter: 1000 }`. In-process layers have none.
   */
  breaker?: BreakerOptions | false | undefined
  /**
   * Most objects per cache layer remembered for repair (their copy there may be stale: a write or an
   * invalidation of them failed). Each blocks reads of its own keys in that layer until it is repaired
   * in the background; every other key is served. Past this bound the layer is fenced instead — not
   * read until its `clear()` succeeded. Default 100,000.
   */
  maxPendingRepairs?: number | undefined
  /**
   * Seconds a lookup that missed in every layer is remembered in this process, so repeated gets of
   * absent objects do not reach the database (negative caching). Puts, deletes and invalidations of
   * the object through this chain forget it at once; writes elsewhere are seen when it expires.
   * Default 0 (off).
   */
  missLifetime?: number | undefined
  /**
   * When the authoritative layer fails on a read, answer with expired copies that cache layers still
   * hold within their `grace` (see the stores' `grace` option), instead of rejecting. Default `false`.
   */
  serveStale?: boolean | undefined
  /**
   * The coherence protections (write clock, backfills that never replace a newer value, writes that
   * wait for in-flight backfills). Default `true`; `false` exists to show what they prevent.
   */
  coherence?: boolean | undefined
  /**
   * Cross-process protection against miss storms: when a lookup misses in the lowest cache layer that
   * can hand out leases (memcached, Redis: `capabilities.leases`), one process takes a lease and reads
   * the database; the others poll that layer for its copy for up to `wait` ms (default 500) before
   * reading the database themselves. A lease lasts `ttl` ms (default 2000) unless released; each
   * process judges its end by its own clock, so the processes' clocks must agree to well under `ttl`
   * (NTP). `true` uses the defaults. Default: off.
   *
   * The lease layer must be a cache layer below the first (the first is read before single-flight and
   * leases): `[redis, db]` is refused, `[new ProcessMemoryStore(), redis, db]` works.
   * @throws InvalidOptionError (from the constructor) when no layer between the first and the last has
   *   `capabilities.leases`, or for a bad `wait` / `ttl`.
   */
  leases?: boolean | { wait?: number | undefined; ttl?: number | undefined } | undefined
  /**
   * An OpenTelemetry-compatible meter for per-layer metrics (see {@link ChainMetrics}). Its instruments
   * are created by the constructor (one that throws there: `InvalidOptionError` naming `meter`); a
   * measurement that throws or rejects is dropped, with one `STOCKPYLE_METER` warning.
   */
  meter?: MeterLike | undefined
  /** Clock for negative caching and stale ages (ms since the epoch). Default `Date.now`. */
  clock?: Clock | undefined
  /** Name in messages, stats and metrics. Default `'chain'`. */
  name?: string | undefined
}

/** The options of a chain, checked, with their defaults applied. */
export interface ResolvedChainOptions {
  readonly name: string
  readonly throwCacheErrors: boolean
  readonly timeout: number | undefined
  readonly breaker: BreakerOptions | false | undefined
  readonly maxPendingRepairs: number | undefined
  readonly missMs: number
  readonly serveStale: boolean
  readonly coherence: boolean
  /** Lease settings and the index of the layer that hands them out; `undefined` when leases are off. */
  readonly leases: { readonly wait: number; readonly ttl: number; readonly layer: number } | undefined
  readonly meter: MeterLike | undefined
  readonly clock: Clock
}

/**
 * Checks a chain's layers and options and applies the defaults.
 * @throws InvalidOptionError naming the first bad option.
 */
export function resolveChainOptions(layers: readonly Store[], options: ChainedStoreOptions): ResolvedChainOptions {
  const name = nameOption('chain', options.name, 'chain')
  const bad = (option: string, expected: string, got: unknown): InvalidOptionError =>
    new InvalidOptionError(`${name}: option \`${option}\` must be ${expected}, got ${show(got)}`)
  if (!Array.isArray(layers) || layers.length === 0) throw bad('layers', 'a non-empty array of stores, fastest first', layers)
  layers.forEach((layer, i) => {
    if (
      typeof layer?.batchGetEntries !== 'function' ||
      typeof layer.batchPutEntries !== 'function' ||
      typeof layer.batchDelete !== 'function'
    ) {
      throw new InvalidOptionError(`${name}: option \`layers\`[${i}] is not a store (${show(layer)})`)
    }
    const first = layers.indexOf(layer)
    if (first !== i) {
      throw new InvalidOptionError(
        `${name}: option \`layers\`[${first}] and \`layers\`[${i}] are the same store (${layer.name}): give each layer once`,
      )
    }
  })
  // (`undefined` means the default; `null`, as every other value, must be valid)
  const policy = options.onCacheError === undefined ? 'report' : options.onCacheError
  if (policy !== 'report' && policy !== 'throw') throw bad('onCacheError', "'report' or 'throw'", policy)
  const maxPending = options.maxPendingRepairs
  if (maxPending !== undefined && !(Number.isSafeInteger(maxPending) && maxPending > 0)) {
    throw bad('maxPendingRepairs', 'a positive integer', maxPending)
  }
  const meter = options.meter
  if (meter !== undefined && (typeof meter?.createCounter !== 'function' || typeof meter.createHistogram !== 'function')) {
    throw bad('meter', 'an OpenTelemetry meter (createCounter and createHistogram)', meter)
  }
  const clock = options.clock === undefined ? systemClock : options.clock
  if (typeof clock?.now !== 'function') throw bad('clock', 'an object with a now() method', clock)
  return {
    name,
    throwCacheErrors: policy === 'throw',
    timeout: options.timeout === undefined ? undefined : msOption(name, 'timeout', options.timeout, 0),
    breaker: resolveBreaker(name, options.breaker),
    maxPendingRepairs: maxPending,
    missMs: secondsOption(name, 'missLifetime', options.missLifetime, 0) * 1000,
    serveStale: booleanOption(name, 'serveStale', options.serveStale, false),
    coherence: booleanOption(name, 'coherence', options.coherence, true),
    leases: resolveLeases(name, layers, options.leases === undefined ? false : options.leases),
    meter,
    clock,
  }
}

function resolveBreaker(name: string, breaker: unknown): BreakerOptions | false | undefined {
  if (breaker === undefined || breaker === false) return breaker
  checkNestedNames(name, 'breaker', breaker, ['failures', 'halfOpenAfter'])
  const { failures, halfOpenAfter } = breaker as BreakerOptions
  if (failures !== undefined && !(Number.isSafeInteger(failures) && failures > 0)) {
    throw new InvalidOptionError(`${name}: option \`breaker.failures\` must be a positive integer, got ${show(failures)}`)
  }
  return {
    failures: failures ?? DEFAULT_BREAKER.failures,
    halfOpenAfter: msOption(name, 'breaker.halfOpenAfter', halfOpenAfter, DEFAULT_BREAKER.halfOpenAfter, true),
  }
}

/** Finds the lowest cache layer below the first that hands out leases. */
function resolveLeases(name: string, layers: readonly Store[], leases: unknown): ResolvedChainOptions['leases'] {
  if (leases === false) return undefined
  const settings = { wait: 500, ttl: 2000 }
  if (leases !== true) {
    checkNestedNames(name, 'leases', leases, ['wait', 'ttl'])
    const { wait, ttl } = leases as { wait?: unknown; ttl?: unknown }
    settings.wait = msOption(name, 'leases.wait', wait, settings.wait, true)
    settings.ttl = msOption(name, 'leases.ttl', ttl, settings.ttl)
  }
  for (let i = layers.length - 2; i >= 1; i--) {
    const candidate = layers[i] as Store & Partial<LeaseCapable>
    if (!candidate.capabilities.leases) continue
    if (
      typeof candidate.acquireLeases !== 'function' ||
      typeof candidate.releaseLeases !== 'function' ||
      typeof candidate.leasesHeld !== 'function'
    ) {
      throw new InvalidOptionError(
        `${name}: option \`layers\`[${i}] (${candidate.name}) declares leases but lacks acquireLeases, releaseLeases or leasesHeld`,
      )
    }
    return { ...settings, layer: i }
  }
  const first = layers[0] as Store
  const why =
    layers.length > 1 && first.capabilities.leases
      ? `; the first layer (${first.name}) is read before leases are taken, so it cannot be the lease layer: put a ProcessMemoryStore in front of it`
      : ''
  throw new InvalidOptionError(
    `${name}: option \`leases\` needs a cache layer below the first that can hand out leases (capabilities.leases)${why}`,
  )
}
