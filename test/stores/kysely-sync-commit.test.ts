import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { ChainedStore, keys, ProcessMemoryStore } from '../../src/index.js'
import { PostgresBus } from '../../src/invalidation/index.js'
import { CacheSyncPlugin, SqlStore, type SqlTransaction } from '../../src/stores/sql/index.js'
import { selectedStores } from '../harness/servers.js'
import { type CommitProxy, commitProxy } from './commit-proxy.js'

class CommitAccount {
  static readonly stockpyleName = 'KyselySyncCommitAccount'
  static readonly stockpyleKeys = keys('id')
  constructor(
    public id: number,
    public balance: number,
  ) {}
}

/** A pg pool whose clients may lose their connection without an unhandled 'error' event. */
function quietPool(connectionString: string, max: number): pg.Pool {
  const pool = new pg.Pool({ connectionString, max })
  pool.on('error', () => {})
  pool.on('connect', (client) => client.on('error', () => {}))
  return pool
}

describe.runIf(selectedStores().has('postgres'))('a COMMIT whose reply is lost (a proxy cuts the connection)', () => {
  let raw: pg.Client
  let proxy: CommitProxy
  let counter = 0
  beforeAll(async () => {
    raw = new pg.Client({ connectionString: inject('postgresUrl') })
    await raw.connect()
    proxy = await commitProxy(inject('postgresUrl'))
  })
  afterAll(async () => {
    await proxy?.close()
    await raw?.end()
  })

  async function setup() {
    const table = `commit_lost_${process.pid}_${++counter}`
    await raw.query(`create table ${table} (id integer primary key, balance integer not null)`)
    const sqlStore = new SqlStore({ url: proxy.url }, { tables: { KyselySyncCommitAccount: table } })
    const memory = new ProcessMemoryStore()
    const chain = new ChainedStore([memory, sqlStore])
    const balance = async (id: number) => (await raw.query(`select balance from ${table} where id = $1`, [id])).rows[0]?.balance
    // The server may still be running the COMMIT when the client has given up on it (the window
    // docs/coherence.md describes): wait until it has, then the caches must hold nothing older.
    const inDatabase = async (id: number, committed: number | undefined) => {
      for (let i = 0; i < 250 && (await balance(id)) !== committed; i++) await new Promise((r) => setTimeout(r, 20))
      return balance(id)
    }
    const close = async () => {
      await chain.close()
      await raw.query(`drop table ${table}`)
    }
    return { table, memory, chain, inDatabase, close }
  }

  it('chain.transaction rejects, and the caches hold nothing older than the database', async () => {
    const { memory, chain, inDatabase, close } = await setup()
    try {
      await chain.put(new CommitAccount(1, 100))
      expect((await chain.get(CommitAccount, { id: 1 }))?.balance).toBe(100) // cached
      proxy.arm()
      const error = await chain
        .transaction(async (tx) => tx.put(new CommitAccount(1, 250)))
        .then(
          () => undefined,
          (e: unknown) => e,
        )
      expect(error).toBeInstanceOf(Error)
      expect(proxy.cut).toBeGreaterThan(0)
      expect(await inDatabase(1, 250)).toBe(250) // the COMMIT took effect
      expect(await memory.get(CommitAccount, { id: 1 })).toBeUndefined()
      expect((await chain.get(CommitAccount, { id: 1 }))?.balance).toBe(250)
      expect((error as Error).message).toMatch(/at COMMIT \(whether it took effect is unknown\)/)
    } finally {
      await close()
    }
  })

  it('a COMMIT the database answered with ROLLBACK (an aborted transaction) is known to have rolled back: nothing is invalidated', async () => {
    const { table, memory, chain, close } = await setup()
    const sync = new CacheSyncPlugin({ chain, models: [CommitAccount] })
    const db = new Kysely<any>({
      dialect: sync.wrapDialect(new PostgresDialect({ pool: quietPool(inject('postgresUrl'), 2) })),
      plugins: [sync],
    })
    try {
      await chain.batchPut([new CommitAccount(5, 100), new CommitAccount(6, 100)])
      await chain.batchGet(CommitAccount, [{ id: 5 }, { id: 6 }])
      const error = await chain
        .transaction(async (tx) => {
          await tx.put(new CommitAccount(5, 500))
          await (tx as SqlTransaction)
            .kysely()
            .selectFrom('no_such_table')
            .selectAll()
            .execute()
            .catch(() => {}) // aborts the transaction
        })
        .catch((e: Error) => e)
      expect((error as Error).message).toMatch(/rolled back instead of committed/)
      expect((error as Error).message).not.toMatch(/unknown/)
      await expect(
        db.transaction().execute(async (trx) => {
          await trx.updateTable(table).set({ balance: 600 }).where('id', '=', 6).execute()
          await trx
            .selectFrom('no_such_table')
            .selectAll()
            .execute()
            .catch(() => {})
        }),
      ).rejects.toThrow(/rolled back instead of committed/)
      expect((await memory.get(CommitAccount, { id: 5 }))?.balance).toBe(100) // still cached: nothing changed
      expect((await memory.get(CommitAccount, { id: 6 }))?.balance).toBe(100)
    } finally {
      await db.destroy()
      await close()
    }
  })

  it('CacheSyncPlugin: db.transaction() rejects, and the rows it wrote are invalidated', async () => {
    const { table, memory, chain, inDatabase, close } = await setup()
    const sync = new CacheSyncPlugin({ chain, models: [CommitAccount] })
    const db = new Kysely<any>({ dialect: sync.wrapDialect(new PostgresDialect({ pool: quietPool(proxy.url, 2) })), plugins: [sync] })
    try {
      await chain.batchPut([new CommitAccount(2, 100), new CommitAccount(3, 100)])
      await chain.batchGet(CommitAccount, [{ id: 2 }, { id: 3 }]) // cached
      proxy.arm()
      await expect(
        db.transaction().execute(async (trx) => {
          await trx.updateTable(table).set({ balance: 250 }).where('id', '=', 2).execute()
          await trx.deleteFrom(table).where('id', '=', 3).execute()
        }),
      ).rejects.toThrow()
      expect(await inDatabase(2, 250)).toBe(250)
      expect(await inDatabase(3, undefined)).toBeUndefined()
      expect(await memory.get(CommitAccount, { id: 2 })).toBeUndefined()
      expect(await memory.get(CommitAccount, { id: 3 })).toBeUndefined()
      expect((await chain.get(CommitAccount, { id: 2 }))?.balance).toBe(250)
      expect(await chain.get(CommitAccount, { id: 3 })).toBeUndefined()

      // a controlled transaction: commit() rejects, the caches are invalidated all the same
      await chain.put(new CommitAccount(4, 100))
      await chain.get(CommitAccount, { id: 4 })
      const trx = await db.startTransaction().execute()
      await trx.updateTable(table).set({ balance: 400 }).where('id', '=', 4).execute()
      proxy.arm()
      await expect(trx.commit().execute()).rejects.toThrow()
      await trx
        .rollback()
        .execute()
        .catch(() => {})
      expect(await inDatabase(4, 400)).toBe(400)
      expect(await memory.get(CommitAccount, { id: 4 })).toBeUndefined()
      expect((await chain.get(CommitAccount, { id: 4 }))?.balance).toBe(400)
    } finally {
      await db.destroy()
      await close()
    }
  })
})

describe.runIf(selectedStores().has('postgres'))(
  'CacheSyncPlugin and a PostgresBus with its own connections (the documented wiring)',
  () => {
    it('transactions committing on every connection of the app’s pool do not wait for the bus’s publish', async () => {
      const url = inject('postgresUrl')
      const raw = new pg.Client({ connectionString: url })
      await raw.connect()
      const table = `commit_pool_${process.pid}`
      await raw.query(`drop table if exists ${table}`)
      await raw.query(`create table ${table} (id integer primary key, balance integer not null)`)
      // one pool of 2 for the app's Kysely and the SqlStore; the bus publishes through connections of its own
      // (a transaction keeps its connection until its invalidations ran: Kysely releases it after COMMIT)
      const pool = quietPool(url, 2)
      const sqlStore = new SqlStore(
        { db: new Kysely<any>({ dialect: new PostgresDialect({ pool }) }) },
        { tables: { KyselySyncCommitAccount: table } },
      )
      const bus = new PostgresBus({ url, timeout: 3000 })
      const memory = new ProcessMemoryStore({ bus })
      const chain = new ChainedStore([memory, sqlStore])
      const errors: unknown[] = []
      chain.events.on('cacheError', (e) => errors.push(e.error))
      const sync = new CacheSyncPlugin({ chain, models: [CommitAccount] })
      const db = new Kysely<any>({ dialect: sync.wrapDialect(new PostgresDialect({ pool })), plugins: [sync] })
      try {
        for (let i = 0; i < 300 && !bus.subscribed; i++) await new Promise((r) => setTimeout(r, 10))
        expect(bus.subscribed).toBe(true)
        await chain.batchPut([new CommitAccount(1, 0), new CommitAccount(2, 0)])
        const started = performance.now()
        await Promise.all(
          [1, 2].map((id) =>
            db.transaction().execute(async (trx) => {
              await trx.updateTable(table).set({ balance: 1 }).where('id', '=', id).execute()
            }),
          ),
        )
        const elapsed = performance.now() - started
        expect(errors).toEqual([])
        expect(elapsed).toBeLessThan(1500) // not the bus's timeout (3 s)
        expect(await memory.get(CommitAccount, { id: 1 })).toBeUndefined()
        expect((await chain.get(CommitAccount, { id: 2 }))?.balance).toBe(1)
      } finally {
        await db.destroy()
        await chain.close()
        await bus.close()
        await raw.query(`drop table ${table}`)
        await raw.end()
      }
    })
  },
)
