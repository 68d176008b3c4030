import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, inject, it } from 'vitest'
import {
  ChainedStore,
  isStockpyleError,
  ProcessMemoryStore,
  type PutEntriesOptions,
  StockpyleError,
  type StoreEntry,
} from '../../src/index.js'
import { RedisStore } from '../../src/stores/redis/index.js'
import { createTable, SqlStore, SqlTransaction } from '../../src/stores/sql/index.js'
import { FaultStore } from '../../src/testing/index.js'
import { selectedStores } from '../harness/servers.js'

class Account {
  static readonly stockpyleName = 'TxAccount'
  static readonly stockpyleKeys = ['id', 'email'] as const
  constructor(
    public id: number,
    public email: string,
    public balance: number,
  ) {}
}

async function setup() {
  const memory = new ProcessMemoryStore()
  const sql = new SqlStore({ url: 'sqlite::memory:' })
  await createTable(sql, Account, { columns: { id: 'integer', email: 'text', balance: 'integer' } })
  return { memory, sql, chain: new ChainedStore([memory, sql]) }
}

describe('ChainedStore.transaction over SqlStore', () => {
  it('updates the caches only after COMMIT, with every write in order', async () => {
    const { memory, chain } = await setup()
    await chain.batchPut([new Account(1, 'a@x', 100), new Account(2, 'b@x', 0)])
    await chain.transaction(async (tx) => {
      const a = (await tx.get(Account, { id: 1 })) as Account
      const b = (await tx.get(Account, { id: 2 })) as Account
      a.balance -= 40
      b.balance += 40
      await tx.batchPut([a, b])
      expect((await memory.get(Account, { id: 1 }))?.balance).toBe(100) // not yet
      await tx.delete(new Account(2, 'b@x', 40))
    })
    expect((await memory.get(Account, { id: 1 }))?.balance).toBe(60)
    expect(await memory.get(Account, { id: 2 })).toBeUndefined()
    expect(await chain.get(Account, { email: 'b@x' })).toBeUndefined()
  })

  it('two transactions writing one object update the caches in commit order, however slow the first one’s cache update', async () => {
    const { memory, sql } = await setup()
    const shared = new FaultStore(new ProcessMemoryStore({ name: 'shared' })) // a remote cache, slow for the first
    const chain = new ChainedStore([memory, shared, sql])
    await chain.put(new Account(1, 'a@x', 0))
    const release1 = shared.gate('put')
    const first = chain.transaction((tx) => tx.put(new Account(1, 'a@x', 1)))
    await expect.poll(() => shared.waiting.put, { timeout: 10_000, interval: 1 }).toBe(1)
    const release2 = shared.gate('put')
    const second = chain.transaction((tx) => tx.put(new Account(1, 'a@x', 2)))
    for (let i = 0; i < 500 && (await sql.get(Account, { id: 1 }))?.balance !== 2; i++) await new Promise((r) => setImmediate(r))
    release2()
    await new Promise((r) => setTimeout(r, 5))
    release1()
    await Promise.all([first, second])
    expect((await shared.get(Account, { id: 1 }))?.balance).toBe(2)
    expect((await memory.get(Account, { id: 1 }))?.balance).toBe(2)
  })

  it('never hands the caches a state a later write of the same object replaced (a swap of unique emails through a temporary one)', async () => {
    const { memory, sql } = await setup()
    /** A cache layer that records every object written into it. */
    class Recording extends ProcessMemoryStore {
      readonly seen: string[] = []
      override batchPutEntries(entries: readonly StoreEntry[], options?: PutEntriesOptions): Promise<void> {
        for (const e of entries) this.seen.push(`${(e.value as Account).id}:${(e.value as Account).email}`)
        return super.batchPutEntries(entries, options)
      }
    }
    const shared = new Recording({ name: 'shared' })
    const chain = new ChainedStore([memory, shared, sql])
    await chain.batchPut([new Account(1, 'a@x', 0), new Account(2, 'b@x', 0)])
    shared.seen.length = 0
    await chain.transaction(async (tx) => {
      await tx.put(new Account(1, 'tmp@x', 0))
      await tx.put(new Account(2, 'a@x', 0))
      await tx.put(new Account(1, 'b@x', 0))
    })
    // Account 1 was never committed with tmp@x: no cache may serve it, not even until the last write lands.
    expect(shared.seen).toEqual(['2:a@x', '1:b@x'])
    expect(await chain.get(Account, { email: 'tmp@x' })).toBeUndefined()
    expect(await chain.get(Account, { email: 'b@x' })).toEqual(new Account(1, 'b@x', 0))
    expect(await memory.get(Account, { email: 'a@x' })).toEqual(new Account(2, 'a@x', 0))
    // A delete after a put of the same object: only the delete reaches the caches.
    shared.seen.length = 0
    await chain.transaction(async (tx) => {
      await tx.put(new Account(2, 'c@x', 5))
      await tx.delete(new Account(2, 'c@x', 5))
    })
    expect(shared.seen).toEqual([])
    expect(await chain.get(Account, { id: 2 })).toBeUndefined()
    expect(await shared.get(Account, { email: 'a@x' })).toBeUndefined()
  })

  it('leaves the caches alone after a rollback', async () => {
    const { memory, chain } = await setup()
    await chain.put(new Account(3, 'c@x', 10))
    await expect(
      chain.transaction(async (tx) => {
        await tx.put(new Account(3, 'c@x', 999))
        throw new Error('abort')
      }),
    ).rejects.toThrow('abort')
    expect((await memory.get(Account, { id: 3 }))?.balance).toBe(10)
    await memory.clear()
    expect((await chain.get(Account, { id: 3 }))?.balance).toBe(10)
  })

  it('fills the caches with each object as it was written, not as it is at COMMIT (one object reused, or changed after its put)', async () => {
    const { memory, sql, chain } = await setup()
    await chain.batchPut([new Account(4, 'd@x', 1), new Account(5, 'e@x', 1), new Account(6, 'f@x', 1)])
    await chain.transaction(async (tx) => {
      const row = new Account(0, '', 0)
      for (const [id, email] of [
        [4, 'd@x'],
        [5, 'e@x'],
      ] as const) {
        row.id = id
        row.email = email
        row.balance = 50
        await tx.put(row)
      }
      const six = new Account(6, 'f@x', 60)
      await tx.put(six)
      six.balance = -1 // never written
      const gone = new Account(5, 'e@x', 50)
      await tx.delete(gone)
      gone.id = 4 // a delete of 5, whatever the object says at COMMIT
    })
    for (const [id, balance] of [
      [4, 50],
      [6, 60],
    ] as const) {
      expect((await sql.get(Account, { id }))?.balance).toBe(balance)
      expect((await memory.get(Account, { id }))?.balance).toBe(balance)
      expect((await chain.get(Account, { id }))?.balance).toBe(balance)
    }
    expect(await sql.get(Account, { id: 5 })).toBeUndefined()
    expect(await chain.get(Account, { id: 5 })).toBeUndefined()
    expect(await chain.get(Account, { email: 'e@x' })).toBeUndefined()
  })

  it('hands fn a handle that looks like the layer’s own: its class, and the same function at each read of a method', async () => {
    const { chain } = await setup()
    await chain.transaction(async (tx) => {
      expect(tx).toBeInstanceOf(SqlTransaction)
      expect(tx.constructor).toBe(SqlTransaction)
      const handle = tx as SqlTransaction
      expect(handle.kysely).toBe(handle.kysely)
      expect(tx.put).toBe(tx.put)
      const { put } = tx
      await put(new Account(7, 'g@x', 1))
    })
    expect(await chain.get(Account, { id: 7 })).toEqual(new Account(7, 'g@x', 1))
  })

  it('needs a transactional authoritative layer', async () => {
    const chain = new ChainedStore([new ProcessMemoryStore(), new ProcessMemoryStore()])
    await expect(chain.transaction(async () => {})).rejects.toBeInstanceOf(StockpyleError)
  })
})

const stores = selectedStores()
const dir = mkdtempSync(join(tmpdir(), 'stockpyle-chain-tx-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let tables = 0

/** A SqlStore on a table of its own (SQLite: a file; PostgreSQL: the harness's database), and its drop. */
async function openSql(dialect: 'sqlite' | 'postgres'): Promise<{ sql: SqlStore; drop: () => Promise<void> }> {
  const table = `tx_accounts_${process.pid}_${++tables}`
  const url = dialect === 'sqlite' ? `sqlite:${join(dir, `${table}.db`)}` : inject('postgresUrl')
  const sql = new SqlStore({ url }, { tables: { TxAccount: table } })
  await createTable(sql, Account, { columns: { id: 'integer', email: 'text', balance: 'integer' } })
  const drop = async () => {
    if (dialect !== 'postgres') return
    const admin = new SqlStore({ url })
    try {
      await (await admin.kysely()).schema.dropTable(table).ifExists().execute()
    } finally {
      await admin.close()
    }
  }
  return { sql, drop }
}

for (const dialect of (['sqlite', 'postgres'] as const).filter((d) => stores.has(d))) {
  describe(`ChainedStore.transaction on ${dialect}`, () => {
    it('a write left without await in the callback runs inside the transaction, and the caches get it after COMMIT', async () => {
      const { sql, drop } = await openSql(dialect)
      const memory = new ProcessMemoryStore()
      const chain = new ChainedStore([memory, sql])
      try {
        for (let ticks = 0; ticks < 4; ticks++) {
          await chain.put(new Account(1, 'a@x', 100))
          await chain.get(Account, { id: 1 })
          let put: Promise<unknown> = Promise.resolve()
          await chain.transaction(async (tx) => {
            await tx.get(Account, { id: 1 })
            put = tx.put(new Account(1, 'a@x', 200 + ticks)).then(
              () => 'put',
              (e: unknown) => e,
            ) // forgotten await
            for (let i = 0; i < ticks; i++) await new Promise((r) => setImmediate(r))
          })
          expect(await put).toBe('put')
          expect((await sql.get(Account, { id: 1 }))?.balance).toBe(200 + ticks)
          expect((await memory.get(Account, { id: 1 }))?.balance).toBe(200 + ticks)
        }
        // two writes left without await: both join the transaction, in order
        await chain.transaction(async (tx) => {
          void tx.put(new Account(1, 'a@x', 1)).catch(() => {})
          void tx.put(new Account(2, 'b@x', 2)).catch(() => {})
        })
        expect((await chain.batchGet(Account, [{ id: 1 }, { id: 2 }])).map((a) => a?.balance)).toEqual([1, 2])
        expect((await sql.batchGet(Account, [{ id: 1 }, { id: 2 }])).map((a) => a?.balance)).toEqual([1, 2])
      } finally {
        await chain.close()
        await drop()
      }
    })

    it('a call on tx after the callback returned is refused before anything runs; a write still in flight that fails rolls the transaction back', async () => {
      const { sql, drop } = await openSql(dialect)
      const memory = new ProcessMemoryStore()
      const chain = new ChainedStore([memory, sql])
      try {
        await chain.put(new Account(1, 'a@x', 100))
        await chain.get(Account, { id: 1 })
        let later: Promise<unknown> = Promise.resolve()
        await chain.transaction(async (tx) => {
          // chained on a write left without await: it starts after the callback returned
          later = tx
            .put(new Account(1, 'a@x', 300))
            .then(() => tx.put(new Account(1, 'a@x', 400)))
            .catch((e: unknown) => e)
        })
        expect(isStockpyleError(await later, 'E_STORE_CLOSED')).toBe(true)
        expect((await sql.get(Account, { id: 1 }))?.balance).toBe(300)
        expect((await memory.get(Account, { id: 1 }))?.balance).toBe(300)
        // a unique-key collision (another row holds b@x) of a write left without await
        await chain.put(new Account(2, 'b@x', 0))
        let failed: Promise<unknown> = Promise.resolve()
        const tx = chain.transaction(async (t) => {
          await t.put(new Account(1, 'a@x', 500))
          failed = t.put(new Account(3, 'b@x', 0)).catch((e: unknown) => e)
        })
        await expect(tx).rejects.toSatisfy((e: unknown) => isStockpyleError(e, 'E_KEY_CONFLICT'))
        expect(isStockpyleError(await failed, 'E_KEY_CONFLICT')).toBe(true)
        expect((await sql.get(Account, { id: 1 }))?.balance).toBe(300) // rolled back
        expect((await chain.get(Account, { id: 1 }))?.balance).toBe(300)
        expect(await sql.get(Account, { id: 3 })).toBeUndefined()
      } finally {
        await chain.close()
        await drop()
      }
    })

    it('a chain call inside its own transaction is refused before it reads anything, and a concurrent read of the same key from outside is not hurt', async () => {
      const { sql, drop } = await openSql(dialect)
      const chain = new ChainedStore([new ProcessMemoryStore(), sql])
      try {
        await sql.put(new Account(1, 'a@x', 100))
        const refused: unknown[] = []
        let started = () => {}
        const inFlight = new Promise<void>((resolve) => (started = resolve))
        let proceed = () => {}
        const outsideAsked = new Promise<void>((resolve) => (proceed = resolve))
        const tx = chain.transaction(async () => {
          const inside = chain.get(Account, { id: 1 }).catch((e: unknown) => e) // a mistake, not awaited yet
          started()
          await outsideAsked
          refused.push(await inside)
          refused.push(await chain.batchGet(Account, [{ id: 1 }]).catch((e: unknown) => e))
          refused.push(await chain.put(new Account(2, 'b@x', 0)).catch((e: unknown) => e))
          refused.push(await chain.delete(Account, { id: 1 }).catch((e: unknown) => e))
          refused.push(await chain.transaction(async () => {}).catch((e: unknown) => e))
          refused.push(await chain.close().catch((e: unknown) => e))
        })
        await inFlight
        // another request, outside the transaction's async context, reading the same key meanwhile
        const outside = chain.get(Account, { id: 1 }).catch((e: unknown) => e)
        proceed()
        await tx
        expect(refused).toHaveLength(6)
        for (const e of refused) expect(isStockpyleError(e, 'E_UNSUPPORTED'), String(e)).toBe(true)
        expect(chain.closed).toBe(false)
        expect(((await outside) as Account).balance).toBe(100)
        expect(await sql.get(Account, { id: 2 })).toBeUndefined()
        expect((await chain.get(Account, { id: 1 }))?.balance).toBe(100)
      } finally {
        await chain.close()
        await drop()
      }
    })

    it('inside the transaction of a chain nested in another (directly or behind a decorator), the outer chain refuses before its single-flight: an outside read of the same key is not hurt', async () => {
      const { sql, drop } = await openSql(dialect)
      const inner = new ChainedStore([new ProcessMemoryStore(), sql], { name: 'inner' })
      const outer = new ChainedStore([new ProcessMemoryStore(), inner], { name: 'outer' })
      const decorated = new ChainedStore([new ProcessMemoryStore(), new FaultStore(inner)], { name: 'decorated' })
      try {
        await sql.put(new Account(1, 'a@x', 100))
        for (const chain of [outer, decorated]) {
          let started = () => {}
          const inFlight = new Promise<void>((resolve) => (started = resolve))
          let proceed = () => {}
          const outsideAsked = new Promise<void>((resolve) => (proceed = resolve))
          const refused: unknown[] = []
          const tx = inner.transaction(async () => {
            const inside = chain.get(Account, { id: 1 }).catch((e: unknown) => e) // a mistake, not awaited yet
            started()
            await outsideAsked
            refused.push(await inside)
            refused.push(await chain.put(new Account(2, 'b@x', 0)).catch((e: unknown) => e))
            refused.push(await chain.transaction(async () => {}).catch((e: unknown) => e))
          })
          await inFlight
          const outside = chain.get(Account, { id: 1 }).catch((e: unknown) => e)
          proceed()
          await tx
          expect(((await outside) as Account).balance, chain.name).toBe(100)
          expect(refused).toHaveLength(3)
          for (const e of refused) {
            expect(isStockpyleError(e, 'E_UNSUPPORTED'), String(e)).toBe(true)
            expect((e as Error).message).toContain(`${chain.name} store`)
            expect((e as Error).message).toContain('inner')
          }
        }
        expect(await sql.get(Account, { id: 2 })).toBeUndefined()
        // outside any transaction, and inside one of the outer chain itself, the usual rules hold
        await outer.transaction(async (tx) => {
          await tx.put(new Account(3, 'c@x', 3))
          await expect(inner.get(Account, { id: 1 })).rejects.toThrow(/inside/)
        })
        expect((await outer.get(Account, { id: 3 }))?.balance).toBe(3)
      } finally {
        await decorated.close()
        await outer.close().catch(() => {})
        await drop()
      }
    })

    it.runIf(stores.has('redis'))(
      'close() waits for the transactions and writes in flight: a shared cache gets what they committed',
      async () => {
        const { sql, drop } = await openSql(dialect)
        const prefix = `txclose${process.pid}_${tables}`
        const redis = () => new RedisStore({ url: inject('redis').url, prefix })
        const shared = new FaultStore(redis())
        const chain = new ChainedStore([new ProcessMemoryStore(), shared, sql])
        const other = redis() // another process's view of the shared cache
        let release = () => {}
        try {
          await chain.batchPut([new Account(1, 'a@x', 100), new Account(2, 'b@x', 100)])
          // a put whose write to the shared cache is held, and a transaction whose callback is held
          release = shared.gate('put')
          const put = chain.put(new Account(2, 'b@x', 200))
          // (bounded in time: on a loaded machine the database write can take longer than 500 turns)
          await expect.poll(() => shared.waiting.put, { timeout: 10_000, interval: 1 }).toBe(1)
          let go = () => {}
          const held = new Promise<void>((resolve) => (go = resolve))
          let began = () => {}
          const inside = new Promise<void>((resolve) => (began = resolve))
          const tx = chain.transaction(async (t) => {
            began()
            await held
            await t.put(new Account(1, 'a@x', 200))
          })
          await inside
          const closing = chain.close()
          go()
          await new Promise((r) => setTimeout(r, 20))
          release()
          await expect(tx).resolves.toBeUndefined()
          await expect(put).resolves.toBeUndefined()
          await closing
          await expect(shared.get(Account, { id: 1 })).rejects.toSatisfy((e: unknown) => isStockpyleError(e, 'E_STORE_CLOSED'))
          expect((await other.get(Account, { id: 1 }))?.balance).toBe(200)
          expect((await other.get(Account, { id: 2 }))?.balance).toBe(200)
        } finally {
          release() // a failed expectation must not leave close() waiting for the held put
          await chain.close()
          await other.clear()
          await other.close()
          await drop()
        }
      },
    )
  })
}
