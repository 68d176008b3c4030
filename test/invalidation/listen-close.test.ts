/**
 * `PostgresBus.close()` and `watcher.close()` leave no connection behind, whatever point the LISTEN
 * connection's set-up or reconnection is at. A TCP relay in front of the real server lets each test
 * stop the conversation at one point (pg still loading, TCP connected but the server silent, LISTEN
 * sent but unanswered, listening, waiting to reconnect, reconnecting) and shows every socket the
 * client opened; pg_stat_activity shows the server's side. A child process that must exit on its own
 * after closing buses and watchers at many moments proves that nothing keeps its event loop alive.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest'
import { ProcessMemoryStore } from '../../src/index.js'
import { installInvalidationTriggers, PostgresBus, watchDatabase } from '../../src/invalidation/index.js'
import { SqlStore } from '../../src/stores/sql/index.js'
import { selectedStores } from '../harness/servers.js'
import { freshDatabase, poll } from './helpers.js'

/** What the relay does with a new connection: forward it, hold everything the client sends, or hold from its LISTEN on. */
type Mode = 'pass' | 'silent' | 'hold-listen'

/** A TCP relay to PostgreSQL that can stop forwarding what a client sends. */
class Relay {
  mode: Mode = 'pass'
  /** Every client socket accepted, in order. */
  readonly clients: Socket[] = []
  readonly #closed = new WeakSet<Socket>()
  readonly #server: Server
  readonly #upstreams: Socket[] = []

  constructor(
    private readonly target: { host: string; port: number },
    readonly port: number,
  ) {
    this.#server = createServer((client) => this.#accept(client))
  }

  static async start(target: { host: string; port: number }): Promise<Relay> {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    await new Promise<void>((resolve) => server.close(() => resolve()))
    const relay = new Relay(target, port)
    await new Promise<void>((resolve) => relay.#server.listen(port, '127.0.0.1', resolve))
    return relay
  }

  /** Client sockets not closed yet. */
  get open(): number {
    return this.clients.filter((c) => !this.#closed.has(c)).length
  }

  #accept(client: Socket): void {
    this.clients.push(client)
    client.on('close', () => this.#closed.add(client))
    client.on('error', () => {})
    const mode = this.mode
    if (mode === 'silent') {
      client.resume() // read and drop: a client's FIN is seen, and answered with ours
      return
    }
    const upstream = tcpConnect(this.target)
    this.#upstreams.push(upstream)
    upstream.on('error', () => client.destroy())
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
    upstream.on('data', (chunk) => client.write(chunk))
    let holding = false
    client.on('data', (chunk) => {
      if (mode === 'hold-listen' && chunk.includes('LISTEN')) holding = true
      if (!holding) upstream.write(chunk)
    })
  }

  /** Drops every connection (a network failure). */
  cut(): void {
    for (const c of this.clients) c.destroy()
  }

  async stop(): Promise<void> {
    this.cut()
    for (const u of this.#upstreams) u.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

class ListenRow {
  static readonly stockpyleName = 'ListenRow'
  static readonly stockpyleKeys = ['id'] as const
  constructor(public id: number) {}
}

/** A bus, or a watcher (of a memory store: it introspects over a pool of its own, through the relay too). */
interface Subject {
  /** Listening (the watcher: and it knows its tables, so its introspection pool is open too). */
  readonly up: () => boolean
  /** The LISTEN connection is up. */
  readonly listening: () => boolean
  readonly close: () => Promise<void>
}

const KINDS = {
  bus: (url: string): Subject => {
    const bus = new PostgresBus({ url, timeout: 500, heartbeatInterval: 0 })
    bus.subscribe({ onInvalidate: () => {}, onDown: () => {}, onUp: () => {} })
    return { up: () => bus.subscribed, listening: () => bus.subscribed, close: () => bus.close() }
  },
  watcher: (url: string): Subject => {
    const memory = new ProcessMemoryStore()
    let ready = false
    const watcher = watchDatabase(memory, { url, models: [ListenRow], timeout: 500, heartbeatInterval: 0 })
    watcher.ready().then(
      () => (ready = true),
      () => {},
    )
    return {
      up: () => ready && watcher.listening,
      listening: () => watcher.listening,
      close: async () => {
        await watcher.close()
        await memory.close()
      },
    }
  },
}

describe.runIf(selectedStores().has('postgres'))('closing a LISTEN connection at any point leaves no connection', () => {
  const DATABASE = 'stockpyle_listen_close'
  let url = ''
  let admin: pg.Client
  let relay: Relay
  let relayUrl = ''

  /** Sessions on the test database other than the admin's. */
  async function sessions(): Promise<number> {
    const { rows } = await admin.query<{ n: number }>(
      'select count(*)::int as n from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
      [DATABASE],
    )
    return rows[0]?.n ?? -1
  }

  /** After close(): every socket the client opened gets closed, no new one is opened, no session is left. */
  async function nothingLeft(accepted: number): Promise<void> {
    await poll(() => relay.open === 0, 'every client socket to be closed', 2000)
    await sleep(400) // longer than the first reconnect backoff (100 ms ± 20 %)
    expect(relay.clients.length).toBe(accepted)
    expect(relay.open).toBe(0)
    await poll(async () => (await sessions()) === 0, 'no session on the server', 2000)
  }

  beforeAll(async () => {
    url = await freshDatabase(inject('postgresUrl'), DATABASE)
    admin = new pg.Client({ connectionString: url, application_name: 'listen-close-admin' })
    await admin.connect()
    await admin.query('create table listen_rows (id integer primary key)')
    const sql = new SqlStore({ url })
    await installInvalidationTriggers(sql, [ListenRow]) // else a watcher's ready() rejects (E_SCHEMA)
    await sql.close()
    const target = new URL(url)
    relay = await Relay.start({ host: target.hostname, port: Number(target.port) })
    relayUrl = `postgres://${target.username}@127.0.0.1:${relay.port}${target.pathname}`
  })

  // each test starts clean, whatever an earlier one left behind
  beforeEach(async () => {
    relay.mode = 'pass'
    relay.cut()
    await poll(async () => relay.open === 0 && (await sessions()) === 0, 'a clean start', 2000)
  })

  afterAll(async () => {
    await relay?.stop()
    await admin?.end()
  })

  for (const [kind, make] of Object.entries(KINDS)) {
    describe(kind, () => {
      it('closed at once (pg still loading): no connection is ever opened', async () => {
        relay.mode = 'pass'
        const before = relay.clients.length
        const subject = make(relayUrl)
        await subject.close()
        await nothingLeft(before)
      })

      it('closed while connecting (the server silent)', async () => {
        relay.mode = 'silent'
        const before = relay.clients.length
        const subject = make(relayUrl)
        await poll(() => relay.clients.length === before + 1, 'the connection')
        await subject.close()
        await nothingLeft(before + 1)
      })

      it('closed while LISTEN is unanswered', async () => {
        relay.mode = 'hold-listen'
        const before = relay.clients.length
        const subject = make(relayUrl)
        await poll(async () => relay.clients.length === before + 1 && (await sessions()) === 1, 'the session')
        await sleep(50) // LISTEN sent, held by the relay
        await subject.close()
        await nothingLeft(before + 1)
      })

      it('closed while listening', async () => {
        relay.mode = 'pass'
        const before = relay.clients.length
        const subject = make(relayUrl)
        await poll(subject.up, 'LISTEN')
        await subject.close()
        await nothingLeft(relay.clients.length)
        expect(relay.clients.length).toBeGreaterThan(before)
      })

      it('closed while waiting to reconnect, and while reconnecting', async () => {
        relay.mode = 'pass'
        for (const during of ['backoff', 'reconnect'] as const) {
          const subject = make(relayUrl)
          await poll(subject.up, 'LISTEN')
          const before = relay.clients.length
          if (during === 'reconnect') relay.mode = 'silent'
          relay.cut()
          await poll(() => !subject.listening(), 'the drop to be noticed')
          if (during === 'reconnect') await poll(() => relay.clients.length > before, 'the reconnect')
          await subject.close()
          await nothingLeft(relay.clients.length)
          relay.mode = 'pass'
        }
      })
    })
  }

  it('a child process that closes buses and watchers at many moments exits by itself', async () => {
    const fixture = fileURLToPath(new URL('./fixtures/listen-close-child.mjs', import.meta.url))
    expect(existsSync(fileURLToPath(new URL('../../dist/invalidation/index.js', import.meta.url))), 'dist/: run npm run build').toBe(true)
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string; killed: boolean }>((resolve) => {
      execFile(
        process.execPath,
        [fixture],
        { env: { ...process.env, NODE_OPTIONS: '', PG_URL: url }, timeout: 20_000 },
        (error, stdout, stderr) =>
          resolve({
            code: error === null ? 0 : ((error as { code?: number }).code ?? null),
            stdout,
            stderr,
            killed: error?.killed === true,
          }),
      )
    })
    expect(result.killed, `the child did not exit by itself: ${result.stdout}`).toBe(false)
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout.trim())).toEqual({ closed: 24, sessionsLeft: 0 })
  }, 30_000)
})
