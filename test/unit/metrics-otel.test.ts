/**
 * A chain's metrics through the real OpenTelemetry SDK (@opentelemetry/sdk-metrics with its
 * in-memory exporter): instrument names, kinds, units and attributes as docs/chaining.md documents
 * them, a duration for every layer call (database writes and fast-path hits included), stale ages on
 * the chain's clock, one `chain` attribute per chain, and the database failure behind a stale answer.
 * That `provider.getMeter()` is accepted as the chain's `meter` is checked by tsc under strict settings.
 */

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Meter, ValueType } from '@opentelemetry/api'
import {
  AggregationTemporality,
  DataPointType,
  type Histogram,
  InMemoryMetricExporter,
  MeterProvider,
  type MetricData,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics'
import Database from 'better-sqlite3'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import {
  type CacheErrorEvent,
  ChainedStore,
  type DecoratedOperation,
  Entry,
  KeyValueStore,
  type Model,
  PartialFailureError,
  ProcessMemoryStore,
  StockpyleError,
  StoreDecorator,
} from '../../src/index.js'
import { createTable, SqlStore } from '../../src/stores/sql/index.js'
import { ConformanceUser, conformanceTables, FaultStore, ManualClock, MapBackend, makeUser } from '../../src/testing/index.js'
import { selectedStores } from '../harness/servers.js'

/** A MeterProvider exporting to memory; `collect()` flushes and returns the latest cumulative metrics. */
function openTelemetry() {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 })
  const provider = new MeterProvider({ readers: [reader] })
  const meter: Meter = provider.getMeter('stockpyle')
  return {
    meter,
    async collect(): Promise<MetricData[]> {
      await reader.forceFlush()
      return (
        exporter
          .getMetrics()
          .at(-1)
          ?.scopeMetrics.flatMap((s) => s.metrics) ?? []
      )
    },
    shutdown: () => provider.shutdown(),
  }
}

type Attributes = Record<string, unknown>

/** The data points of metric `name` as `{ attributes, value }`. */
function points(metrics: MetricData[], name: string): { attributes: Attributes; value: number | Histogram }[] {
  const metric = metrics.find((m) => m.descriptor.name === name)
  return (metric?.dataPoints ?? []).map((p) => ({ attributes: p.attributes as Attributes, value: p.value as number | Histogram }))
}

/** Histogram counts of `stockpyle.layer.duration` by `layer/operation` (one chain). */
function durationCounts(metrics: MetricData[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const p of points(metrics, 'stockpyle.layer.duration'))
    out[`${p.attributes.layer}/${p.attributes.operation}`] = (p.value as Histogram).count
  return out
}

/** Each metric's kind as exported: a counter is a monotonic sum, a histogram has buckets; plus its unit. */
function kinds(metrics: MetricData[]): Record<string, string> {
  const kind = (m: MetricData): string => {
    if (m.dataPointType === DataPointType.SUM) return m.isMonotonic ? 'monotonic sum' : 'sum'
    return m.dataPointType === DataPointType.HISTOGRAM ? 'histogram' : String(m.dataPointType)
  }
  return Object.fromEntries(metrics.map((m) => [m.descriptor.name, `${kind(m)}${m.descriptor.unit === '' ? '' : ` ${m.descriptor.unit}`}`]))
}

/** A SqlStore named `sql` with the conformance tables: in memory, or on `file` waiting at most 50 ms for its lock. */
async function sqlite(file?: string): Promise<SqlStore> {
  const store =
    file === undefined
      ? new SqlStore({ url: 'sqlite::memory:' }, { name: 'sql' })
      : new SqlStore({ url: `sqlite:${file}` }, { name: 'sql', timeout: 50 })
  for (const t of conformanceTables) await createTable(store, t.model as Model, { table: t.table, columns: t.columns })
  return store
}

/** `stockpyle.layer.lookups` as `layer/result` → count. */
function lookupCounts(metrics: MetricData[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const p of points(metrics, 'stockpyle.layer.lookups')) out[`${p.attributes.layer}/${p.attributes.result}`] = p.value as number
  return out
}

/** `stockpyle.layer.errors` as `layer/operation` → count. */
function errorCounts(metrics: MetricData[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const p of points(metrics, 'stockpyle.layer.errors')) out[`${p.attributes.layer}/${p.attributes.operation}`] = p.value as number
  return out
}

const dir = mkdtempSync(join(tmpdir(), 'stockpyle-metrics-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let files = 0

let cleanup: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const c of cleanup.reverse()) await c()
  cleanup = []
})

describe.runIf(selectedStores().has('sqlite'))('chain metrics through the OpenTelemetry SDK', () => {
  it('instrument names, kinds, units and attributes', async () => {
    const otel = openTelemetry()
    cleanup.push(otel.shutdown)
    const chain = new ChainedStore([new ProcessMemoryStore(), await sqlite()], { meter: otel.meter, name: 'users' })
    cleanup.push(() => chain.close())
    await chain.put(makeUser(1))
    await chain.get(ConformanceUser, { id: 1 })
    await chain.get(ConformanceUser, { id: 2 })
    const metrics = await otel.collect()
    expect(kinds(metrics)).toMatchObject({
      'stockpyle.layer.lookups': 'monotonic sum',
      'stockpyle.layer.duration': 'histogram ms',
    })
    for (const m of metrics) expect(m.descriptor.valueType).toBe(ValueType.DOUBLE)
    const lookups = points(metrics, 'stockpyle.layer.lookups').map((p) => [p.attributes, p.value])
    expect(lookups).toEqual(
      expect.arrayContaining([
        [{ chain: 'users', layer: 'memory', result: 'hit' }, 1],
        [{ chain: 'users', layer: 'memory', result: 'miss' }, 1],
        [{ chain: 'users', layer: 'sql', result: 'miss' }, 1],
      ]),
    )
    for (const p of points(metrics, 'stockpyle.layer.duration')) {
      expect(Object.keys(p.attributes).sort()).toEqual(['chain', 'layer', 'operation'])
      expect((p.value as Histogram).min).toBeGreaterThanOrEqual(0)
    }
  })

  it('a duration for every layer call: database puts and deletes, fast-path hits, reads below, backfills', async () => {
    const otel = openTelemetry()
    cleanup.push(otel.shutdown)
    const memory = new ProcessMemoryStore()
    const chain = new ChainedStore([memory, await sqlite()], { meter: otel.meter, name: 'users' })
    cleanup.push(() => chain.close())
    await chain.put(makeUser(1)) // sql put, memory put
    expect(await chain.get(ConformanceUser, { id: 1 })).toBeDefined() // fast path: memory hit
    await memory.clear()
    expect(await chain.get(ConformanceUser, { id: 1 })).toBeDefined() // memory miss, sql hit, memory backfill
    await chain.delete(makeUser(1)) // sql delete, memory delete
    await chain.batchGet(ConformanceUser, [{ id: 1 }, { id: 2 }]) // memory miss, sql miss
    expect(durationCounts(await otel.collect())).toEqual({
      'sql/put': 1,
      'memory/put': 1,
      'memory/get': 3,
      'sql/get': 2,
      'memory/backfill': 1,
      'sql/delete': 1,
      'memory/delete': 1,
    })
  })

  it('repairs of a cache layer that missed a delete are timed too', async () => {
    const otel = openTelemetry()
    cleanup.push(otel.shutdown)
    const cache = new FaultStore(new ProcessMemoryStore({ name: 'cache' }))
    const chain = new ChainedStore([cache, await sqlite()], { meter: otel.meter, name: 'users' })
    cleanup.push(() => chain.close())
    await chain.put(makeUser(1))
    cache.fail('delete')
    await chain.delete(makeUser(1)) // the cache keeps its copy: remembered for repair
    expect(chain.stats()[0]?.pendingRepairs).toBe(1)
    cache.recover()
    expect(await chain.get(ConformanceUser, { id: 1 })).toBeUndefined() // the pending key is not read from the cache
    // repairs drain in the background (after the retry delay): wait for this one to land
    for (let i = 0; i < 100 && (chain.stats()[0]?.pendingRepairs ?? 0) > 0; i++) await new Promise((r) => setTimeout(r, 50))
    expect(chain.stats()[0]?.pendingRepairs).toBe(0)
    const counts = durationCounts(await otel.collect())
    expect(counts['fault(cache)/repair']).toBeGreaterThanOrEqual(1)
    expect(counts['fault(cache)/delete']).toBe(1)
  })

  it('failed database writes are counted as errors of the database layer, and timed', async () => {
    const otel = openTelemetry()
    cleanup.push(otel.shutdown)
    const db = new FaultStore(new ProcessMemoryStore({ name: 'db' }))
    const chain = new ChainedStore([new ProcessMemoryStore(), db], { meter: otel.meter, name: 'users' })
    cleanup.push(() => chain.close())
    db.fail('put', 'delete')
    await expect(chain.put(makeUser(1))).rejects.toThrow(/failing put/)
    await expect(chain.delete(makeUser(1))).rejects.toThrow(/failing delete/)
    const metrics = await otel.collect()
    expect(points(metrics, 'stockpyle.layer.errors').map((p) => [p.attributes, p.value])).toEqual([
      [{ chain: 'users', layer: 'fault(db)', operation: 'put' }, 1],
      [{ chain: 'users', layer: 'fault(db)', operation: 'delete' }, 1],
    ])
    expect(durationCounts(metrics)).toMatchObject({ 'fault(db)/put': 1, 'fault(db)/delete': 1 })
    expect(chain.stats()[1]?.errors).toBe(2)
  })

  it('a read-only workload whose backfills fail counts their clean-up as `invalidate`, never as a delete', async () => {
    const otel = openTelemetry()
    cleanup.push(otel.shutdown)
    const cache = new FaultStore(new ProcessMemoryStore({ name: 'cache' }))
    const db = await sqlite()
    await db.put(makeUser(1))
    const chain = new ChainedStore([cache, db], { meter: otel.meter, name: 'users', breaker: false })
    cleanup.push(() => chain.close())
    const operations: string[] = []
    chain.events.on('cacheError', (e: CacheErrorEvent) => operations.push(e.operation))
    cache.fail('put', 'delete')
    expect(await chain.get(ConformanceUser, { id: 1 })).toBeDefined() // the backfill fails, then its clean-up
    expect(operations.filter((o) => o !== 'repair')).toEqual(['backfill', 'invalidate'])
    const metrics = await otel.collect()
    expect(errorCounts(metrics)).toEqual(expect.objectContaining({ 'fault(cache)/backfill': 1, 'fault(cache)/invalidate': 1 }))
    expect(Object.keys(errorCounts(metrics)).filter((k) => k.endsWith('/delete'))).toEqual([])
    expect(Object.keys(durationCounts(metrics)).filter((k) => k.endsWith('/delete'))).toEqual([])
  })

  it('two chains whose layers share names stay apart by their `chain` attribute', async () => {
    const otel = openTelemetry()
    cleanup.push(otel.shutdown)
    const a = new ChainedStore([new ProcessMemoryStore(), new ProcessMemoryStore({ name: 'db' })], { meter: otel.meter, name: 'a' })
    const b = new ChainedStore([new ProcessMemoryStore(), new ProcessMemoryStore({ name: 'db' })], { meter: otel.meter, name: 'b' })
    cleanup.push(
      () => a.close(),
      () => b.close(),
    )
    await a.put(makeUser(1))
    await a.get(ConformanceUser, { id: 1 })
    await b.get(ConformanceUser, { id: 1 })
    await b.get(ConformanceUser, { id: 2 })
    const metrics = await otel.collect()
    const memoryHits = points(metrics, 'stockpyle.layer.lookups')
      .filter((p) => p.attributes.layer === 'memory')
      .map((p) => `${p.attributes.chain} ${p.attributes.result} ${p.value}`)
      .sort()
    expect(memoryHits).toEqual(['a hit 1', 'b miss 2'])
    const chains = new Set(metrics.flatMap((m) => m.dataPoints.map((p) => p.attributes.chain)))
    expect(chains).toEqual(new Set(['a', 'b']))
  })

  it('a stale answer: its age on the chain clock, the database failure behind it, and the lookups it served', async () => {
    const otel = openTelemetry()
    cleanup.push(otel.shutdown)
    const clock = new ManualClock(Date.UTC(2001, 0, 1)) // far from real time: an age from Date.now() would be years
    const db = new FaultStore(new ProcessMemoryStore({ clock, name: 'db' }))
    const chain = new ChainedStore([new ProcessMemoryStore({ clock, lifetime: 10, grace: 60 }), db], {
      meter: otel.meter,
      name: 'stale',
      serveStale: true,
      clock,
    })
    cleanup.push(() => chain.close())
    await chain.batchPut([makeUser(1), makeUser(2)])
    clock.advance(15_000)
    db.fail('get')
    expect((await chain.batchGet(ConformanceUser, [{ id: 1 }, { id: 2 }])).map((u) => u?.id)).toEqual([1, 2])
    const metrics = await otel.collect()
    const [age] = points(metrics, 'stockpyle.stale.age')
    expect(age?.attributes).toEqual({ chain: 'stale', layer: 'memory' })
    expect(age?.value).toMatchObject({ count: 2, sum: 10_000, min: 5000, max: 5000 })
    expect(points(metrics, 'stockpyle.stale.served')).toEqual([{ attributes: { chain: 'stale', error: 'E_STORE_UNAVAILABLE' }, value: 2 }])
    expect(points(metrics, 'stockpyle.layer.errors')).toEqual([
      { attributes: { chain: 'stale', layer: 'fault(db)', operation: 'get' }, value: 1 },
    ])
    expect(kinds(metrics)).toMatchObject({
      'stockpyle.stale.age': 'histogram ms',
      'stockpyle.stale.served': 'monotonic sum',
      'stockpyle.layer.errors': 'monotonic sum',
    })
  })

  it('a transaction is timed as one `transaction` call of the database layer; its cache updates after COMMIT as puts', async () => {
    const otel = openTelemetry()
    cleanup.push(otel.shutdown)
    const chain = new ChainedStore([new ProcessMemoryStore(), await sqlite()], { meter: otel.meter, name: 'users' })
    cleanup.push(() => chain.close())
    await chain.transaction(async (tx) => {
      await tx.put(makeUser(1))
      await tx.put(makeUser(2))
    })
    const metrics = await otel.collect()
    expect(durationCounts(metrics)).toEqual({ 'sql/transaction': 1, 'memory/put': 2 })
    expect(errorCounts(metrics)).toEqual({})
  })

  it('a database failure inside a transaction is counted and named after the chain, as a put’s is; the callback’s own errors pass unchanged and uncounted, a key conflict uncounted', async () => {
    const otel = openTelemetry()
    cleanup.push(otel.shutdown)
    const file = join(dir, `locked-${++files}.db`)
    const chain = new ChainedStore([new ProcessMemoryStore(), await sqlite(file)], { meter: otel.meter, name: 'users' })
    cleanup.push(() => chain.close())
    await chain.put(makeUser(1))
    // another connection holds the database: SQLite answers SQLITE_BUSY after the store's 50 ms timeout
    const locker = new Database(file)
    locker.exec('BEGIN EXCLUSIVE')
    try {
      await expect(chain.put(makeUser(2))).rejects.toThrow(/^users store put: .*\(raised by its layer `sql`\)$/)
      const failed = chain.transaction(async (tx) => tx.put(makeUser(3)))
      await expect(failed).rejects.toMatchObject({ code: 'E_STORE_UNAVAILABLE' })
      await expect(failed).rejects.toThrow(/^users store transaction: .*\(raised by its layer `sql`\)$/)
    } finally {
      locker.exec('ROLLBACK')
      locker.close()
    }
    expect(errorCounts(await otel.collect())).toEqual({ 'sql/put': 1, 'sql/transaction': 1 })
    expect(chain.stats()[1]?.errors).toBe(2)
    // the callback's own errors — a stockpyle error too — are not the layer's; a key conflict (the caller's data) is not counted
    const mine = new Error('mine')
    await expect(chain.transaction(() => Promise.reject(mine))).rejects.toBe(mine)
    const ours = new StockpyleError('thrown by the callback')
    await expect(
      chain.transaction(async () => {
        throw ours
      }),
    ).rejects.toBe(ours)
    expect(ours.message).toBe('thrown by the callback')
    const clash = makeUser(4)
    clash.email = makeUser(1).email
    const conflict = chain.transaction(async (tx) => tx.put(clash))
    await expect(conflict).rejects.toMatchObject({ code: 'E_KEY_CONFLICT' })
    await expect(conflict).rejects.toThrow(/^users store transaction: sql store .*\(raised by its layer `sql`\)$/)
    // not a function: refused by the chain, in its name, before the layer is called
    await expect(chain.transaction(42 as never)).rejects.toThrow(/^users store: transaction\(\) takes a function, got `42`$/)
    const metrics = await otel.collect()
    expect(errorCounts(metrics)).toEqual({ 'sql/put': 1, 'sql/transaction': 1 })
    expect(chain.stats()[1]?.errors).toBe(2)
    expect(durationCounts(metrics)['sql/transaction']).toBe(4)
  })
})

/** A decorator whose `batchGetEntries` fails on the node owning position 1, the other answering as its inner store does. */
class HalfFailing extends StoreDecorator {
  protected override async around<T>(op: DecoratedOperation, _args: readonly unknown[], call: () => Promise<T>): Promise<T> {
    if (op !== 'batchGetEntries') return call()
    const answered = (await call()) as unknown[]
    const results = answered.map((e, i) => (i === 1 ? undefined : e))
    throw new PartialFailureError('node b failed', { failed: [1], results, nodes: ['b'] })
  }
}

describe('stockpyle.layer.lookups{result="error"}: lookups a failing layer did not answer', () => {
  async function chainOf(layers: ConstructorParameters<typeof ChainedStore>[0], onCacheError: 'report' | 'throw') {
    const otel = openTelemetry()
    cleanup.push(otel.shutdown)
    const chain = new ChainedStore(layers, { meter: otel.meter, name: 'c', onCacheError })
    cleanup.push(() => chain.close())
    return { chain, otel }
  }

  it('the authoritative layer failing a read', async () => {
    const db = new FaultStore(new KeyValueStore(new MapBackend(), { name: 'db' }))
    const { chain, otel } = await chainOf([new ProcessMemoryStore(), db], 'report')
    db.fail('get')
    await expect(chain.batchGet(ConformanceUser, [{ id: 1 }, { id: 2 }])).rejects.toMatchObject({ code: 'E_STORE_UNAVAILABLE' })
    const metrics = await otel.collect()
    expect(lookupCounts(metrics)).toEqual({ 'memory/miss': 2, 'fault(db)/error': 2 })
    expect(errorCounts(metrics)).toEqual({ 'fault(db)/get': 1 })
  })

  it('a cache layer failing a read under onCacheError: "throw"', async () => {
    const cache = new FaultStore(new KeyValueStore(new MapBackend(), { name: 'cache' }))
    const { chain, otel } = await chainOf([new ProcessMemoryStore(), cache, new ProcessMemoryStore({ name: 'db' })], 'throw')
    cache.fail('get')
    await expect(chain.batchGet(ConformanceUser, [{ id: 1 }, { id: 2 }])).rejects.toMatchObject({ code: 'E_STORE_UNAVAILABLE' })
    expect(lookupCounts(await otel.collect())).toEqual({ 'memory/miss': 2, 'fault(cache)/error': 2 })
  })

  it('an in-process first layer failing a get (the fast path), under either policy', async () => {
    for (const policy of ['report', 'throw'] as const) {
      const first = new FaultStore(new ProcessMemoryStore())
      const { chain, otel } = await chainOf([first, new ProcessMemoryStore({ name: 'db' })], policy)
      first.fail('get')
      const read = chain.get(ConformanceUser, { id: 1 })
      if (policy === 'throw') await expect(read).rejects.toMatchObject({ code: 'E_STORE_UNAVAILABLE' })
      else expect(await read).toBeUndefined()
      const counts = lookupCounts(await otel.collect())
      expect(counts['fault(memory)/error']).toBe(1)
      expect(counts['fault(memory)/miss']).toBeUndefined()
    }
  })

  it('a cache layer some of whose nodes failed, under either policy: the failed node’s lookups are errors, the others’ answers count', async () => {
    for (const policy of ['report', 'throw'] as const) {
      const inner = new ProcessMemoryStore({ name: 'cache' })
      await inner.batchPutEntries([new Entry(makeUser(1), undefined)])
      const db = new ProcessMemoryStore({ name: 'db' })
      const { chain, otel } = await chainOf([new HalfFailing(inner, { name: 'half' }), db], policy)
      const read = chain.batchGet(ConformanceUser, [{ id: 1 }, { id: 2 }])
      if (policy === 'throw') await expect(read).rejects.toBeInstanceOf(PartialFailureError)
      else expect((await read).map((u) => u?.id)).toEqual([1, undefined])
      const counts = lookupCounts(await otel.collect())
      expect(counts['half/hit']).toBe(1)
      expect(counts['half/error']).toBe(1)
    }
  })
})
