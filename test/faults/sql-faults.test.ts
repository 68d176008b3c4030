import { readdirSync, readFileSync } from 'node:fs'
import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ChainedStore, ProcessMemoryStore, StoreUnavailableError } from '../../src/index.js'
import { createTable, SqlStore } from '../../src/stores/sql/index.js'
import { type PostgresServer, selectedStores, startPostgres } from '../harness/servers.js'

class Frozen {
  static readonly stockpyleName = 'SqlFaultFrozen'
  static readonly stockpyleKeys = ['id'] as const
  constructor(
    public id: number,
    public n: number,
    public note?: string,
  ) {}
}

/** The PIDs of the children of `pid` (PostgreSQL's backends and helper processes), from /proc. */
function childrenOf(pid: number): number[] {
  const out: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // "pid (comm) S ppid …": the parent follows the state, after the last ')'
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === pid) out.push(Number(entry))
    } catch {}
  }
  return out
}

/** `fn()`, tried again every 50 ms for up to 10 s while it rejects. */
async function eventually<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = performance.now() + 10_000
  for (;;) {
    try {
      return await fn()
    } catch (err) {
      if (performance.now() > deadline) throw err
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
}

/** Settles `promise` and says how, and after how many ms. */
async function timed(promise: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = performance.now()
  try {
    await promise
    return { error: undefined, ms: performance.now() - started }
  } catch (error) {
    return { error, ms: performance.now() - started }
  }
}

/** Holds an ACCESS EXCLUSIVE lock on `table` in a transaction of `admin` until `release()`; `locker` ends with it. */
async function holdLock(admin: Kysely<any>, table: string): Promise<{ release: () => void; locker: Promise<void> }> {
  let release = () => {}
  const held = new Promise<void>((resolve) => {
    release = resolve
  })
  let locked = () => {}
  const isLocked = new Promise<void>((resolve) => {
    locked = resolve
  })
  const locker = admin.transaction().execute(async (trx) => {
    await sql`lock table ${sql.table(table)} in access exclusive mode`.execute(trx)
    locked()
    await held
  })
  await isLocked
  return { release, locker }
}
describe.runIf(selectedStores().has('postgres'))('SqlStore on a PostgreSQL server that freezes or loses a connection', () => {
  let server: PostgresServer
  let admin: Kysely<any>
  beforeAll(async () => {
    server = await startPostgres()
    const pool = new pg.Pool({ connectionString: server.url, max: 2 })
    // a client pool.end() closed may still be told of the shutdown by stop(), and the SIGKILL of a
    // backend restarts PostgreSQL, ending every connection (queries in flight reject)
    pool.on('error', () => {})
    pool.on('connect', (client) => client.on('error', () => {}))
    admin = new Kysely<any>({ dialect: new PostgresDialect({ pool }) })
  }, 120_000)
  afterAll(async () => {
    await admin?.destroy()
    await server?.stop()
  })

  it('a frozen server (SIGSTOP): every call rejects with StoreUnavailableError after the timeout, and works again after SIGCONT', async () => {
    const store = new SqlStore({ url: server.url }, { timeout: 500, maxConnections: 2, tables: { SqlFaultFrozen: 'frozen_items' } })
    await createTable(store, Frozen, { columns: { id: 'integer', n: 'integer', note: 'text' }, ifNotExists: true })
    await store.batchPut([new Frozen(1, 1), new Frozen(2, 2)])
    const chain = new ChainedStore([new ProcessMemoryStore(), store])
    const pids = [server.pid, ...childrenOf(server.pid)]
    for (const pid of pids) process.kill(pid, 'SIGSTOP')
    try {
      const calls = await Promise.all([
        timed(store.get(Frozen, { id: 1 })),
        // two statements (two column sets): a transaction whose ROLLBACK cannot be sent either
        timed(store.batchPut([new Frozen(3, 3), new Frozen(4, 4, 'with a note')])),
        timed(store.transaction((tx) => tx.put(new Frozen(5, 5)))),
        timed(chain.get(Frozen, { id: 2 })),
      ])
      for (const { error, ms } of calls) {
        expect(error).toBeInstanceOf(StoreUnavailableError)
        expect((error as Error).message).toMatch(/sql store .*within 500 ms \(option `timeout`\)/)
        expect(ms).toBeGreaterThanOrEqual(450)
        expect(ms).toBeLessThan(5000)
      }
      // the pool is now full of frozen connections' places, or empty: a new call waits for a connection at most the timeout too
      const later = await timed(store.get(Frozen, { id: 2 }))
      expect(later.error).toBeInstanceOf(StoreUnavailableError)
      expect(later.ms).toBeLessThan(5000)
    } finally {
      for (const pid of pids) process.kill(pid, 'SIGCONT')
    }
    expect(await store.get(Frozen, { id: 1 })).toEqual(new Frozen(1, 1, null as never))
    await store.batchPut([new Frozen(6, 6), new Frozen(7, 7, 'x')])
    const inTransaction = await store.transaction(async (tx) => {
      await tx.put(new Frozen(8, 8))
      return tx.get(Frozen, { id: 8 })
    })
    expect(inTransaction).toEqual(new Frozen(8, 8, null as never))
    expect(await chain.get(Frozen, { id: 7 })).toEqual(new Frozen(7, 7, 'x'))
    // nothing of the batches cut by the timeout was committed
    const { rows } = await sql<{ id: number }>`select id from frozen_items order by id`.execute(admin)
    expect(rows.map((r) => r.id)).toEqual([1, 2, 6, 7, 8])
    await chain.close()
  })

  it('a statement that timed out waiting for a lock does not hold up the next call (the server cancelled it)', async () => {
    const store = new SqlStore({ url: server.url }, { timeout: 400, maxConnections: 1, tables: { SqlFaultFrozen: 'locked_items' } })
    await createTable(store, Frozen, { columns: { id: 'integer', n: 'integer', note: 'text' }, ifNotExists: true })
    await store.put(new Frozen(1, 1))
    // another session holds the row's lock: the put waits for it past the timeout
    const locked = admin.transaction().execute(async (trx) => {
      await sql`update locked_items set n = 100 where id = 1`.execute(trx)
      await new Promise((resolve) => setTimeout(resolve, 1500))
    })
    await new Promise((resolve) => setTimeout(resolve, 100))
    const put = await timed(store.put(new Frozen(1, 2)))
    expect(put.error).toBeInstanceOf(StoreUnavailableError)
    expect((put.error as Error).message).toMatch(/within 400 ms \(option `timeout`\)/)
    // one connection in the pool: a reused one would still wait for the lock behind the timed-out put
    const read = await timed(store.get(Frozen, { id: 1 }))
    expect(read.error).toBeUndefined()
    expect(read.ms).toBeLessThan(300)
    await locked
    await store.close()
  })

  it('statements that time out waiting for a lock leave no server backends behind: the server cancels them (statement_timeout), so maxConnections bounds the backends', async () => {
    const store = new SqlStore(
      { url: `${server.url}?application_name=stockpyle_leak` },
      { timeout: 100, maxConnections: 2, tables: { SqlFaultFrozen: 'leak_items' } },
    )
    await createTable(store, Frozen, { columns: { id: 'integer', n: 'integer', note: 'text' }, ifNotExists: true })
    await store.put(new Frozen(1, 1))
    const { release, locker } = await holdLock(admin, 'leak_items')
    try {
      for (let i = 0; i < 20; i++) {
        const get = await timed(store.get(Frozen, { id: 1 }))
        expect(get.error).toBeInstanceOf(StoreUnavailableError)
        expect((get.error as Error).message).toMatch(/within 100 ms \(option `timeout`\)/)
        expect(get.ms).toBeLessThan(1000)
      }
      const { rows } = await sql<{
        n: number
      }>`select count(*)::int as n from pg_stat_activity where application_name = 'stockpyle_leak'`.execute(admin)
      expect(rows[0]?.n).toBeLessThanOrEqual(2)
    } finally {
      release()
      await locker
    }
    // the connections are usable: the server answered the cancel, nothing was destroyed
    expect(await store.get(Frozen, { id: 1 })).toEqual(new Frozen(1, 1, null as never))
    await store.close()
  })

  it('{ db } of the application: pg query_timeout, statement_timeout and lock_timeout are StoreUnavailableError', async () => {
    await sql`create table if not exists app_items (id integer primary key, n integer, note text)`.execute(admin)
    const tables = { SqlFaultFrozen: 'app_items' }
    const pools = [
      new pg.Pool({ connectionString: server.url, max: 1, query_timeout: 200 }),
      new pg.Pool({ connectionString: server.url, max: 1, statement_timeout: 200 }),
      new pg.Pool({ connectionString: server.url, max: 1, lock_timeout: 200 }),
    ]
    for (const pool of pools) pool.on('error', () => {})
    const stores = pools.map((pool) => new SqlStore({ db: new Kysely<any>({ dialect: new PostgresDialect({ pool }) }) }, { tables }))
    for (const store of stores) await store.get(Frozen, { id: 1 })
    const { release, locker } = await holdLock(admin, 'app_items')
    try {
      for (const [i, store] of stores.entries()) {
        const get = await timed(store.get(Frozen, { id: 1 }))
        expect(get.error, String(i)).toBeInstanceOf(StoreUnavailableError)
        expect((get.error as Error).message, String(i)).toMatch(/query_timeout|statement timeout|lock timeout/)
      }
    } finally {
      release()
      await locker
    }
    for (const store of stores) await store.close()
    for (const pool of pools) await pool.end()
  })

  it('a transaction whose connection was lost or timed out before COMMIT (fn caught the error) rejects saying it did not commit; afterCommitFailed does not run', async () => {
    const store = new SqlStore({ url: server.url }, { timeout: 300, maxConnections: 2, tables: { SqlFaultFrozen: 'lost_items' } })
    await createTable(store, Frozen, { columns: { id: 'integer', n: 'integer', note: 'text' }, ifNotExists: true })
    const failed: unknown[] = []
    const committed: unknown[] = []
    // the connection is terminated between two statements
    const lost = await store
      .transaction(async (tx) => {
        tx.afterCommitFailed((changes) => {
          failed.push(changes)
        })
        tx.afterCommit((changes) => {
          committed.push(changes)
        })
        await tx.put(new Frozen(1, 1))
        const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(tx.kysely())
        await sql`select pg_terminate_backend(${rows[0]?.pid})`.execute(admin)
        // (pg learns of it from the socket: then it sends nothing more on this connection)
        await new Promise((resolve) => setTimeout(resolve, 200))
        await tx.put(new Frozen(2, 2)).catch(() => undefined)
        return 'done'
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect(lost).toBeInstanceOf(StoreUnavailableError)
    expect((lost as Error).message).toMatch(/COMMIT was not sent/)
    expect((lost as Error).message).not.toMatch(/whether it took effect is unknown/)
    expect(failed).toEqual([])
    expect(committed).toEqual([])
    // a statement timed out on the client side (the server frozen), fn caught it
    let pids: number[] = []
    const frozen = store.transaction(async (tx) => {
      tx.afterCommitFailed((changes) => {
        failed.push(changes)
      })
      await tx.put(new Frozen(3, 3))
      // (the backend of this connection was forked just now)
      pids = [server.pid, ...childrenOf(server.pid)]
      for (const pid of pids) process.kill(pid, 'SIGSTOP')
      await tx.put(new Frozen(4, 4)).catch(() => undefined)
      return 'done'
    })
    const timedOut = await frozen.then(
      () => undefined,
      (e: unknown) => e,
    )
    for (const pid of pids) process.kill(pid, 'SIGCONT')
    expect(timedOut).toBeInstanceOf(StoreUnavailableError)
    expect((timedOut as Error).message).toMatch(/COMMIT was not sent/)
    expect(failed).toEqual([])
    const { rows } = await sql<{ id: number }>`select id from lost_items order by id`.execute(admin)
    expect(rows).toEqual([])
    await store.close()
  })

  it('a connection lost in the middle of a batch of several statements is a StoreUnavailableError, and nothing is written', async () => {
    const store = new SqlStore({ url: server.url }, { maxConnections: 2, tables: { SqlFaultFrozen: 'killed_items' } })
    await createTable(store, Frozen, { columns: { id: 'integer', n: 'integer', note: 'text' }, ifNotExists: true })
    // the test server runs with synchronous_commit=off: without a checkpoint, the crash that follows
    // may lose the table's creation
    await sql`checkpoint`.execute(admin)
    // 3 columns: 21,845 rows per statement, so 4 statements in one transaction
    const objects = Array.from({ length: 80_000 }, (_, i) => new Frozen(i, i, 'x'.repeat(40)))
    const batch = store.batchPut(objects).then(
      () => undefined,
      (err: unknown) => err,
    )
    // SIGKILL of its backend: the socket closes without a word, and pg refuses the ROLLBACK that follows
    // ("Client has encountered a connection error and is not queryable"); PostgreSQL then restarts
    let backend: number | undefined
    for (let attempt = 0; attempt < 400 && backend === undefined; attempt++) {
      const { rows } = await sql<{ pid: number }>`
        select pid from pg_stat_activity
        where pid <> pg_backend_pid() and query ilike 'insert into "killed_items"%' and state = 'active'`.execute(admin)
      backend = rows[0]?.pid
      if (backend === undefined) await new Promise((resolve) => setTimeout(resolve, 5))
    }
    expect(backend).toBeTypeOf('number')
    process.kill(backend as number, 'SIGKILL')
    const err = await batch
    expect(err).toBeInstanceOf(StoreUnavailableError)
    expect((err as Error).message).toMatch(/^sql store put of model `SqlFaultFrozen` \(batch of 80000\) could not reach the database/)
    // once PostgreSQL has recovered (it refuses connections meanwhile): the store works again, and
    // nothing of the batch is there (only the row put since)
    await eventually(() => store.put(new Frozen(1, 1)))
    expect(await store.get(Frozen, { id: 1 })).toEqual(new Frozen(1, 1, null as never))
    const { rows } = await eventually(() => sql<{ id: number }>`select id from killed_items`.execute(admin))
    expect(rows).toEqual([{ id: 1 }])
    await store.close()
  })
})
