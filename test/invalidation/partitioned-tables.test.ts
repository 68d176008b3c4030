/**
 * Database-trigger invalidation of a partitioned table (declarative partitioning). The row trigger
 * PostgreSQL clones to each partition fires there and names the partition in TG_TABLE_NAME, which no
 * model maps to: the triggers pass the partitioned table's name instead, and each partition gets the
 * TRUNCATE trigger (a TRUNCATE of one partition fires only its own statement triggers).
 */
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { ChainedStore, type Lookup, ProcessMemoryStore } from '../../src/index.js'
import {
  type DatabaseWatcher,
  installInvalidationTriggers,
  removeInvalidationTriggers,
  watchDatabase,
} from '../../src/invalidation/index.js'
import { SqlStore } from '../../src/stores/sql/index.js'
import { selectedStores } from '../harness/servers.js'
import { freshDatabase, poll } from './helpers.js'

/** Rows of `sales.events`, partitioned by region; `us` is partitioned again, by id. */
class PartEvent {
  static readonly stockpyleName = 'PartEvent'
  static readonly stockpyleKeys = [['region', 'id']] as const
  constructor(
    public region: string,
    public id: number,
    public v: number,
  ) {}
}

type Key = Lookup<typeof PartEvent>

describe.runIf(selectedStores().has('postgres'))('database-driven invalidation of a partitioned table', () => {
  let url = ''
  let sql: SqlStore
  let psql: pg.Client
  let memory: ProcessMemoryStore
  let chain: ChainedStore
  let watcher: DatabaseWatcher
  const evicted: Record<string, unknown>[] = []
  const errors: unknown[] = []

  /** Runs `work` and waits until the watcher evicted each of `keys`. */
  async function settle(keys: readonly Key[], work: () => Promise<unknown>): Promise<void> {
    evicted.length = 0
    await work()
    await poll(
      () => keys.every((k) => evicted.some((e) => e.region === k.region && e.id === k.id)),
      `the eviction of ${JSON.stringify(keys)}`,
    )
  }

  /** Reads through the chain until the memory layer holds the row (a fresh eviction's tombstone refuses backfills for 0.05 s). */
  async function cache(key: Key): Promise<void> {
    await poll(
      async () => {
        await chain.get(PartEvent, key)
        return (await memory.get(PartEvent, key)) !== undefined
      },
      `${JSON.stringify(key)} to be cached`,
    )
  }

  beforeAll(async () => {
    url = await freshDatabase(inject('postgresUrl'), 'stockpyle_partitioned')
    psql = new pg.Client({ connectionString: url })
    await psql.connect()
    await psql.query(`create schema sales`)
    await psql.query(
      `create table sales.events (region text not null, id integer not null, v integer, primary key (region, id)) partition by list (region)`,
    )
    // a partition in another schema than its table; a sub-partitioned one
    await psql.query(`create table public.events_eu partition of sales.events for values in ('eu')`)
    await psql.query(`create table sales.events_us partition of sales.events for values in ('us') partition by range (id)`)
    await psql.query(`create table sales.events_us_low partition of sales.events_us for values from (0) to (1000)`)
    sql = new SqlStore({ url }, { tables: { PartEvent: 'sales.events' } })
    memory = new ProcessMemoryStore({ tombstoneLifetime: 0.05 })
    chain = new ChainedStore([memory, sql])
  })

  afterAll(async () => {
    await watcher?.close()
    await chain?.close()
    await psql?.end()
  })

  it('installs idempotently: the row trigger on the table (cloned to every partition), the TRUNCATE trigger on the table and each partition', async () => {
    const installed = await installInvalidationTriggers(sql, [PartEvent])
    expect(installed.map((t) => [t.model, t.table, t.columns])).toEqual([['PartEvent', 'sales.events', ['id', 'region']]])
    await installInvalidationTriggers(sql, [PartEvent])
    const { rows } = await psql.query(
      `select tgrelid::regclass::text as table, tgname as name, tgparentid <> 0 as cloned, encode(tgargs, 'escape') as args
       from pg_trigger where tgname like 'stockpyle%' order by 1, 2`,
    )
    const row = (table: string, name: string, cloned: boolean) => ({ table, name, cloned, args: 'sales.events\\000' })
    expect(rows).toEqual([
      row('events_eu', 'stockpyle_invalidate', true),
      row('events_eu', 'stockpyle_invalidate_truncate', false),
      row('sales.events', 'stockpyle_invalidate', false),
      row('sales.events', 'stockpyle_invalidate_truncate', false),
      row('sales.events_us', 'stockpyle_invalidate', true),
      row('sales.events_us', 'stockpyle_invalidate_truncate', false),
      row('sales.events_us_low', 'stockpyle_invalidate', true),
      row('sales.events_us_low', 'stockpyle_invalidate_truncate', false),
    ])
  })

  it('a row changed through the table or directly in a partition (also a sub-partition) is evicted', async () => {
    watcher = watchDatabase(chain, {
      url,
      models: [PartEvent],
      onError: (err) => errors.push(err),
      onInvalidate: (_model, lookups) => evicted.push(...(lookups as readonly Record<string, unknown>[])),
    })
    await watcher.ready()
    const eu: Key = { region: 'eu', id: 1 }
    const us: Key = { region: 'us', id: 2 }
    await settle([eu, us], () => chain.batchPut([new PartEvent('eu', 1, 1), new PartEvent('us', 2, 1)]))

    await cache(eu)
    await settle([eu], () => psql.query(`update sales.events set v = 2 where region = 'eu' and id = 1`))
    expect(await memory.get(PartEvent, eu)).toBeUndefined()
    expect((await chain.get(PartEvent, eu))?.v).toBe(2)

    await cache(eu)
    await settle([eu], () => psql.query(`update public.events_eu set v = 3 where id = 1`))
    expect(await memory.get(PartEvent, eu)).toBeUndefined()
    expect((await chain.get(PartEvent, eu))?.v).toBe(3)

    await cache(us)
    await settle([us], () => psql.query(`update sales.events_us_low set v = 4 where id = 2`))
    expect((await chain.get(PartEvent, us))?.v).toBe(4)
    await cache(us)
    await settle([us], () => psql.query(`delete from sales.events_us where id = 2`))
    expect(await memory.get(PartEvent, us)).toBeUndefined()
    expect(await chain.get(PartEvent, us)).toBeUndefined()
    expect(errors).toEqual([])
  })

  it('an UPDATE that moves a row to another partition evicts the old and the new key', async () => {
    const from: Key = { region: 'eu', id: 5 }
    const to: Key = { region: 'us', id: 5 }
    await settle([from], () => chain.put(new PartEvent('eu', 5, 1)))
    await cache(from)
    await settle([from, to], () => psql.query(`update sales.events set region = 'us' where region = 'eu' and id = 5`))
    expect(await memory.get(PartEvent, from)).toBeUndefined()
    expect(await chain.get(PartEvent, from)).toBeUndefined()
    expect((await chain.get(PartEvent, to))?.v).toBe(1)
    expect(errors).toEqual([])
  })

  it('a partition attached after the install gets the row trigger: its rows are evicted too', async () => {
    await psql.query(`create table sales.events_ap (region text not null, id integer not null, v integer, primary key (region, id))`)
    await psql.query(`alter table sales.events attach partition sales.events_ap for values in ('ap')`)
    const ap: Key = { region: 'ap', id: 7 }
    await settle([ap], () => chain.put(new PartEvent('ap', 7, 1)))
    await cache(ap)
    await settle([ap], () => psql.query(`update sales.events_ap set v = 2 where id = 7`))
    expect(await memory.get(PartEvent, ap)).toBeUndefined()
    expect((await chain.get(PartEvent, ap))?.v).toBe(2)
    expect(errors).toEqual([])
  })

  it('rows written in a session with session_replication_role = replica are evicted, also from a partition attached after the install', async () => {
    const eu: Key = { region: 'eu', id: 11 }
    const ap: Key = { region: 'ap', id: 12 }
    await settle([eu, ap], () => chain.batchPut([new PartEvent('eu', 11, 1), new PartEvent('ap', 12, 1)]))
    await cache(eu)
    await cache(ap)
    await settle([eu, ap], async () => {
      await psql.query('set session_replication_role = replica')
      try {
        await psql.query('update sales.events set v = 2 where id in (11, 12)')
      } finally {
        await psql.query('set session_replication_role = origin')
      }
    })
    expect(await memory.get(PartEvent, eu)).toBeUndefined()
    expect(await memory.get(PartEvent, ap)).toBeUndefined()
    expect((await chain.get(PartEvent, ap))?.v).toBe(2)
    expect(errors).toEqual([])
  })

  it('a TRUNCATE of one partition cannot be targeted: it is reported for the partitioned table and memory is cleared', async () => {
    const eu: Key = { region: 'eu', id: 1 }
    await cache(eu)
    await psql.query('truncate public.events_eu')
    await poll(() => errors.length > 0, 'the report')
    expect(String(errors[0])).toMatch(/TRUNCATE of table `sales.events` cannot be targeted/)
    expect(await memory.get(PartEvent, eu)).toBeUndefined()
    errors.length = 0
  })

  it('a partition whose trigger clone is disabled (DISABLE TRIGGER ALL before a bulk load) or replica-only: ready() rejects, reported naming the partition, memory cleared at every check until it fires again', async () => {
    await installInvalidationTriggers(sql, [PartEvent])
    await psql.query(`insert into sales.events values ('eu', 21, 1)`)
    const key: Key = { region: 'eu', id: 21 }
    let now = Date.now()
    const fenced = new ProcessMemoryStore({ clock: { now: () => now } })
    const reads = new ChainedStore([fenced, sql])
    const reported: unknown[] = []
    const checking = watchDatabase(reads, { url, models: [PartEvent], heartbeatInterval: 50, onError: (e) => reported.push(e) })
    try {
      await checking.ready()
      for (const [breakage, statement, problem] of [
        ['disabled', 'alter table public.events_eu disable trigger all', /has trigger `stockpyle_invalidate` disabled/],
        [
          'replica-only',
          'alter table public.events_eu enable replica trigger stockpyle_invalidate',
          /has trigger `stockpyle_invalidate` firing only in sessions with session_replication_role = replica/,
        ],
      ] as const) {
        now += 10_000
        expect((await reads.get(PartEvent, key))?.v, breakage).toBe(1)
        expect(await fenced.get(PartEvent, key), breakage).toBeDefined()
        reported.length = 0
        await psql.query(statement)
        await poll(() => reported.length > 0, `the report of the partition's trigger ${breakage}`)
        const named = /partition `public.events_eu` of table `sales.events` \(model `PartEvent`\) .*run installInvalidationTriggers again/
        expect(reported.map(String)).toEqual([expect.stringMatching(named)])
        expect(String(reported[0])).toMatch(problem)
        expect(await fenced.get(PartEvent, key), breakage).toBeUndefined()
        // a write into the partition is not notified: what is cached is cleared again at the next checks
        await psql.query(`update public.events_eu set v = 2 where id = 21`)
        now += 10_000
        expect((await reads.get(PartEvent, key))?.v, breakage).toBe(2)
        await poll(async () => (await fenced.get(PartEvent, key)) === undefined, 'the next check to clear memory')
        // a watcher starting now refuses to be ready
        const starting = watchDatabase(reads, { url, models: [PartEvent], onError: () => {} })
        try {
          await expect(starting.ready()).rejects.toThrow(named)
        } finally {
          await starting.close()
        }
        expect(reported, 'reported once').toHaveLength(1)
        await psql.query(`update public.events_eu set v = 1 where id = 21`)
        await installInvalidationTriggers(sql, [PartEvent])
        await poll(async () => {
          now += 10_000
          await reads.get(PartEvent, key)
          return (await fenced.get(PartEvent, key)) !== undefined
        }, 'memory to be kept again')
      }
      // a plain ENABLE TRIGGER ALL (after the bulk load) fires in origin sessions only: reported, memory kept
      reported.length = 0
      await psql.query('alter table public.events_eu enable trigger all')
      await poll(() => reported.length > 0, 'the report of the origin-only clone')
      expect(reported.map(String)).toEqual([
        expect.stringMatching(
          /partition `public.events_eu` of table `sales.events` \(model `PartEvent`\) has trigger `stockpyle_invalidate` and trigger `stockpyle_invalidate_truncate` firing only in sessions with session_replication_role = origin .*run installInvalidationTriggers again/,
        ),
      ])
      now += 10_000
      await reads.get(PartEvent, key)
      await new Promise((resolve) => setTimeout(resolve, 200)) // 4 heartbeats: none clears memory or reports again
      expect(await fenced.get(PartEvent, key)).toBeDefined()
      expect(reported).toHaveLength(1)
    } finally {
      await checking.close()
      await fenced.close()
      await installInvalidationTriggers(sql, [PartEvent])
      await psql.query(`delete from sales.events where id = 21`)
    }
  })

  it('a partition dropped or detached (also a sub-partition) is noticed at the next heartbeat: reported for the table, memory cleared', async () => {
    await psql.query(`create table sales.events_jp partition of sales.events for values in ('jp')`)
    await psql.query(`create table sales.events_in partition of sales.events for values in ('in')`)
    await psql.query(`create table sales.events_us_high partition of sales.events_us for values from (1000) to (2000)`)
    await psql.query(`insert into sales.events values ('jp', 1, 1), ('in', 1, 1), ('us', 1500, 1)`)
    // a memory layer on a clock the test moves past the backfill fences of the watcher's clears
    let now = Date.now()
    const fenced = new ProcessMemoryStore({ clock: { now: () => now } })
    const reads = new ChainedStore([fenced, sql])
    const reported: unknown[] = []
    const checking = watchDatabase(reads, { url, models: [PartEvent], heartbeatInterval: 50, onError: (e) => reported.push(e) })
    try {
      await checking.ready()
      for (const [key, partition, statement] of [
        [{ region: 'jp', id: 1 }, 'sales.events_jp', 'drop table sales.events_jp'],
        [{ region: 'in', id: 1 }, 'sales.events_in', 'alter table sales.events detach partition sales.events_in'],
        [{ region: 'us', id: 1500 }, 'sales.events_us_high', 'drop table sales.events_us_high'],
      ] as const) {
        now += 10_000
        expect((await reads.get(PartEvent, key))?.v).toBe(1)
        expect(await fenced.get(PartEvent, key), partition).toBeDefined()
        reported.length = 0
        await psql.query(statement)
        await poll(() => reported.length > 0, `the report of ${partition}`)
        expect(reported.map(String)).toEqual([
          expect.stringMatching(
            new RegExp(
              `partition \`${partition}\` of table \`sales.events\` \\(model \`PartEvent\`\\) was dropped or detached.*memory layers were cleared`,
            ),
          ),
        ])
        expect(await fenced.get(PartEvent, key), partition).toBeUndefined()
        now += 10_000
        expect(await reads.get(PartEvent, key), partition).toBeUndefined()
      }
    } finally {
      await checking.close()
      await fenced.close()
      await psql.query('drop table sales.events_in')
    }
  })

  it('removeInvalidationTriggers removes the triggers of the table and of its partitions (also one detached since) and the function', async () => {
    await installInvalidationTriggers(sql, [PartEvent]) // the partition attached since gets its TRUNCATE trigger
    await psql.query(`alter table sales.events detach partition sales.events_ap`) // keeps its TRUNCATE trigger
    await removeInvalidationTriggers(sql, [PartEvent])
    await removeInvalidationTriggers(sql, [PartEvent]) // idempotent
    const { rows } = await psql.query(
      `select tgname from pg_trigger where tgname like 'stockpyle%' union all select proname from pg_proc where proname like 'stockpyle_notify%'`,
    )
    expect(rows).toEqual([])
  })
})
