import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import {
  ChainedStore,
  InvalidOptionError,
  KeyValueStore,
  type Lookup,
  type Model,
  ProcessMemoryStore,
  StockpyleError,
  type Store,
  StoreDecorator,
  StoreUnavailableError,
} from '../../src/index.js'
import {
  type DatabaseWatcher,
  installInvalidationTriggers,
  removeInvalidationTriggers,
  watchDatabase,
} from '../../src/invalidation/index.js'
import { RedisStore } from '../../src/stores/redis/index.js'
import { createTable, SqlStore } from '../../src/stores/sql/index.js'
import { ConformanceUser, conformanceTables, FaultStore, MapBackend, makeUser } from '../../src/testing/index.js'
import { freePort, selectedStores } from '../harness/servers.js'
import { freshDatabase, nextTurn, poll, summarize, UNREPORTED, warningsNaming } from './helpers.js'

/** A model with a bigint primary key, kept in another schema. */
class InvAccount {
  static readonly stockpyleName = 'InvAccount'
  static readonly stockpyleKeys = ['accountId', ['orgId', 'slug']] as const
  constructor(
    public accountId: bigint,
    public orgId: number,
    public slug: string,
    public label: string,
  ) {}
}

/** A model with a composite primary key. */
class InvMembership {
  static readonly stockpyleName = 'InvMembership'
  static readonly stockpyleKeys = [['orgId', 'userId']] as const
  constructor(
    public orgId: number,
    public userId: string,
    public role: string,
  ) {}
}

/** A model whose primary key is a `char(6)` column (blank-padded). */
class InvTag {
  static readonly stockpyleName = 'InvTag'
  static readonly stockpyleKeys = ['tag'] as const
  constructor(
    public tag: string,
    public v: string,
  ) {}
}

const MODELS = [ConformanceUser, InvAccount, InvMembership, InvTag] as const
const DATABASE = 'stockpyle_invalidation'
const stores = selectedStores()

interface Invalidation {
  readonly model: string
  readonly lookups: readonly Record<string, unknown>[]
  /** performance.now() when every store had applied it. */
  readonly at: number
}

/** One simulated process: a chain of memory (+ Redis) over the shared SqlStore, and its watcher. */
interface Proc {
  readonly memory: ProcessMemoryStore
  readonly redis: RedisStore | undefined
  readonly chain: ChainedStore
  readonly watcher: DatabaseWatcher
  readonly log: Invalidation[]
  readonly errors: unknown[]
  reconnects: number
}

describe('installing triggers on a database that cannot be reached', () => {
  it('rejects with StoreUnavailableError naming the call, as the store does (not a raw ECONNREFUSED)', async () => {
    const port = await freePort()
    const sqlStore = new SqlStore({ url: `postgres://postgres@127.0.0.1:${port}/nowhere` }, { timeout: 2000 })
    try {
      for (const call of [installInvalidationTriggers, removeInvalidationTriggers]) {
        const err = await call(sqlStore, [ConformanceUser]).catch((e: unknown) => e)
        expect(err).toBeInstanceOf(StoreUnavailableError)
        expect((err as Error).message).toMatch(new RegExp(`${call.name}.*ECONNREFUSED`))
      }
    } finally {
      await sqlStore.close()
    }
  })
})

describe.runIf(stores.has('postgres'))('database-driven invalidation (PostgreSQL triggers + watchDatabase)', () => {
  let url = ''
  let store: SqlStore
  let psql: pg.Client
  const procs: Proc[] = []
  const redisPrefix = `dbinv-${process.pid}-${Date.now()}:`

  /** A chain [memory, redis?, sql] with a watcher. Chains share the SqlStore, which they never close (see afterAll). */
  async function startProcess(): Promise<Proc> {
    const memory = new ProcessMemoryStore({ tombstoneLifetime: 0.1 })
    const redis = stores.has('redis')
      ? new RedisStore({ url: inject('redis').url, prefix: redisPrefix, tombstoneLifetime: 0.1 })
      : undefined
    const layers: Store[] = redis === undefined ? [memory, store] : [memory, redis, store]
    const chain = new ChainedStore(layers)
    const log: Invalidation[] = []
    const errors: unknown[] = []
    const proc: Proc = {
      memory,
      redis,
      chain,
      log,
      errors,
      reconnects: 0,
      watcher: watchDatabase(chain, {
        url,
        models: MODELS,
        onError: (e) => errors.push(e),
        onReconnect: () => proc.reconnects++,
        onInvalidate: (model, lookups) =>
          log.push({ model: (model as { stockpyleName: string }).stockpyleName, lookups: lookups as never, at: performance.now() }),
      }),
    }
    await proc.watcher.ready()
    procs.push(proc)
    return proc
  }

  async function stopProcess(proc: Proc): Promise<void> {
    await proc.watcher.close()
    await Promise.all([proc.memory.close(), proc.redis?.close()])
    procs.splice(procs.indexOf(proc), 1)
  }

  /** Cache layers (all but the database) that hold the object. */
  async function holders<M extends Model>(proc: Proc, model: M, lookup: Lookup<M>): Promise<string[]> {
    const out: string[] = []
    if ((await proc.memory.get(model, lookup)) !== undefined) out.push('memory')
    if (proc.redis !== undefined && (await proc.redis.get(model, lookup)) !== undefined) out.push('redis')
    return out
  }

  /**
   * Reads until every cache layer holds the object: through [redis, sql] (a chain that is never closed:
   * it owns nothing), then through the process's chain. A recent eviction's tombstone refuses backfills
   * for 0.1 s, so this may take a few rounds.
   */
  async function cacheEverywhere<M extends Model>(proc: Proc, model: M, lookup: Lookup<M>): Promise<void> {
    const all = proc.redis === undefined ? 1 : 2
    const lower = proc.redis === undefined ? undefined : new ChainedStore([proc.redis, store])
    await poll(
      async () => {
        await lower?.get(model, lookup)
        await proc.chain.get(model, lookup)
        return (await holders(proc, model, lookup)).length === all
      },
      `${show(lookup)} to be cached in every layer`,
    )
  }

  /**
   * Clears the process's log, runs `work` (a write), and waits until the watcher applied the
   * notifications of these keys (JSON of the lookups), so nothing of this write arrives later.
   */
  async function settle(proc: Proc, model: string, keys: readonly string[], work: () => Promise<unknown>): Promise<void> {
    proc.log.length = 0
    await work()
    await poll(() => keys.every((k) => invalidated(proc, model).includes(k)), `the watcher to apply ${keys.join(', ')}`)
  }

  const show = (v: unknown): string => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x))
  const invalidated = (proc: Proc, model: string): string[] =>
    proc.log.filter((i) => i.model === model).flatMap((i) => i.lookups.map((l) => show(l)))

  beforeAll(async () => {
    url = await freshDatabase(inject('postgresUrl'), DATABASE)
    store = new SqlStore({ url }, { camelCase: true, tables: { InvAccount: 'billing.accounts' }, maxConnections: 4 })
    const db = await store.kysely()
    await sql`create schema billing`.execute(db)
    const user = conformanceTables.find((t) => t.model === ConformanceUser)
    await createTable(store, ConformanceUser, { columns: user?.columns ?? {} })
    await createTable(store, InvAccount, { columns: { accountId: 'bigint', orgId: 'integer', slug: 'text', label: 'text' } })
    await createTable(store, InvMembership, { columns: { orgId: 'integer', userId: 'text', role: 'text' } })
    await sql`create table inv_tags (tag char(6) primary key, v text)`.execute(db)
    psql = new pg.Client({ connectionString: url, application_name: 'psql-stand-in' })
    await psql.connect()
  })

  afterAll(async () => {
    for (const proc of [...procs]) await stopProcess(proc)
    await psql?.end()
    await store?.close()
  })

  it('installs idempotently: one row trigger and one TRUNCATE trigger per table, the same through SqlStore or Kysely', async () => {
    const installed = await installInvalidationTriggers(store, MODELS)
    expect(installed.map((t) => [t.model, t.table, t.columns])).toEqual([
      ['ConformanceUser', 'public.conformance_users', ['id']],
      ['InvAccount', 'billing.accounts', ['account_id']],
      ['InvMembership', 'public.inv_memberships', ['org_id', 'user_id']],
      ['InvTag', 'public.inv_tags', ['tag']],
    ])
    await installInvalidationTriggers(store, MODELS)
    const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 1 }) }) })
    try {
      await installInvalidationTriggers(db, MODELS, { camelCase: true, tables: { InvAccount: 'billing.accounts' } })
    } finally {
      await db.destroy()
    }
    const { rows } = await psql.query<{ table: string; name: string }>(
      `select tgrelid::regclass::text as table, tgname as name from pg_trigger where tgname like 'stockpyle%' order by 1, 2`,
    )
    expect(rows).toEqual([
      { table: 'billing.accounts', name: 'stockpyle_invalidate' },
      { table: 'billing.accounts', name: 'stockpyle_invalidate_truncate' },
      { table: 'conformance_users', name: 'stockpyle_invalidate' },
      { table: 'conformance_users', name: 'stockpyle_invalidate_truncate' },
      { table: 'inv_memberships', name: 'stockpyle_invalidate' },
      { table: 'inv_memberships', name: 'stockpyle_invalidate_truncate' },
      { table: 'inv_tags', name: 'stockpyle_invalidate' },
      { table: 'inv_tags', name: 'stockpyle_invalidate_truncate' },
    ])
  })

  it('a row updated or deleted with plain SQL by another client is evicted from every cache layer', async () => {
    const proc = await startProcess()
    const user = makeUser(1)
    await settle(proc, 'ConformanceUser', ['{"id":1}'], () => proc.chain.put(user)) // its own notification evicts too
    await cacheEverywhere(proc, ConformanceUser, { id: 1 })
    await settle(proc, 'ConformanceUser', ['{"id":1}'], () =>
      psql.query(`update conformance_users set name = 'changed by psql' where id = 1`),
    )
    expect(await holders(proc, ConformanceUser, { id: 1 })).toEqual([])
    expect(await holders(proc, ConformanceUser, { email: user.email })).toEqual([])
    expect((await proc.chain.get(ConformanceUser, { id: 1 }))?.name).toBe('changed by psql')
    expect((await proc.chain.get(ConformanceUser, { email: user.email }))?.name).toBe('changed by psql')
    await cacheEverywhere(proc, ConformanceUser, { email: user.email })
    await settle(proc, 'ConformanceUser', ['{"id":1}'], () => psql.query('delete from conformance_users where id = 1'))
    expect(await holders(proc, ConformanceUser, { email: user.email })).toEqual([])
    expect(await proc.chain.get(ConformanceUser, { email: user.email })).toBeUndefined()
    expect(proc.errors).toEqual([])
  })

  it('a row written in a session with session_replication_role = replica (pg_restore --disable-triggers, bulk loads, a logical-replication subscriber) is evicted too', async () => {
    const [proc] = procs as [Proc]
    const { rows } = await psql.query(`select distinct tgenabled from pg_trigger where tgname like 'stockpyle%'`)
    expect(rows).toEqual([{ tgenabled: 'A' }]) // ENABLE ALWAYS: whatever the writing session's role
    await settle(proc, 'ConformanceUser', ['{"id":3}'], () => proc.chain.put(makeUser(3)))
    await cacheEverywhere(proc, ConformanceUser, { id: 3 })
    await settle(proc, 'ConformanceUser', ['{"id":3}'], async () => {
      await psql.query('set session_replication_role = replica')
      try {
        await psql.query(`update conformance_users set name = 'loaded as replica' where id = 3`)
      } finally {
        await psql.query('set session_replication_role = origin')
      }
    })
    expect(await holders(proc, ConformanceUser, { id: 3 })).toEqual([])
    expect((await proc.chain.get(ConformanceUser, { id: 3 }))?.name).toBe('loaded as replica')
  })

  it('a primary-key change evicts the old and the new key', async () => {
    const [proc] = procs as [Proc]
    const user = makeUser(2)
    await settle(proc, 'ConformanceUser', ['{"id":2}'], () => proc.chain.put(user))
    await cacheEverywhere(proc, ConformanceUser, { id: 2 })
    await settle(proc, 'ConformanceUser', ['{"id":200}', '{"id":2}'], () =>
      psql.query('update conformance_users set id = 200 where id = 2'),
    )
    expect(invalidated(proc, 'ConformanceUser')).toEqual(['{"id":200}', '{"id":2}'])
    expect(await holders(proc, ConformanceUser, { id: 2 })).toEqual([])
    expect(await proc.chain.get(ConformanceUser, { id: 2 })).toBeUndefined()
    expect((await proc.chain.get(ConformanceUser, { email: user.email }))?.id).toBe(200)
  })

  it('maps columns and values as SqlStore does: camelCase, int8 → bigint (beyond 2^53), a schema-qualified table, a composite key', async () => {
    const [proc] = procs as [Proc]
    const id = 2n ** 60n + 1n
    const account = '{"accountId":"1152921504606846977n"}'
    const membership = '{"orgId":7,"userId":"u-1"}'
    await settle(proc, 'InvAccount', [account], () => proc.chain.put(new InvAccount(id, 7, 'acme', 'v1')))
    await settle(proc, 'InvMembership', [membership], () => proc.chain.put(new InvMembership(7, 'u-1', 'reader')))
    await cacheEverywhere(proc, InvAccount, { accountId: id })
    await cacheEverywhere(proc, InvMembership, { orgId: 7, userId: 'u-1' })
    await settle(proc, 'InvAccount', [account], () =>
      psql.query(`update billing.accounts set label = 'v2' where account_id = $1`, [id.toString()]),
    )
    expect(proc.log[0]?.lookups[0]?.accountId).toBe(id) // a bigint with every digit
    await settle(proc, 'InvMembership', [membership], () =>
      psql.query(`update inv_memberships set role = 'owner' where org_id = 7 and user_id = 'u-1'`),
    )
    expect(await holders(proc, InvAccount, { orgId: 7, slug: 'acme' })).toEqual([])
    expect(await holders(proc, InvMembership, { orgId: 7, userId: 'u-1' })).toEqual([])
    expect((await proc.chain.get(InvAccount, { accountId: id }))?.label).toBe('v2')
    expect((await proc.chain.get(InvMembership, { orgId: 7, userId: 'u-1' }))?.role).toBe('owner')
  })

  it('a char(n) primary key is sent blank-padded, as SqlStore reads and caches it', async () => {
    const [proc] = procs as [Proc]
    const tag = new InvTag('ab    ', 't1')
    await settle(proc, 'InvTag', ['{"tag":"ab    "}'], () => proc.chain.put(tag))
    await cacheEverywhere(proc, InvTag, { tag: 'ab    ' })
    await settle(proc, 'InvTag', ['{"tag":"ab    "}'], () => psql.query(`update inv_tags set v = 't2' where tag = 'ab'`))
    expect(await holders(proc, InvTag, { tag: 'ab    ' })).toEqual([])
    expect((await proc.chain.get(InvTag, { tag: 'ab    ' }))?.v).toBe('t2')
  })

  it('a rolled-back transaction sends nothing: its row stays cached', async () => {
    const [proc] = procs as [Proc]
    await settle(proc, 'ConformanceUser', ['{"id":7}', '{"id":8}'], () => proc.chain.batchPut([makeUser(7), makeUser(8)]))
    await cacheEverywhere(proc, ConformanceUser, { id: 7 })
    await settle(proc, 'ConformanceUser', ['{"id":8}'], async () => {
      await psql.query('begin')
      await psql.query(`update conformance_users set name = 'rolled back' where id = 7`)
      await psql.query('rollback')
      await psql.query(`update conformance_users set name = 'committed' where id = 8`) // a marker after the rollback
    })
    expect(invalidated(proc, 'ConformanceUser')).toEqual(['{"id":8}'])
    expect(await holders(proc, ConformanceUser, { id: 7 })).toHaveLength(proc.redis === undefined ? 1 : 2)
    expect((await proc.memory.get(ConformanceUser, { id: 7 }))?.name).toBe(makeUser(7).name)
  })

  it('notifications arrive in commit order, not in the order the rows were written; nothing before the commit', async () => {
    const [proc] = procs as [Proc]
    await settle(proc, 'ConformanceUser', ['{"id":21}', '{"id":22}', '{"id":23}'], () => proc.chain.batchPut([21, 22, 23].map(makeUser)))
    const clients = await Promise.all(
      [21, 22, 23].map(async () => {
        const c = new pg.Client({ connectionString: url })
        await c.connect()
        return c
      }),
    )
    const [c21, c22, c23] = clients as [pg.Client, pg.Client, pg.Client]
    try {
      // three open transactions, then a committed marker: the open ones have sent nothing yet
      await settle(proc, 'ConformanceUser', ['{"id":8}'], async () => {
        for (const [c, id] of [
          [c21, 21],
          [c22, 22],
          [c23, 23],
        ] as const) {
          await c.query('begin')
          await c.query(`update conformance_users set name = 'tx' where id = $1`, [id])
        }
        await psql.query(`update conformance_users set name = 'marker' where id = 8`)
      })
      expect(invalidated(proc, 'ConformanceUser')).toEqual(['{"id":8}'])
      await settle(proc, 'ConformanceUser', ['{"id":21}', '{"id":22}', '{"id":23}'], async () => {
        await c23.query('commit')
        await c21.query('commit')
        await c22.query('commit')
      })
      expect(invalidated(proc, 'ConformanceUser')).toEqual(['{"id":23}', '{"id":21}', '{"id":22}'])
    } finally {
      await Promise.all(clients.map((c) => c.end()))
    }
  })

  it('every process running a watcher evicts; a multi-row statement is applied as one batch', async () => {
    const [one] = procs as [Proc]
    const two = await startProcess()
    const keys = ['{"id":31}', '{"id":32}', '{"id":33}']
    try {
      await settle(two, 'ConformanceUser', keys, () =>
        settle(one, 'ConformanceUser', keys, () => one.chain.batchPut([31, 32, 33].map(makeUser))),
      )
      for (const id of [31, 32, 33]) {
        await cacheEverywhere(one, ConformanceUser, { id })
        await cacheEverywhere(two, ConformanceUser, { id })
      }
      await settle(two, 'ConformanceUser', keys, () =>
        settle(one, 'ConformanceUser', keys, () => psql.query(`update conformance_users set name = 'bulk' where id in (31, 32, 33)`)),
      )
      for (const proc of [one, two]) {
        for (const id of [31, 32, 33]) expect(await proc.memory.get(ConformanceUser, { id })).toBeUndefined()
        expect(proc.log.filter((i) => i.model === 'ConformanceUser')).toHaveLength(1) // one batchInvalidate for the statement
      }
      expect((await two.chain.get(ConformanceUser, { id: 32 }))?.name).toBe('bulk')
    } finally {
      await stopProcess(two)
    }
  })

  it('measures the delay from an UPDATE (autocommit) to the eviction (100 updates)', async () => {
    const [proc] = procs as [Proc]
    await settle(proc, 'ConformanceUser', ['{"id":40}'], () => proc.chain.put(makeUser(40)))
    const samples: number[] = []
    for (let i = 0; i < 110; i++) {
      const before = proc.log.length
      const start = performance.now()
      await psql.query('update conformance_users set name = $1 where id = 40', [`n${i}`])
      await poll(() => proc.log.length > before, 'the eviction', 5000)
      if (i >= 10) samples.push((proc.log[before] as Invalidation).at - start) // the first 10 warm up
    }
    const delay = summarize(samples)
    console.log(
      `watchDatabase: UPDATE → evicted from ${proc.redis === undefined ? 'memory' : 'memory and Redis'} over ${delay.n} updates: median ${delay.median} ms, p99 ${delay.p99} ms, max ${delay.max} ms`,
    )
  })

  it('TRUNCATE cannot be targeted: memory layers are cleared and onError says so', async () => {
    const [proc] = procs as [Proc]
    await settle(proc, 'InvMembership', ['{"orgId":9,"userId":"u-9"}'], () => proc.chain.put(new InvMembership(9, 'u-9', 'reader')))
    await cacheEverywhere(proc, InvMembership, { orgId: 9, userId: 'u-9' })
    proc.errors.length = 0
    await psql.query('truncate inv_memberships')
    await poll(() => proc.errors.length > 0, 'the report')
    expect(String(proc.errors[0])).toMatch(/TRUNCATE of table `public.inv_memberships` cannot be targeted/)
    expect(await proc.memory.get(InvMembership, { orgId: 9, userId: 'u-9' })).toBeUndefined()
  })

  it('survives a lost LISTEN connection: memory is cleared, onReconnect is called, and evictions go on', async () => {
    const [proc] = procs as [Proc]
    await settle(proc, 'ConformanceUser', ['{"id":50}'], () => proc.chain.put(makeUser(50)))
    await cacheEverywhere(proc, ConformanceUser, { id: 50 })
    const reconnects = proc.reconnects
    const { rows } = await psql.query<{ n: number }>(
      `select count(pg_terminate_backend(pid))::int as n from pg_stat_activity where application_name = 'stockpyle-listen' and datname = $1`,
      [DATABASE],
    )
    expect(rows[0]?.n).toBe(1)
    await poll(() => proc.reconnects === reconnects + 1, 'the reconnect')
    expect(proc.watcher.listening).toBe(true)
    expect(await proc.memory.get(ConformanceUser, { id: 50 })).toBeUndefined() // cleared: changes may have been missed
    await cacheEverywhere(proc, ConformanceUser, { id: 50 })
    await settle(proc, 'ConformanceUser', ['{"id":50}'], () =>
      psql.query(`update conformance_users set name = 'after the reconnect' where id = 50`),
    )
    expect(await holders(proc, ConformanceUser, { id: 50 })).toEqual([])
    expect((await proc.chain.get(ConformanceUser, { id: 50 }))?.name).toBe('after the reconnect')
  })

  it('negative caching: a row another client inserts is found by every key once the watcher applied it (missLifetime)', async () => {
    const memory = new ProcessMemoryStore({ tombstoneLifetime: 0.1 })
    const chain = new ChainedStore([memory, store], { missLifetime: 60 }) // never closed: it would close the shared SqlStore
    const applied: string[] = []
    const watcher = watchDatabase(chain, {
      url,
      models: MODELS,
      onInvalidate: (_m, lookups) => applied.push(...lookups.map((l) => show(l))),
    })
    try {
      await watcher.ready()
      const user = makeUser(60)
      expect(await chain.get(ConformanceUser, { email: user.email })).toBeUndefined() // remembered as missing
      expect(await chain.get(ConformanceUser, { id: 60 })).toBeUndefined()
      await store.put(user) // another client: not through the chain
      await poll(() => applied.includes('{"id":60}'), 'the watcher to apply the insert')
      expect((await chain.get(ConformanceUser, { email: user.email }))?.name).toBe(user.name)
      expect((await chain.get(ConformanceUser, { id: 60 }))?.name).toBe(user.name)
    } finally {
      await watcher.close()
      await memory.close()
    }
  })

  it('a key column renamed after the install: every client still writes; the watcher clears memory and says to install again', async () => {
    class InvGadget {
      static readonly stockpyleName = 'InvGadget'
      static readonly stockpyleKeys = ['id'] as const
      constructor(
        public id: number,
        public v: string,
      ) {}
    }
    await psql.query('create table inv_gadgets (id int primary key, v text)')
    await installInvalidationTriggers(store, [InvGadget])
    const memory = new ProcessMemoryStore()
    const errors: unknown[] = []
    const watcher = watchDatabase(memory, { url, sql: store, models: [InvGadget], onError: (e) => errors.push(e) })
    try {
      await watcher.ready()
      await psql.query(`insert into inv_gadgets values (1, 'a')`)
      await psql.query('alter table inv_gadgets rename column id to gadget_id')
      for (const [op, statement] of [
        ['INSERT', `insert into inv_gadgets values (2, 'b')`],
        ['UPDATE', `update inv_gadgets set v = 'z'`],
        ['DELETE', 'delete from inv_gadgets'],
      ] as const) {
        await memory.put(new InvGadget(1, 'cached'))
        errors.length = 0
        await psql.query(statement) // the trigger's `NEW."id"` no longer exists: this failed, from every client
        await poll(() => errors.length > 0, `the watcher's report of the ${op}`)
        expect(String(errors[0])).toMatch(
          new RegExp(
            `${op} of a row of table \`public.inv_gadgets\` cannot be targeted: the trigger could not read its key columns \\(record "(new|old)" has no field "id"\\); run installInvalidationTriggers again .* memory layers were cleared`,
          ),
        )
        expect(await memory.get(InvGadget, { id: 1 })).toBeUndefined()
      }
      const { rows } = await psql.query('select count(*)::int as n from inv_gadgets')
      expect(rows).toEqual([{ n: 0 }])
      // what triggers installed for other key columns send: the watcher knows the table by `id`
      await memory.put(new InvGadget(1, 'cached'))
      errors.length = 0
      await psql.query(`select pg_notify('stockpyle_rows', '{"table": "public.inv_gadgets", "op": "UPDATE", "pk": {"gadget_id": "1"}}')`)
      await poll(() => errors.length > 0, "the watcher's report of the unmappable key")
      expect(String(errors[0])).toMatch(
        /has no usable value for key column `id`: .*run installInvalidationTriggers again\); memory layers were cleared/,
      )
      expect(await memory.get(InvGadget, { id: 1 })).toBeUndefined()
    } finally {
      await watcher.close()
      await memory.close()
      await psql.query('drop table inv_gadgets; drop function stockpyle_notify_inv_gadgets()')
    }
  })

  it('memory layers behind decorators (logging, metrics, FaultStore) and other in-process layers are cleared when a change cannot be targeted', async () => {
    class Logged extends StoreDecorator {}
    /** A cache over a Map in this process, declared as such. */
    class InProcessMap extends KeyValueStore {
      constructor() {
        super(new MapBackend())
        Object.assign(this, { capabilities: { ...this.capabilities, inProcess: true } })
      }
    }
    const logged = new ProcessMemoryStore()
    const faulty = new ProcessMemoryStore()
    const map = new InProcessMap()
    // never closed: they would close the shared SqlStore
    const chains = [
      new ChainedStore([new Logged(logged), store]),
      new ChainedStore([new FaultStore(faulty), store]),
      new ChainedStore([new Logged(new FaultStore(map)), store]),
    ]
    const errors: unknown[] = []
    const watcher = watchDatabase(chains, { url, models: MODELS, onError: (e) => errors.push(e) })
    try {
      await watcher.ready()
      for (const memory of [logged, faulty, map]) await memory.put(new InvTag('dd    ', 'cached'))
      await psql.query('truncate inv_tags')
      await poll(() => errors.length > 0, 'the report')
      expect(String(errors[0])).toMatch(/TRUNCATE of table `public.inv_tags` cannot be targeted: memory layers were cleared/)
      for (const memory of [logged, faulty, map])
        await poll(async () => (await memory.get(InvTag, { tag: 'dd    ' })) === undefined, `${memory.name} to be cleared`)
    } finally {
      await watcher.close()
      await Promise.all([logged.close(), faulty.close(), map.close()])
    }
  })

  for (const withOnError of [false, true]) {
    const title = withOnError
      ? 'a watcher with onError: it receives every error, and nothing is warned'
      : `a watcher without onError: its first error is one ${UNREPORTED} warning naming it, later ones are dropped`
    it(`${title} (a malformed notification, then an onInvalidate that rejects)`, async () => {
      const channel = `inv_unreported_${withOnError}`
      // a table of its own, with triggers on this channel (a watcher reports tables whose triggers notify another)
      const name = withOnError ? 'Reported' : 'Unreported'
      const table = `inv_${name.toLowerCase()}s`
      const Watched = tableModel(name)
      await psql.query(`create table ${table} (id int primary key, v text)`)
      await installInvalidationTriggers(store, [Watched], { channel })
      const warnings = warningsNaming(` ${channel})`)
      const reported: unknown[] = []
      let calls = 0
      const memory = new ProcessMemoryStore()
      const watcher = watchDatabase(memory, {
        url,
        channel,
        sql: store,
        models: [Watched],
        onInvalidate: async () => {
          calls++
          throw new Error(`onInvalidate failure ${calls}`)
        },
        ...(withOnError ? { onError: (e: unknown) => reported.push(e) } : {}),
      })
      try {
        await watcher.ready()
        await psql.query(`select pg_notify($1, 'not a row change')`, [channel])
        for (const n of [1, 2]) {
          await psql.query('select pg_notify($1, $2)', [
            channel,
            JSON.stringify({ table: `public.${table}`, op: 'UPDATE', pk: { id: String(n) } }),
          ])
          await poll(() => calls === n, `the change ${n} to be applied`)
        }
        await nextTurn()
        if (withOnError) {
          expect(warnings.messages).toEqual([])
          expect(reported.map((e) => (e as Error).message)).toEqual([
            expect.stringMatching(/not a row change/),
            'onInvalidate failure 1',
            'onInvalidate failure 2',
          ])
        } else {
          expect(warnings.messages).toEqual([
            expect.stringMatching(new RegExp(`^database-watcher\\(.* ${channel}\\): .*not a row change.*\\bonError\\b`)),
          ])
        }
      } finally {
        warnings.stop()
        await watcher.close()
        await memory.close()
        await psql.query(`drop table ${table}; drop function stockpyle_notify_${table}()`)
      }
    })
  }

  /** A model over a table of its own (`inv_<name>s`, `id int primary key, v text`). */
  function tableModel(name: string) {
    return class {
      static readonly stockpyleName = `Inv${name}`
      static readonly stockpyleKeys = ['id'] as const
      constructor(
        public id: number,
        public v: string,
      ) {}
    }
  }

  /**
   * A chain [memory, sql] over the shared SqlStore and a watcher checking the triggers every 50 ms. The
   * memory layer runs on a clock the test moves: `pastFences()` ends the backfill fences the watcher's
   * clears set (each refuses backfills for the tombstone lifetime), so a row read after it is cached and
   * only a clear can remove it.
   */
  function watchAlone(models: readonly Model[]) {
    let now = Date.now()
    const memory = new ProcessMemoryStore({ clock: { now: () => now } })
    const chain = new ChainedStore([memory, store]) // never closed: it would close the shared SqlStore
    const errors: unknown[] = []
    const applied: string[] = []
    const watcher = watchDatabase(chain, {
      url,
      models,
      heartbeatInterval: 50,
      onError: (e) => errors.push(e),
      onInvalidate: (_m, lookups) => applied.push(...lookups.map((l) => show(l))),
    })
    return {
      memory,
      chain,
      watcher,
      errors,
      applied,
      pastFences: () => {
        now += 10_000
      },
      close: async () => {
        await watcher.close()
        await memory.close()
      },
    }
  }

  it('a table without the triggers: ready() rejects with E_SCHEMA naming it and the remedy; until they are installed memory is cleared at every heartbeat', async () => {
    const Bare = tableModel('Bare')
    await psql.query(`create table inv_bares (id int primary key, v text); insert into inv_bares values (1, 'old')`)
    const w = watchAlone([Bare])
    try {
      const err = await w.watcher.ready().catch((e: unknown) => e)
      expect(err).toBeInstanceOf(StockpyleError)
      expect((err as StockpyleError).code).toBe('E_SCHEMA')
      expect((err as Error).message).toMatch(
        /table `public.inv_bares` \(model `InvBare`\) has no trigger `stockpyle_invalidate`.*run installInvalidationTriggers/,
      )
      expect(w.errors).toEqual([err])
      w.pastFences()
      await w.memory.put(new Bare(1, 'cached'))
      await poll(async () => (await w.memory.get(Bare, { id: 1 })) === undefined, 'the heartbeat to clear memory')
      expect(w.errors).toEqual([err]) // reported once, not at every heartbeat
      await installInvalidationTriggers(store, [Bare])
      await psql.query(`update inv_bares set v = 'new' where id = 1`)
      await poll(() => w.applied.includes('{"id":1}'), 'the watcher to apply the update')
      w.pastFences()
      expect((await w.chain.get(Bare, { id: 1 }))?.v).toBe('new')
      await new Promise((resolve) => setTimeout(resolve, 200)) // 4 heartbeats: none clears memory any more
      expect((await w.memory.get(Bare, { id: 1 }))?.v).toBe('new')
      expect(w.errors).toEqual([err])
    } finally {
      await w.close()
      await psql.query('drop table inv_bares cascade; drop function stockpyle_notify_inv_bares()')
    }
  })

  it('a trigger dropped, disabled or moved to another channel while watched: reported naming the table, memory cleared', async () => {
    const Broken = tableModel('Broken')
    await psql.query(`create table inv_brokens (id int primary key, v text); insert into inv_brokens values (1, 'old')`)
    try {
      for (const [breakage, statement, reported] of [
        ['dropped', 'drop trigger stockpyle_invalidate on inv_brokens', /has no trigger `stockpyle_invalidate`/],
        ['disabled', 'alter table inv_brokens disable trigger stockpyle_invalidate', /has trigger `stockpyle_invalidate` disabled/],
        [
          'dropped (TRUNCATE)',
          'drop trigger stockpyle_invalidate_truncate on inv_brokens',
          /has no trigger `stockpyle_invalidate_truncate`/,
        ],
        [
          'on another channel',
          undefined,
          /has trigger `stockpyle_invalidate` calling a function that does not notify channel `stockpyle_rows`/,
        ],
      ] as const) {
        await installInvalidationTriggers(store, [Broken])
        const w = watchAlone([Broken])
        try {
          await w.watcher.ready()
          w.pastFences()
          expect((await w.chain.get(Broken, { id: 1 }))?.v).toBe('old')
          expect(await w.memory.get(Broken, { id: 1 }), breakage).toBeDefined()
          if (statement === undefined) await installInvalidationTriggers(store, [Broken], { channel: 'elsewhere' })
          else await psql.query(statement)
          await poll(() => w.errors.length > 0, `the report of the trigger ${breakage}`)
          expect(w.errors.map(String)).toEqual([expect.stringMatching(reported)])
          expect(String(w.errors[0])).toMatch(/table `public.inv_brokens` \(model `InvBroken`\).*run installInvalidationTriggers again/)
          expect(await w.memory.get(Broken, { id: 1 }), breakage).toBeUndefined()
        } finally {
          await w.close()
        }
      }
    } finally {
      await psql.query('drop table inv_brokens; drop function stockpyle_notify_inv_brokens()')
    }
  })

  it('a trigger firing only in origin sessions (installed by an older release) is reported once; memory is kept (its other writes are notified)', async () => {
    const Older = tableModel('Older')
    await psql.query(`create table inv_olders (id int primary key, v text); insert into inv_olders values (1, 'old')`)
    await installInvalidationTriggers(store, [Older])
    await psql.query('alter table inv_olders enable trigger stockpyle_invalidate') // a plain trigger: ENABLE ORIGIN
    const w = watchAlone([Older])
    try {
      await w.watcher.ready() // notified for ordinary writes: not a failed start
      expect(w.errors.map(String)).toEqual([
        expect.stringMatching(
          /table `public.inv_olders` \(model `InvOlder`\) has trigger `stockpyle_invalidate` firing only in sessions with session_replication_role = origin .*run installInvalidationTriggers again/,
        ),
      ])
      w.pastFences()
      expect((await w.chain.get(Older, { id: 1 }))?.v).toBe('old')
      await new Promise((resolve) => setTimeout(resolve, 200)) // 4 heartbeats: none clears memory or reports again
      expect((await w.memory.get(Older, { id: 1 }))?.v).toBe('old')
      expect(w.errors).toHaveLength(1)
    } finally {
      await w.close()
      await psql.query('drop table inv_olders; drop function stockpyle_notify_inv_olders()')
    }
  })

  it('a table recreated by a migration (DROP + CREATE + reload in one transaction): reported, memory cleared, nothing stale served', async () => {
    const Recreated = tableModel('Recreated')
    await psql.query(`create table inv_recreateds (id int primary key, v text); insert into inv_recreateds values (1, 'old'), (2, 'old')`)
    await installInvalidationTriggers(store, [Recreated])
    const w = watchAlone([Recreated])
    try {
      await w.watcher.ready()
      w.pastFences()
      expect((await w.chain.get(Recreated, { id: 1 }))?.v).toBe('old')
      expect((await w.chain.get(Recreated, { id: 2 }))?.v).toBe('old')
      expect(await w.memory.get(Recreated, { id: 1 })).toBeDefined()
      await psql.query(`begin; drop table inv_recreateds;
        create table inv_recreateds (id int primary key, v text); insert into inv_recreateds values (1, 'reloaded'); commit`)
      await poll(() => w.errors.length >= 2, 'the reports')
      expect(w.errors.map(String)).toEqual([
        expect.stringMatching(/table `public.inv_recreateds` \(model `InvRecreated`\) was recreated .*memory layers were cleared/),
        expect.stringMatching(/table `public.inv_recreateds` \(model `InvRecreated`\) has no trigger `stockpyle_invalidate`/),
      ])
      expect(w.errors.every((e) => e instanceof StockpyleError)).toBe(true)
      expect(await w.memory.get(Recreated, { id: 1 })).toBeUndefined()
      expect(await w.memory.get(Recreated, { id: 2 })).toBeUndefined()
      w.pastFences()
      expect((await w.chain.get(Recreated, { id: 1 }))?.v).toBe('reloaded')
      expect(await w.chain.get(Recreated, { id: 2 })).toBeUndefined()
      await installInvalidationTriggers(store, [Recreated])
      await psql.query(`update inv_recreateds set v = 'later' where id = 1`)
      await poll(() => w.applied.includes('{"id":1}'), 'the watcher to apply the update')
      expect((await w.chain.get(Recreated, { id: 1 }))?.v).toBe('later')
    } finally {
      await w.close()
      await psql.query('drop table inv_recreateds; drop function stockpyle_notify_inv_recreateds()')
    }
  })

  it('a table swapped for another by renaming (its triggers installed): reported as recreated, memory cleared', async () => {
    const Swapped = tableModel('Swapped')
    await psql.query(`create table inv_swappeds (id int primary key, v text); insert into inv_swappeds values (1, 'old')`)
    await psql.query(`create table inv_swappeds_next (id int primary key, v text); insert into inv_swappeds_next values (1, 'swapped')`)
    await installInvalidationTriggers(store, [Swapped])
    await installInvalidationTriggers(await store.kysely(), [Swapped], { tables: { InvSwapped: 'inv_swappeds_next' } })
    const w = watchAlone([Swapped])
    try {
      await w.watcher.ready()
      w.pastFences()
      expect((await w.chain.get(Swapped, { id: 1 }))?.v).toBe('old')
      await psql.query(`begin; alter table inv_swappeds rename to inv_swappeds_old;
        alter table inv_swappeds_next rename to inv_swappeds; commit`)
      await poll(() => w.errors.length > 0, 'the report')
      expect(w.errors.map(String)).toEqual([expect.stringMatching(/table `public.inv_swappeds` \(model `InvSwapped`\) was recreated/)])
      expect(await w.memory.get(Swapped, { id: 1 })).toBeUndefined()
      w.pastFences()
      expect((await w.chain.get(Swapped, { id: 1 }))?.v).toBe('swapped')
    } finally {
      await w.close()
      await psql.query(`drop table inv_swappeds, inv_swappeds_old;
        drop function stockpyle_notify_inv_swappeds(), stockpyle_notify_inv_swappeds_next()`)
    }
  })

  it('removeInvalidationTriggers removes both triggers and the function of each table', async () => {
    await removeInvalidationTriggers(store, MODELS)
    await removeInvalidationTriggers(store, MODELS) // idempotent
    const { rows } = await psql.query(
      `select tgname from pg_trigger where tgname like 'stockpyle%' union all select proname from pg_proc where proname like 'stockpyle_notify%'`,
    )
    expect(rows).toEqual([])
    await installInvalidationTriggers(store, MODELS)
  })

  it('rejects invalid arguments synchronously (watchDatabase) or before touching the database (installer), naming them', async () => {
    const memory = new ProcessMemoryStore()
    expect(() => watchDatabase(memory, { models: MODELS } as never)).toThrow(/give option `url`, `connection` or `pool`/)
    expect(() => watchDatabase(memory, { url, models: [] })).toThrow(InvalidOptionError)
    expect(() => watchDatabase(memory, { url, models: [class NotAModel {}] as never })).toThrow(/models`\[0\] is not a model/)
    expect(() => watchDatabase({} as never, { url, models: MODELS })).toThrow(/batchInvalidate/)
    expect(() => watchDatabase(memory, { url, models: MODELS, channel: '' })).toThrow(/option `channel`/)
    // a SqlStore (the chain's last layer, or `sql`) supplies the naming: `tables`/`camelCase` are refused, never ignored
    const chain = new ChainedStore([memory, store]) // never closed: it would close the shared SqlStore
    expect(() => watchDatabase(chain, { url, models: MODELS, camelCase: 'yes' as never })).toThrow(/option `camelCase` must be a boolean/)
    expect(() => watchDatabase(chain, { url, models: MODELS, tables: 42 as never })).toThrow(/option `tables` must be a Map/)
    for (const naming of [{ camelCase: true }, { camelCase: false }, { tables: { InvAccount: 'billing.accounts' } }]) {
      const option = Object.keys(naming)[0]
      const refused = new RegExp(`option \`${option}\` .*given with a SqlStore, which supplies it`)
      expect(() => watchDatabase(chain, { url, models: MODELS, ...naming })).toThrow(refused)
      expect(() => watchDatabase(memory, { url, models: MODELS, sql: store, ...naming })).toThrow(refused)
      await expect(installInvalidationTriggers(store, MODELS, naming)).rejects.toThrow(refused)
    }
    const db = await store.kysely()
    expect(() => watchDatabase(memory, { url, models: MODELS, sql: store, db })).toThrow(/options `sql` and `db` .*one/)
    const sqlite = new SqlStore({ url: 'sqlite::memory:' })
    await expect(installInvalidationTriggers(sqlite, MODELS)).rejects.toThrow(/needs PostgreSQL/)
    await expect(installInvalidationTriggers({} as never, MODELS)).rejects.toThrow(/SqlStore or a Kysely/)
    await Promise.all([memory.close(), sqlite.close()])
  })
})
