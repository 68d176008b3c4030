import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, inject, it } from 'vitest'
import { SerializationError, StockpyleError, StoreUnavailableError } from '../../src/core/errors.js'
import { ProcessMemoryStore } from '../../src/index.js'
import { MemcacheStore } from '../../src/stores/memcache/index.js'
import { RedisStore } from '../../src/stores/redis/index.js'
import { createTable, SqlStore } from '../../src/stores/sql/index.js'
import { translateError } from '../../src/stores/sql/sql-errors.js'
import { ConformanceUser } from '../../src/testing/index.js'
import { selectedStores } from '../harness/servers.js'

const stores = selectedStores()

class Gone {
  static readonly stockpyleKeys = ['id'] as const
  constructor(
    public id: number,
    public n: number,
  ) {}
}

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

  it('PostgreSQL: a client whose connection was lost or closed (pg: "… is not queryable")', () => {
    for (const message of ['Client has encountered a connection error and is not queryable', 'Client was closed and is not queryable']) {
      expect(translateError(new Error(message), 'sql store put')).toBeInstanceOf(StoreUnavailableError)
    }
  })

  it('PostgreSQL: a protocol violation (08P01) is a connection failure only when it ends the session (FATAL, or a severity in another language)', () => {
    const violation = (severity: string, routine: string) =>
      Object.assign(new Error('insufficient data left in message'), { code: '08P01', severity, routine })
    expect(translateError(violation('FATAL', 'pq_copymsgbytes'), 'sql store put')).toBeInstanceOf(StoreUnavailableError)
    expect(translateError(violation('FEHLER', 'pq_copymsgbytes'), 'sql store put')).toBeInstanceOf(StoreUnavailableError)
    expect(translateError(violation('ERROR', 'pq_copymsgbytes'), 'sql store put')).toBeInstanceOf(SerializationError)
    const bind = translateError(violation('ERROR', 'exec_bind_message'), 'sql store put')
    expect(bind).toBeInstanceOf(StockpyleError)
    expect(bind).not.toBeInstanceOf(StoreUnavailableError)
    expect(bind).not.toBeInstanceOf(SerializationError)
  })

  it('SQLite: a file in a directory that does not exist', async () => {
    const err = await failure(new SqlStore({ url: 'sqlite:/nonexistent-dir-stockpyle/x.db' }))
    expect(err).toBeInstanceOf(StoreUnavailableError)
  })

  it('SQLite: the directory of an open database removed (SQLITE_READONLY_DBMOVED), and other extended codes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stockpyle-gone-'))
    const sql = new SqlStore({ url: `sqlite:${join(dir, 'db.sqlite')}` })
    try {
      await createTable(sql, Gone, { columns: { id: 'integer', n: 'integer' } })
      await sql.put(new Gone(1, 1))
      rmSync(dir, { recursive: true, force: true })
      const err = await sql.put(new Gone(1, 2)).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(StoreUnavailableError)
      expect((err as Error & { cause: { code: string } }).cause.code).toMatch(/^SQLITE_READONLY_|^SQLITE_IOERR_/)
    } finally {
      await sql.close()
      rmSync(dir, { recursive: true, force: true })
    }
    for (const code of ['SQLITE_IOERR_WRITE', 'SQLITE_IOERR_FSYNC', 'SQLITE_CANTOPEN_ISDIR', 'SQLITE_BUSY_TIMEOUT']) {
      expect(translateError(Object.assign(new Error('x'), { code }), 'sql store put')).toBeInstanceOf(StoreUnavailableError)
    }
    expect(translateError(Object.assign(new Error('x'), { code: 'SQLITE_ERROR_RETRY' }), 'sql store put')).not.toBeInstanceOf(
      StoreUnavailableError,
    )
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
