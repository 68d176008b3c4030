import { describe, expect, it } from 'vitest'
import { ChainedStore, ProcessMemoryStore, StockpyleError } from '../../src/index.js'
import { createTable, SqlStore } from '../../src/stores/sql/index.js'
import { FaultStore } from '../../src/testing/index.js'

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
    for (let i = 0; i < 500 && shared.waiting.put === 0; i++) await new Promise((r) => setImmediate(r))
    expect(shared.waiting.put).toBe(1)
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

  it('needs a transactional authoritative layer', async () => {
    const chain = new ChainedStore([new ProcessMemoryStore(), new ProcessMemoryStore()])
    await expect(chain.transaction(async () => {})).rejects.toBeInstanceOf(StockpyleError)
  })
})
