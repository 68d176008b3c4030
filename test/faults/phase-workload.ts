import type { Instance, Lookup, Model } from '../../src/core/model.js'
import { type CacheErrorEvent, ChainedStore, type Store, type StoreEntry } from '../../src/index.js'
import { createTable, SqlStore } from '../../src/stores/sql/index.js'

/** The model of the fault workloads: looked up by id (primary) or email (alias). */
export class Account {
  static readonly stockpyleName = 'FaultAccount'
  static readonly stockpyleKeys = ['id', 'email'] as const
  constructor(
    public id: number,
    public email: string,
    public version: number,
  ) {}
}

/** A phase's figures for an assertion's message: what a failure needs to be understood. */
export function explain(p: Phase): string {
  return `${p.phase}: database share ${(p.dbShare * 100).toFixed(1)}%, ${p.errors} errors, slowest ${p.slowest.toFixed(0)} ms, cache errors ${JSON.stringify(p.cacheErrors)}, layers ${p.layers}, root causes ${JSON.stringify(p.rootCauses)}`
}

/** A real SQLite SqlStore that counts the lookups it answers (what "the database share" is measured on). */
export class CountingSql extends SqlStore {
  lookups = 0
  override async batchGetEntries<M extends Model>(
    model: M,
    lookups: readonly Lookup<M>[],
    options?: Parameters<Store['batchGetEntries']>[2],
  ): Promise<(StoreEntry<Instance<M>> | undefined)[]> {
    this.lookups += lookups.length
    return super.batchGetEntries(model, lookups, options)
  }
}

/** An in-memory SQLite database with the Account table. */
export async function accountsDatabase(): Promise<CountingSql> {
  const sql = new CountingSql({ url: 'sqlite::memory:' })
  await createTable(sql, Account, { columns: { id: 'integer', email: 'text', version: 'integer' } })
  return sql
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** One measured phase. */
export interface Phase {
  readonly phase: string
  /**
   * Share of lookups of cached keys (objects that exist) the database answered, 0–1. Lookups of
   * deleted objects always reach the database (no negative caching here) and are left out.
   */
  readonly dbShare: number
  readonly lookups: number
  readonly ms: number
  /** Calls that rejected. */
  readonly errors: number
  /** Values read that differ from what the database holds (stale or wrong). */
  readonly wrong: string[]
  /** Slowest batchGet of the phase, ms. */
  readonly slowest: number
  /** batchGet calls slower than `slowMs`. */
  readonly slow: number
  /** The chain's `cacheError` events of the phase, counted by operation and message (what explains a share). */
  readonly cacheErrors: Record<string, number>
  /** What each layer of the chain did in the phase (hits, misses, errors, skipped calls): a skipped layer or misses of live keys explain a share too. */
  readonly layers: string
  /** The first distinct root causes of the phase's cache errors, whole (ms after the phase began: message; a timeout names the server and its connection's state). */
  readonly rootCauses: string[]
}

/** The messages of the errors at the bottom of `error` (causes, aggregated errors): what first went wrong. */
function rootMessages(error: unknown, out: string[] = []): string[] {
  if (!(error instanceof Error)) return out
  const under = [...(error instanceof AggregateError ? error.errors : []), ...(error.cause === undefined ? [] : [error.cause])]
  if (under.length === 0) out.push(error.message)
  for (const e of under) rootMessages(e, out)
  return out
}

/**
 * A sequential reader/writer over `count` accounts through a chain, checking every value read
 * against `expected` (the versions the database holds; `undefined` = deleted).
 */
export class AccountWorkload {
  readonly expected = new Map<number, number | undefined>()
  readonly phases: Phase[] = []
  #cacheErrors: Record<string, number> = {}
  #rootCauses: string[] = []
  #phaseStart = performance.now()

  constructor(
    readonly chain: Store,
    readonly db: CountingSql,
    readonly count: number,
    readonly slowMs = 100,
  ) {
    if (chain instanceof ChainedStore) {
      chain.events.on('cacheError', (e: CacheErrorEvent) => {
        // ports and key text vary from run to run: count by operation and the message's first words
        const what = `${e.operation}: ${String((e.error as Error)?.message ?? e.error)
          .replace(/\d+/g, '#')
          .slice(0, 400)}`
        this.#cacheErrors[what] = (this.#cacheErrors[what] ?? 0) + 1
        for (const m of rootMessages(e.error)) {
          if (this.#rootCauses.length >= 8 || this.#rootCauses.some((t) => t.endsWith(m))) continue
          this.#rootCauses.push(`+${(performance.now() - this.#phaseStart).toFixed(0)} ms: ${m}`)
        }
      })
    }
  }

  #layerStats(): ReturnType<ChainedStore['stats']> {
    return this.chain instanceof ChainedStore ? this.chain.stats() : []
  }

  #layerDelta(before: ReturnType<ChainedStore['stats']>): string {
    return this.#layerStats()
      .map((l, i) => {
        const b = before[i]
        const d = (f: 'hits' | 'misses' | 'errors' | 'skipped') => l[f] - (b?.[f] ?? 0)
        return `${l.name.replace(/\d+/g, '#')}: +${d('hits')} hits +${d('misses')} misses +${d('errors')} errors +${d('skipped')} skipped, ${l.pendingRepairs} repairs pending`
      })
      .join('; ')
  }

  async seed(): Promise<void> {
    const all = Array.from({ length: this.count }, (_, id) => new Account(id, `a${id}@x.test`, 1))
    await this.chain.batchPut(all)
    for (const a of all) this.expected.set(a.id, 1)
  }

  /** Writes a new version of each id (through the chain), or deletes it with `remove`. */
  async write(ids: readonly number[], remove = false): Promise<number> {
    let errors = 0
    for (const id of ids) {
      const version = (this.expected.get(id) ?? 0) + 1
      try {
        if (remove) await this.chain.delete(new Account(id, `a${id}@x.test`, this.expected.get(id) ?? 0))
        else await this.chain.put(new Account(id, `a${id}@x.test`, version))
        this.expected.set(id, remove ? undefined : version)
      } catch {
        errors++
      }
    }
    return errors
  }

  /**
   * Reads every account once by `by` in batches of `batch`, with `concurrency` readers sharing the
   * work; records the phase.
   */
  async pass(phase: string, options: { by?: 'id' | 'email'; batch?: number; concurrency?: number } = {}): Promise<Phase> {
    const { by = 'id', batch = 25, concurrency = 1 } = options
    const before = this.db.lookups
    const statsBefore = this.#layerStats()
    this.#cacheErrors = {}
    this.#rootCauses = []
    this.#phaseStart = performance.now()
    let absent = 0
    for (const v of this.expected.values()) if (v === undefined) absent++
    const wrong: string[] = []
    let errors = 0
    let slowest = 0
    let slow = 0
    const t0 = performance.now()
    const ids = Array.from({ length: this.count }, (_, id) => id)
    const chunks: number[][] = []
    for (let i = 0; i < ids.length; i += batch) chunks.push(ids.slice(i, i + batch))
    let next = 0
    const reader = async () => {
      while (next < chunks.length) {
        const chunk = chunks[next++] as number[]
        const lookups = chunk.map((id) => (by === 'id' ? { id } : { email: `a${id}@x.test` }))
        const c0 = performance.now()
        try {
          const got = await this.chain.batchGet(Account, lookups as never)
          chunk.forEach((id, k) => {
            const want = this.expected.get(id)
            const have = got[k]?.version
            if (have !== want) wrong.push(`account ${id} by ${by}: read v${have} while the database holds v${want}`)
          })
        } catch {
          errors++
        }
        const ms = performance.now() - c0
        slowest = Math.max(slowest, ms)
        if (ms >= this.slowMs) slow++
      }
    }
    await Promise.all(Array.from({ length: concurrency }, reader))
    const result: Phase = {
      phase,
      dbShare: (this.db.lookups - before - absent) / (this.count - absent),
      lookups: this.count,
      ms: performance.now() - t0,
      errors,
      wrong,
      slowest,
      slow,
      cacheErrors: this.#cacheErrors,
      layers: this.#layerDelta(statsBefore),
      rootCauses: this.#rootCauses,
    }
    this.phases.push(result)
    return result
  }

  /** Passes for at least `ms`; resolves with them (recorded as one phase: their totals, the worst share). */
  async passesFor(phase: string, ms: number, options: Parameters<AccountWorkload['pass']>[1] = {}): Promise<Phase[]> {
    const t0 = performance.now()
    const out: Phase[] = []
    while (performance.now() - t0 < ms) out.push(await this.pass(phase, options))
    const worst = out.reduce((a, b) => (b.dbShare > a.dbShare ? b : a))
    this.phases.splice(this.phases.length - out.length, out.length, {
      phase: `${phase} (${out.length} passes, worst)`,
      dbShare: worst.dbShare,
      lookups: out.reduce((n, p) => n + p.lookups, 0),
      ms: performance.now() - t0,
      errors: out.reduce((n, p) => n + p.errors, 0),
      wrong: out.flatMap((p) => p.wrong),
      slowest: Math.max(...out.map((p) => p.slowest)),
      slow: out.reduce((n, p) => n + p.slow, 0),
      cacheErrors: worst.cacheErrors,
      layers: worst.layers,
      rootCauses: worst.rootCauses,
    })
    return out
  }

  /**
   * Passes until one has a database share under `share`; resolves with the ms that took from now (the
   * end of the pass that got there). Fails after `limitMs`.
   */
  async recover(phase: string, share: number, limitMs: number): Promise<{ ms: number; passes: Phase[] }> {
    const t0 = performance.now()
    const passes: Phase[] = []
    for (let n = 1; ; n++) {
      const p = await this.pass(`${phase}, pass ${n} (at ${(performance.now() - t0).toFixed(0)} ms)`)
      passes.push(p)
      if (p.dbShare < share) return { ms: performance.now() - t0, passes }
      if (performance.now() - t0 > limitMs) return { ms: Number.POSITIVE_INFINITY, passes }
    }
  }

  /** The phases as a table for the log / docs. */
  table(): string {
    return this.phases
      .map(
        (p) =>
          `| ${p.phase} | ${(p.dbShare * 100).toFixed(1)}% | ${p.ms.toFixed(0)} ms | ${p.errors} | ${p.wrong.length} | ${p.slowest.toFixed(0)} ms |`,
      )
      .join('\n')
  }
}
