import { inspect } from 'node:util'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { InvalidOptionError, ProcessMemoryStore, StoreClosedError, StoreUnavailableError } from '../../src/index.js'
import { PostgresBus } from '../../src/invalidation/index.js'
import { runBusConformance } from '../../src/testing/index.js'
import { type PostgresServer, selectedStores, startPostgres } from '../harness/servers.js'
import { type BusContract, busConformance, malformedMessageCase, unreportedErrorCases } from './bus-contract.js'
import { poll, Recorder } from './helpers.js'

const contract: BusContract = {
  name: 'PostgresBus',
  makeBus: (url, options = {}) => new PostgresBus({ url, ...options }),
  publishRaw: async (url, channel, text) => {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      await client.query('select pg_notify($1, $2)', [channel, text])
    } finally {
      await client.end()
    }
  },
}

/** PIDs of the LISTEN sessions of buses and watchers (they set application_name). */
async function listenBackends(admin: pg.Client): Promise<number[]> {
  const { rows } = await admin.query<{ pid: number }>("select pid from pg_stat_activity where application_name = 'stockpyle-listen'")
  return rows.map((r) => r.pid)
}

describe.runIf(selectedStores().has('postgres'))('PostgresBus', () => {
  let url = ''
  beforeAll(() => {
    url = inject('postgresUrl')
  })

  runBusConformance(busConformance(contract, () => url, startPostgres, 30_000))

  malformedMessageCase(contract, () => url)

  it('publishes through a pg Pool or a Kysely instance you own, and never closes them', async () => {
    const pool = new pg.Pool({ connectionString: url, max: 2 })
    const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 2 }) }) })
    const viaPool = new PostgresBus({ pool }) // the pool's options also configure the LISTEN connection
    const viaKysely = new PostgresBus({ url, db })
    const receiver = new PostgresBus({ url })
    try {
      const r = new Recorder()
      receiver.subscribe(r)
      viaPool.subscribe(new Recorder())
      await poll(() => receiver.subscribed && viaPool.subscribed, 'the subscriptions')
      await viaPool.publish(['via-pool'])
      await viaKysely.publish(['via-kysely'])
      await poll(() => r.keys.length === 2, 'both messages')
      expect(r.keys).toEqual(['via-pool', 'via-kysely'])
      await Promise.all([viaPool.close(), viaKysely.close()])
      expect((await pool.query('select 1 as one')).rows[0].one).toBe(1)
      expect(await db.selectNoFrom((eb) => eb.lit(1).as('one')).executeTakeFirst()).toEqual({ one: 1 })
    } finally {
      await receiver.close()
      await pool.end()
      await db.destroy()
    }
  })

  it('publishes still in progress when close() is called on a healthy database are all sent, none left to time out; close() waits for them', async () => {
    const timeout = 5000
    const bus = new PostgresBus({ url, timeout })
    const receiver = new PostgresBus({ url })
    const r = new Recorder()
    receiver.subscribe(r)
    try {
      await poll(() => receiver.subscribed, 'the subscription')
      await bus.publish(['warm'])
      const started = performance.now()
      const outcomes = Array.from({ length: 200 }, (_, i) =>
        bus.publish([`in-flight-${i}`]).then(
          () => ({ key: `in-flight-${i}`, ms: performance.now() - started, err: undefined as unknown }),
          (err: unknown) => ({ key: `in-flight-${i}`, ms: performance.now() - started, err }),
        ),
      )
      await bus.close()
      expect(performance.now() - started).toBeLessThan(timeout)
      const settled = await Promise.all(outcomes)
      for (const o of settled) {
        expect(o.ms, o.key).toBeLessThan(timeout)
        expect(o.err, o.key).toBeUndefined()
      }
      await expect(bus.publish(['late'])).rejects.toBeInstanceOf(StoreClosedError)
      const sent = settled.map((o) => o.key)
      await poll(() => sent.every((k) => r.keys.includes(k)), 'every publish that resolved to be delivered')
    } finally {
      await Promise.all([bus.close(), receiver.close()])
    }
  })

  it('rejects invalid options synchronously, naming them', () => {
    expect(() => new PostgresBus({} as never)).toThrow(InvalidOptionError)
    expect(() => new PostgresBus({ url: 'mysql://x' })).toThrow(/option `url`/)
    expect(() => new PostgresBus({ url, channel: 'x'.repeat(64) })).toThrow(/option `channel`/)
    expect(() => new PostgresBus({ url, timeout: 0 })).toThrow(/option `timeout`/)
    expect(() => new PostgresBus({ url, nope: 1 } as never)).toThrow(/unknown option `nope`/)
    expect(() => new PostgresBus({ url, db: {} as never })).toThrow(/option `db`/)
    // pg client settings a connection object inherits would be dropped by the copy made of it
    expect(() => new PostgresBus({ connection: Object.create({ host: '127.0.0.1', port: 1 }) })).toThrow(
      /option `connection`: options must be a plain object/,
    )
  })

  it('refuses a url pg cannot read (port out of range or not a number, a malformed host) in the constructor, naming `url` without its password', () => {
    for (const bad of [
      'postgres://postgres:hunter2@db.example:99999/postgres',
      'postgres://postgres:hunter2@127.0.0.1:abc/postgres',
      'postgres://postgres:hunter2@[bad/postgres',
    ]) {
      let err: unknown
      try {
        new PostgresBus({ url: bad })
      } catch (e) {
        err = e
      }
      expect(err, bad).toBeInstanceOf(InvalidOptionError)
      expect((err as Error).message, bad).toMatch(/option `url`/)
      expect(inspect(err, { depth: 5 }), bad).not.toContain('hunter2')
    }
  })

  describe('errors nobody receives (a private server)', () => {
    let server: PostgresServer
    beforeAll(async () => {
      server = await startPostgres()
    })
    afterAll(async () => {
      await server?.stop()
    })
    unreportedErrorCases(contract, () => server)
  })

  describe('a connection lost during a publish (a private server)', () => {
    let server: PostgresServer
    beforeAll(async () => {
      server = await startPostgres()
    })
    afterAll(async () => {
      await server?.stop()
    })

    it("rejects the publish with StoreUnavailableError: the client's 'error' event is handled, the process goes on (review: it ended the process)", async () => {
      const errors: unknown[] = []
      const bus = new PostgresBus({ url: server.url, timeout: 5000, onError: (e) => errors.push(e) })
      const admin = new pg.Client({ connectionString: server.url })
      admin.on('error', () => {}) // the crash of a backend ends every session, this one's too
      await admin.connect()
      let pids: number[] = []
      try {
        await bus.publish(['warm'])
        const { rows } = await admin.query<{ pid: number }>(
          "select pid from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid() and application_name <> 'stockpyle-listen'",
        )
        pids = rows.map((r) => r.pid)
        expect(pids.length).toBeGreaterThan(0)
        // the publish is sent to a backend that cannot answer, which then dies: its socket closes mid-query
        for (const pid of pids) process.kill(pid, 'SIGSTOP')
        const publishing = bus.publish(['lost']).catch((e: unknown) => e)
        await new Promise((r) => setTimeout(r, 50))
        for (const pid of pids) process.kill(pid, 'SIGKILL')
        const err = await publishing
        expect(err).toBeInstanceOf(StoreUnavailableError)
        expect((err as Error).message).toMatch(/publish/)
      } finally {
        await bus.close()
        await admin.end().catch(() => {})
      }
    })
  })

  describe('a frozen LISTEN session (a private server)', () => {
    let server: PostgresServer
    let admin: pg.Client
    beforeAll(async () => {
      server = await startPostgres()
      admin = new pg.Client({ connectionString: server.url })
      await admin.connect()
    })
    afterAll(async () => {
      await admin?.end()
      await server?.stop()
    })

    it('a publish under way when close() is called on a frozen session rejects with StoreClosedError within timeout, and close() returns', async () => {
      const bus = new PostgresBus({ url: server.url, timeout: 300 })
      let frozen: number[] = []
      try {
        await bus.publish(['warm'])
        const { rows } = await admin.query<{ pid: number }>(
          "select pid from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid() and application_name <> 'stockpyle-listen'",
        )
        frozen = rows.map((r) => r.pid)
        expect(frozen.length).toBeGreaterThan(0)
        for (const pid of frozen) process.kill(pid, 'SIGSTOP')
        const started = performance.now()
        const publishing = bus.publish(['stuck']).catch((e: unknown) => e)
        await bus.close()
        const err = await publishing
        expect(performance.now() - started).toBeLessThan(2000)
        expect(err).toBeInstanceOf(StoreClosedError)
        expect((err as Error).message).toMatch(/was closed while publishing/)
        expect(String((err as Error).cause)).toMatch(/no answer within 300 ms/)
      } finally {
        for (const pid of frozen) process.kill(pid, 'SIGCONT')
        await bus.close()
      }
    })

    it('SIGSTOP of the LISTEN backend: the heartbeat notices, the layer serves nothing, a new session takes over', async () => {
      const bus = new PostgresBus({ url: server.url, heartbeatInterval: 200, timeout: 300 })
      const memory = new ProcessMemoryStore({ bus })
      const other = new PostgresBus({ url: server.url })
      let frozen: number | undefined
      try {
        await poll(() => memory.coherent, 'the subscription')
        const [pid] = await listenBackends(admin)
        expect(pid).toBeTypeOf('number')
        frozen = pid as number
        process.kill(frozen, 'SIGSTOP')
        const noticed = await poll(() => !memory.coherent, 'the freeze to be noticed', 5000)
        expect(noticed).toBeLessThan(2000)
        await poll(() => memory.coherent, 'a new LISTEN session', 10_000)
        expect(await listenBackends(admin)).not.toEqual([frozen])
        const r = new Recorder()
        bus.subscribe(r)
        await other.publish(['after-the-freeze'])
        await poll(() => r.keys.includes('after-the-freeze'), 'delivery on the new session')
      } finally {
        if (frozen !== undefined) process.kill(frozen, 'SIGCONT')
        await memory.close()
        await Promise.all([bus.close(), other.close()])
      }
    })
  })
})
