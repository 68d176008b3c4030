/**
 * The chain's one failure policy (src/chain/layer-calls.ts), operation by operation: for each call a
 * chain makes to a cache layer — get, batchGet, backfill, put, delete, invalidate, repair, lease, stale
 * read — and each kind of failure — a layer failure, a skip (circuit open, repairs pending), a caller
 * error — the documented outcome (docs/chaining.md, "Failures").
 */
import { describe, expect, it, vi } from 'vitest'
import {
  type CacheErrorEvent,
  ChainedStore,
  KeyValueStore,
  type LayerStats,
  PartialFailureError,
  ProcessMemoryStore,
  type Store,
  StoreUnavailableError,
  ValueTooLargeError,
} from '../../src/index.js'
import { createTable, SqlStore } from '../../src/stores/sql/index.js'
import { ConformanceUser, FaultStore, ManualClock, MapBackend, makeUser } from '../../src/testing/index.js'

/** Wraps a store; `throwing(op, error)` makes that operation throw `error` (a caller error, say) instead. */
class ThrowingStore extends FaultStore {
  readonly errors = new Map<string, unknown>()
  override async batchPutEntries(...args: Parameters<FaultStore['batchPutEntries']>): Promise<void> {
    const err = this.errors.get('put')
    if (err !== undefined) throw err
    return super.batchPutEntries(...args)
  }
}

function setup(options: ConstructorParameters<typeof ChainedStore>[1] = {}) {
  const clock = new ManualClock()
  const cache = new ThrowingStore(new KeyValueStore(new MapBackend(() => clock.now()), { clock, grace: 60 }))
  const db = new FaultStore(new ProcessMemoryStore({ clock }))
  const chain = new ChainedStore([cache, db], { breaker: false, clock, ...options })
  const events: CacheErrorEvent[] = []
  chain.events.on('cacheError', (e: CacheErrorEvent) => events.push(e))
  const stats = (): LayerStats => chain.stats()[0] as LayerStats
  return { clock, cache, db, chain, events, stats }
}

const user = (id: number) => makeUser(id)

describe('failure policy: a cache layer that fails', () => {
  it('get / batchGet: answered from below, counted, reported; rejects under onCacheError throw', async () => {
    const { cache, db, chain, events, stats } = setup()
    await db.put(user(1))
    cache.fail('get')
    expect(await chain.get(ConformanceUser, { id: 1 })).toEqual(user(1))
    expect(await chain.batchGet(ConformanceUser, [{ id: 1 }, { id: 2 }])).toEqual([user(1), undefined])
    expect(events.map((e) => [e.operation, e.error instanceof StoreUnavailableError])).toEqual([
      ['get', true],
      ['get', true],
    ])
    expect(stats()).toMatchObject({ errors: 2, skipped: 0 })
    const strict = setup({ onCacheError: 'throw' })
    strict.cache.fail('get')
    await expect(strict.chain.get(ConformanceUser, { id: 1 })).rejects.toBeInstanceOf(StoreUnavailableError)
    await expect(strict.chain.batchGet(ConformanceUser, [{ id: 1 }])).rejects.toBeInstanceOf(StoreUnavailableError)
  })

  it('backfill: the answer stands, the copy is cleaned up, counted and reported; rejects under throw', async () => {
    for (const policy of ['report', 'throw'] as const) {
      const { cache, db, chain, events, stats } = setup({ onCacheError: policy })
      await db.put(user(3))
      cache.fail('put')
      const read = chain.get(ConformanceUser, { id: 3 })
      if (policy === 'report') expect(await read).toEqual(user(3))
      else await expect(read).rejects.toBeInstanceOf(StoreUnavailableError)
      expect(events.map((e) => e.operation)).toEqual(['backfill'])
      expect(stats()).toMatchObject({ errors: 1, backfills: 0 })
      cache.recover()
      expect(await cache.get(ConformanceUser, { id: 3 })).toBeUndefined()
    }
  })

  it('backfill a cache layer refuses (a value it cannot store): the answer stands, reported, nothing to clean up; rejects under throw', async () => {
    // The values of a backfill come from the layer below, not from the caller: a refusal fails the
    // copy, not the read.
    for (const policy of ['report', 'throw'] as const) {
      const { cache, db, chain, events, stats } = setup({ onCacheError: policy })
      await db.put(user(7))
      cache.errors.set('put', new ValueTooLargeError('map store put: 2 MB is over the limit'))
      const read = chain.get(ConformanceUser, { id: 7 })
      if (policy === 'report') expect(await read).toEqual(user(7))
      else await expect(read).rejects.toBeInstanceOf(ValueTooLargeError)
      expect(events.map((e) => [e.operation, (e.error as Error).constructor.name])).toEqual([['backfill', 'ValueTooLargeError']])
      expect(stats()).toMatchObject({ errors: 1, backfills: 0, pendingRepairs: 0 })
    }
  })

  it('values a cache layer refuses by position (ValueTooLargeError.failed): the others are written in a second call, whose own partial failure is cleaned up too', async () => {
    /** Refuses the users of `tooLarge` as too large by position; then fails the write of user `lost` as a failed node would. */
    class RefusingStore extends ThrowingStore {
      readonly tooLarge = new Set<number>()
      lost: number | undefined
      readonly sent: number[][] = []
      override async batchPutEntries(...[entries, options]: Parameters<FaultStore['batchPutEntries']>): Promise<void> {
        const ids = entries.map((e) => (e.value as ConformanceUser).id)
        this.sent.push(ids)
        const refused = ids.flatMap((id, k) => (this.tooLarge.has(id) ? [k] : []))
        if (refused.length > 0) throw new ValueTooLargeError(`refused ${refused.length}`, { failed: refused })
        const at = ids.indexOf(this.lost as number)
        if (at < 0) return super.batchPutEntries(entries, options)
        await super.batchPutEntries(
          entries.filter((_, k) => k !== at),
          options,
        )
        throw new PartialFailureError('node down', { failed: [at], nodes: ['n1'] })
      }
    }
    const clock = new ManualClock()
    const cache = new RefusingStore(new KeyValueStore(new MapBackend(() => clock.now()), { clock }))
    const db = new ProcessMemoryStore({ clock })
    const chain = new ChainedStore([cache, db], { breaker: false, clock })
    const events: string[] = []
    chain.events.on('cacheError', (e: CacheErrorEvent) => events.push(`${e.operation}:${(e.error as Error).name}`))
    const ids = [31, 32, 33, 34].map((id) => ({ id }))
    const held = async () => (await cache.batchGet(ConformanceUser, ids)).map((u) => u?.name)
    const named = (name: string) => [31, 32, 33, 34].map((id) => Object.assign(user(id), { name }))
    await chain.batchPut(named('v1'))
    cache.tooLarge.add(32)
    cache.lost = 33
    await chain.batchPut(named('v2'))
    expect(cache.sent.slice(1)).toEqual([
      [31, 32, 33, 34],
      [31, 33, 34],
    ])
    expect(events).toEqual(['put:ValueTooLargeError', 'put:PartialFailureError'])
    // the refused and the lost objects' old copies are gone; the others hold the new value
    expect(await held()).toEqual(['v2', undefined, undefined, 'v2'])
    expect(chain.stats()[0]).toMatchObject({ errors: 2, pendingRepairs: 0 })
    // a backfill (objects only the database holds): the copies not refused and not lost land, counted
    const others = [41, 42, 43, 44].map((id) => Object.assign(user(id), { name: 'db' }))
    await db.batchPut(others)
    cache.tooLarge.add(42)
    cache.lost = 43
    events.length = 0
    expect(
      await chain.batchGet(
        ConformanceUser,
        others.map((u) => ({ id: u.id })),
      ),
    ).toEqual(others)
    expect(events).toEqual(['backfill:ValueTooLargeError', 'backfill:PartialFailureError'])
    expect(
      (
        await cache.batchGet(
          ConformanceUser,
          others.map((u) => ({ id: u.id })),
        )
      ).map((u) => u?.name),
    ).toEqual(['db', undefined, undefined, 'db'])
    expect(chain.stats()[0]).toMatchObject({ backfills: 2 })
    // refused whole (no positions): as before, nothing written, one report
    cache.lost = undefined
    cache.tooLarge.clear()
    cache.errors.set('put', new ValueTooLargeError('all of it'))
    events.length = 0
    await chain.batchPut(named('v3'))
    expect(events).toEqual(['put:ValueTooLargeError'])
    expect(await held()).toEqual([undefined, undefined, undefined, undefined])
    await chain.close()
  })

  it('a row the memory layer cannot store (nested deeper than the codec takes) is answered from SQLite and reported', async () => {
    class Deep {
      static readonly stockpyleName = 'PolicyDeep'
      static readonly stockpyleKeys = ['id'] as const
      constructor(
        readonly id: number,
        readonly tree: unknown,
      ) {}
    }
    const sql = new SqlStore({ url: 'sqlite::memory:' })
    await createTable(sql, Deep, { columns: { id: 'integer', tree: 'json' } })
    const tree = JSON.parse(`${'{"n":'.repeat(300)}1${'}'.repeat(300)}`)
    // written around the store, as another program would
    await (await sql.kysely())
      .insertInto('policy_deeps' as never)
      .values({ id: 1, tree: JSON.stringify(tree) } as never)
      .execute()
    const memory = new ProcessMemoryStore()
    const chain = new ChainedStore([memory, sql])
    const events: CacheErrorEvent[] = []
    chain.events.on('cacheError', (e: CacheErrorEvent) => events.push(e))
    for (const read of [() => chain.get(Deep, { id: 1 }), async () => (await chain.batchGet(Deep, [{ id: 1 }]))[0]]) {
      expect(((await read()) as Deep | undefined)?.tree).toEqual(tree)
    }
    expect(events.map((e) => [e.operation, (e.error as Error).constructor.name])).toEqual([
      ['backfill', 'SerializationError'],
      ['backfill', 'SerializationError'],
    ])
    expect(memory.size).toBe(0)
    await chain.close()
  })

  it('backfill at once (an in-process layer’s backfillNow): the same outcome as a backfill through a promise', async () => {
    class FailingBackfills extends ProcessMemoryStore {
      failing = true
      override backfillNow(...args: Parameters<ProcessMemoryStore['backfillNow']>): void {
        if (this.failing) throw new StoreUnavailableError('memory store backfill failed')
        super.backfillNow(...args)
      }
    }
    for (const policy of ['report', 'throw'] as const) {
      const memory = new FailingBackfills()
      const db = new FaultStore(new ProcessMemoryStore({ name: 'db' }))
      const chain = new ChainedStore([memory, db], { onCacheError: policy })
      const events: CacheErrorEvent[] = []
      chain.events.on('cacheError', (e: CacheErrorEvent) => events.push(e))
      await db.batchPut([user(5), user(6)])
      const read = chain.get(ConformanceUser, { id: 5 })
      if (policy === 'report') expect(await read).toEqual(user(5))
      else await expect(read).rejects.toBeInstanceOf(StoreUnavailableError)
      expect(events.map((e) => e.operation)).toEqual(['backfill'])
      expect(chain.stats()[0]).toMatchObject({ errors: 1, backfills: 0 })
      expect(memory.getNow(ConformanceUser, { id: 5 })).toBeUndefined()
      memory.failing = false
      expect(await chain.get(ConformanceUser, { id: 6 })).toEqual(user(6))
      // landed by the time the get resolved
      expect(memory.getNow(ConformanceUser, { id: 6 })).toEqual(user(6))
      expect(chain.stats()[0]).toMatchObject({ errors: 1, backfills: 1 })
      await chain.close()
    }
  })

  it('put / delete: the database is written; the cache is cleaned up or repaired; rejects after under throw', async () => {
    for (const policy of ['report', 'throw'] as const) {
      const { cache, db, chain, events, stats } = setup({ onCacheError: policy })
      await chain.put(user(4))
      cache.fail('put')
      const v2 = Object.assign(user(4), { name: 'v2' })
      const put = chain.put(v2)
      if (policy === 'report') await put
      else await expect(put).rejects.toBeInstanceOf(StoreUnavailableError)
      expect((await db.get(ConformanceUser, { id: 4 }))?.name).toBe('v2')
      expect(await cache.get(ConformanceUser, { id: 4 })).toBeUndefined() // the old copy was invalidated
      cache.fail('delete')
      const del = chain.delete(v2)
      if (policy === 'report') await del
      else await expect(del).rejects.toBeInstanceOf(StoreUnavailableError)
      expect(await db.get(ConformanceUser, { id: 4 })).toBeUndefined()
      expect(stats().pendingRepairs).toBe(1)
      expect(events.map((e) => e.operation)).toEqual(['put', 'delete'])
    }
  })

  it('invalidate: counted, reported, kept as a repair; rejects under throw', async () => {
    for (const policy of ['report', 'throw'] as const) {
      const { cache, chain, events, stats } = setup({ onCacheError: policy })
      cache.fail('delete')
      const call = chain.batchInvalidate(ConformanceUser, [{ id: 5 }])
      if (policy === 'report') await call
      else await expect(call).rejects.toBeInstanceOf(StoreUnavailableError)
      expect(events.map((e) => e.operation)).toEqual(['invalidate'])
      expect(stats()).toMatchObject({ errors: 1, pendingRepairs: 1 })
    }
  })

  it('repair: a failed attempt is reported, never thrown (even under throw), and the stale key is skipped until it lands', async () => {
    const { cache, db, chain, events, stats } = setup({ onCacheError: 'throw' })
    await chain.put(user(6))
    cache.fail('delete')
    await expect(chain.delete(user(6))).rejects.toBeInstanceOf(StoreUnavailableError)
    // the next read finds the stale copy in the cache and drops it (its key awaits repair): the database answers
    expect(await chain.get(ConformanceUser, { id: 6 })).toBeUndefined()
    expect(stats()).toMatchObject({ skipped: 1, pendingRepairs: 1 })
    // the background repair fails and is reported
    await vi.waitFor(() => expect(events.map((e) => e.operation)).toContain('repair'))
    expect(events.map((e) => e.operation).filter((o) => o !== 'repair')).toEqual(['delete'])
    cache.recover()
    await db.put(user(6))
    await vi.waitFor(() => expect(stats().pendingRepairs).toBe(0), { timeout: 3000 })
    expect(await chain.get(ConformanceUser, { id: 6 })).toEqual(user(6))
  })

  it('circuit open: calls are skipped — counted as skipped, not as errors, never thrown', async () => {
    const { cache, db, chain, events, stats } = setup({ onCacheError: 'throw', breaker: { failures: 1, halfOpenAfter: 60_000 } })
    await db.put(user(7))
    cache.fail('get')
    await expect(chain.get(ConformanceUser, { id: 7 })).rejects.toBeInstanceOf(StoreUnavailableError) // opens the circuit
    expect(await chain.get(ConformanceUser, { id: 7 })).toEqual(user(7)) // skipped, so no error to throw
    // the second get's read and its backfill were both skipped
    expect(stats()).toMatchObject({ errors: 1, skipped: 2 })
    expect(events).toHaveLength(1)
  })

  it('stale read: a failing cache layer is reported and passed over; the database failure is what rejects', async () => {
    const { cache, db, chain, events, clock } = setup({ serveStale: true })
    await chain.put(user(8))
    clock.advance(1)
    db.fail('get')
    cache.fail('get')
    await expect(chain.get(ConformanceUser, { id: 8 })).rejects.toThrow(/failing get/)
    expect(events.map((e) => e.operation)).toEqual(['get', 'stale'])
  })

  it('lease: a failing lease layer sends the lookup below, reported, never thrown', async () => {
    const clock = new ManualClock()
    const top = new ProcessMemoryStore({ clock })
    const leaseLayer = new FaultStore(new KeyValueStore(new MapBackend(() => clock.now()), { clock }))
    const db = new ProcessMemoryStore({ clock })
    const chain = new ChainedStore([top, leaseLayer, db] as Store[], { leases: true, breaker: false, onCacheError: 'report' })
    const events: CacheErrorEvent[] = []
    chain.events.on('cacheError', (e: CacheErrorEvent) => events.push(e))
    await db.put(user(9))
    leaseLayer.fail('get') // the lease layer's reads and lease calls fail
    expect(await chain.get(ConformanceUser, { id: 9 })).toEqual(user(9))
    // the read of the lease layer failed, then taking the lease did: the database answered anyway
    expect(events.map((e) => e.operation)).toEqual(['get', 'lease'])
  })

  it('a caller error from a layer is never hidden, counted or thrown as a layer failure', async () => {
    const { chain, db, events, stats } = setup()
    db.fail() // (a caller error is thrown before any layer is asked)
    await expect(chain.get(ConformanceUser, { nope: 1 } as never)).rejects.toThrow(/chain store get/)
    await expect(chain.put(Object.assign(user(10), { id: undefined }))).rejects.toThrow(/chain store put/)
    expect(events).toEqual([])
    expect(stats()).toMatchObject({ errors: 0, skipped: 0 })
  })

  for (const policy of ['report', 'throw'] as const) {
    it(`a cache layer that refuses a put's value after the database write (too large for it): its old copy is invalidated, the layers above take the value (onCacheError ${policy})`, async () => {
      const clock = new ManualClock()
      const memory = new ProcessMemoryStore({ clock })
      const cache = new ThrowingStore(new KeyValueStore(new MapBackend(() => clock.now()), { clock }))
      const db = new ProcessMemoryStore({ clock })
      const chain = new ChainedStore([memory, cache, db], { breaker: false, clock, onCacheError: policy })
      const events: CacheErrorEvent[] = []
      chain.events.on('cacheError', (e: CacheErrorEvent) => events.push(e))
      await chain.put(user(10))
      const big = Object.assign(user(10), { name: 'v2, too large for the cache layer' })
      cache.errors.set('put', new ValueTooLargeError('value too large for this layer'))
      const put = chain.put(big)
      if (policy === 'throw') await expect(put).rejects.toBeInstanceOf(ValueTooLargeError)
      else await put
      expect(await db.get(ConformanceUser, { id: 10 })).toEqual(big)
      expect(await cache.get(ConformanceUser, { id: 10 })).toBeUndefined() // no old copy left behind
      expect(await memory.get(ConformanceUser, { id: 10 })).toEqual(big)
      expect(events.map((e) => [e.layer, e.operation])).toEqual([[cache.name, 'put']])
      expect((chain.stats()[1] as LayerStats).errors).toBe(1)
      cache.errors.delete('put')
      expect(await chain.get(ConformanceUser, { id: 10 })).toEqual(big)
    })
  }
})

describe('a cacheError listener or a meter that throws changes nothing the chain does', () => {
  /** A `cacheError` listener that throws (or returns a rejected promise); what it threw is a process warning. */
  function throwingListeners(chain: ChainedStore) {
    const seen: string[] = []
    chain.events.on('cacheError', (e: CacheErrorEvent) => {
      seen.push(e.operation)
      throw new Error(`listener bug (${e.operation})`)
    })
    chain.events.on('cacheError', async (e: CacheErrorEvent) => {
      throw new Error(`async listener bug (${e.operation})`)
    })
    const after: string[] = []
    chain.events.on('cacheError', (e: CacheErrorEvent) => after.push(e.operation)) // still called
    return { seen, after }
  }

  it('reads answer, writes resolve and keep their repairs, a repair loop goes on; each throw is a warning', async () => {
    const warnings: string[] = []
    const onWarning = (w: Error) => warnings.push(w.message)
    process.on('warning', onWarning)
    try {
      const { cache, db, chain, stats } = setup()
      const { seen, after } = throwingListeners(chain)
      await chain.put(user(40))
      await chain.put(user(41))
      cache.fail('get', 'delete', 'put')
      expect(await chain.get(ConformanceUser, { id: 40 })).toEqual(user(40))
      expect(await chain.batchGet(ConformanceUser, [{ id: 40 }, { id: 41 }])).toEqual([user(40), user(41)])
      await chain.delete(user(40))
      expect(stats().pendingRepairs).toBeGreaterThanOrEqual(1)
      expect(await chain.get(ConformanceUser, { id: 40 })).toBeUndefined()
      // the repair loop goes on after a listener threw on its failure, and lands once the layer is back
      await vi.waitFor(() => expect(seen).toContain('repair'))
      cache.recover()
      await vi.waitFor(() => expect(stats().pendingRepairs).toBe(0), { timeout: 3000 })
      expect(await cache.get(ConformanceUser, { id: 40 })).toBeUndefined()
      expect(await db.get(ConformanceUser, { id: 40 })).toBeUndefined()
      expect(after).toEqual(seen)
      await vi.waitFor(() => expect(warnings.some((w) => /async listener bug/.test(w))).toBe(true))
      expect(warnings.some((w) => /cacheError listener threw \(warned once per listener\): listener bug \(get\)/.test(w))).toBe(true)
      await chain.close()
    } finally {
      process.off('warning', onWarning)
    }
  })

  it('a listener or a meter throwing an object without a string form (Object.create(null)) is still only a warning, once', async () => {
    const warnings: string[] = []
    const onWarning = (w: Error) => warnings.push(w.message)
    process.on('warning', onWarning)
    try {
      const broken = () => {
        throw Object.create(null)
      }
      const meter = { createCounter: () => ({ add: broken }), createHistogram: () => ({ record: broken }) }
      const { cache, chain, stats } = setup({ meter })
      chain.events.on('cacheError', () => {
        throw Object.create(null)
      })
      chain.events.on('cacheError', async () => Promise.reject(Object.create(null)))
      await chain.put(user(43))
      cache.fail('get')
      for (let i = 0; i < 5; i++) expect(await chain.get(ConformanceUser, { id: 43 })).toEqual(user(43))
      expect(stats().errors).toBe(5)
      await vi.waitFor(() => expect(warnings.filter((w) => /STOCKPYLE|listener|meter/.test(w)).length).toBeGreaterThanOrEqual(3))
      await new Promise((r) => setImmediate(r))
      expect(warnings.filter((w) => /cacheError listener threw/.test(w))).toHaveLength(2) // once per listener
      expect(warnings.filter((w) => /its meter threw/.test(w))).toHaveLength(1)
      expect(warnings.some((w) => /\[object Object\]/.test(w))).toBe(true)
      await chain.close()
    } finally {
      process.off('warning', onWarning)
    }
  })

  it('a meter whose instruments throw: the call resolves as without a meter', async () => {
    const warnings: string[] = []
    const onWarning = (w: Error) => warnings.push(w.message)
    process.on('warning', onWarning)
    try {
      const broken = () => {
        throw new Error('meter bug')
      }
      const meter = { createCounter: () => ({ add: broken }), createHistogram: () => ({ record: broken }) }
      const { cache, db, chain } = setup({ meter })
      await chain.put(user(42))
      expect(await db.get(ConformanceUser, { id: 42 })).toEqual(user(42))
      expect(await chain.get(ConformanceUser, { id: 42 })).toEqual(user(42))
      cache.fail('get')
      expect(await chain.get(ConformanceUser, { id: 42 })).toEqual(user(42))
      await vi.waitFor(() => expect(warnings.filter((w) => /meter bug/.test(w)).length).toBeGreaterThan(0))
      await new Promise((r) => setImmediate(r))
      expect(warnings.filter((w) => /meter bug/.test(w))).toHaveLength(1) // once per chain, not per call
      await chain.close()
    } finally {
      process.off('warning', onWarning)
    }
  })
})

describe('errors that reach the caller of a chain name the chain and the layer they came from', () => {
  it('a database failure on get and put, a cache failure under throw, a caller error from a layer', async () => {
    const { cache, db, chain } = setup({ onCacheError: 'throw', name: 'users-chain' })
    db.fail('get', 'put')
    await expect(chain.get(ConformanceUser, { id: 20 })).rejects.toThrow(
      /^users-chain store get: .*failing get.* \(raised by its layer `fault\(memory\)`\)$/,
    )
    await expect(chain.put(user(20))).rejects.toThrow(/^users-chain store put: .*\(raised by its layer `fault\(memory\)`\)$/)
    db.recover()
    cache.fail('put')
    await expect(chain.put(user(21))).rejects.toThrow(/^users-chain store put: .*\(raised by its layer `fault\(map\)`\)$/)
    cache.recover()
    cache.errors.set('put', new ValueTooLargeError('map store put: 2 MB is over the limit'))
    const err = await chain.put(user(22)).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ValueTooLargeError)
    expect((err as Error).message).toBe('users-chain store put: map store put: 2 MB is over the limit (raised by its layer `fault(map)`)')
  })

  it('the stack names them once too: its first line is the name and the message', async () => {
    const { db, chain } = setup({ name: 'users-chain' })
    db.fail('get')
    const err = (await chain.get(ConformanceUser, { id: 23 }).catch((e: unknown) => e)) as Error
    expect(err.stack?.split('\n')[0]).toBe(`${err.name}: ${err.message}`)
  })
})
