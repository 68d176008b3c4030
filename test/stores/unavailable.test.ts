import { describe, expect, inject, it } from 'vitest'
import { StoreUnavailableError } from '../../src/core/errors.js'
import { ProcessMemoryStore } from '../../src/index.js'
import { MemcacheStore } from '../../src/stores/memcache/index.js'
import { RedisStore } from '../../src/stores/redis/index.js'
import { SqlStore } from '../../src/stores/sql/index.js'
import { ConformanceUser } from '../../src/testing/index.js'
import { selectedStores } from '../harness/servers.js'

const stores = selectedStores()

async function failure(store: { get: SqlStore['get']; close(): Promise<void> }): Promise<unknown> {
  try {
    await store.get(ConformanceUser, { id: 1 })
  } catch (err) {
    return err
  } finally {
    await store.close()
  }
  throw new Error('expected the read to fail')
}

describe('connection, authentication and missing-database failures are StoreUnavailableError', () => {
  it.runIf(stores.has('postgres'))('PostgreSQL: a database that does not exist', async () => {
    const url = inject('postgresUrl').replace(/\/[^/]*$/, '/stockpyle_no_such_database')
    const err = await failure(new SqlStore({ url }, { maxConnections: 1 }))
    expect(err).toBeInstanceOf(StoreUnavailableError)
    expect((err as Error).message).toMatch(/sql.*could not reach the database: .*stockpyle_no_such_database/)
  })

  it.runIf(stores.has('postgres'))('PostgreSQL: a role that does not exist', async () => {
    const url = new URL(inject('postgresUrl'))
    url.username = 'stockpyle_no_such_role'
    url.password = 'x'
    const err = await failure(new SqlStore({ url: url.toString() }, { maxConnections: 1 }))
    expect(err).toBeInstanceOf(StoreUnavailableError)
    expect((err as Error).message).toMatch(/stockpyle_no_such_role/)
  })

  it.runIf(stores.has('postgres'))('PostgreSQL: nothing listening', async () => {
    const err = await failure(new SqlStore({ url: 'postgres://127.0.0.1:1/x' }, { maxConnections: 1 }))
    expect(err).toBeInstanceOf(StoreUnavailableError)
  })

  it('SQLite: a file in a directory that does not exist', async () => {
    const err = await failure(new SqlStore({ url: 'sqlite:/nonexistent-dir-stockpyle/x.db' }))
    expect(err).toBeInstanceOf(StoreUnavailableError)
  })

  it.runIf(stores.has('redis'))('Redis: an unknown user (WRONGPASS), and nothing listening', async () => {
    const { host, port } = inject('redis')
    const wrong = await failure(new RedisStore({ host, port, username: 'stockpyle_no_such_user', password: 'wrong', timeout: 500 }))
    expect(wrong).toBeInstanceOf(StoreUnavailableError)
    const closed = await failure(new RedisStore({ url: 'redis://127.0.0.1:1', timeout: 300 }))
    expect(closed).toBeInstanceOf(StoreUnavailableError)
  })

  it('memcached: nothing listening', async () => {
    const err = await failure(new MemcacheStore({ servers: ['127.0.0.1:1'], timeout: 300, partialReads: false }))
    expect(err).toBeInstanceOf(StoreUnavailableError)
  })

  it('an in-process store has no connection to lose', async () => {
    expect(await new ProcessMemoryStore().get(ConformanceUser, { id: 1 })).toBeUndefined()
  })
})
