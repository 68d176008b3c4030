import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { inspect } from 'node:util'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { ChainedStore, InvalidOptionError, ProcessMemoryStore, StoreClosedError, StoreUnavailableError } from '../../src/index.js'
import { RedisBus } from '../../src/invalidation/index.js'
import { RedisStore } from '../../src/stores/redis/index.js'
import { ConformanceUser, cacheIn, makeUser, runBusConformance } from '../../src/testing/index.js'
import { freePort, type RedisServer, selectedStores, startRedis } from '../harness/servers.js'
import { type BusContract, busConformance, malformedMessageCase, processesOn, unreportedErrorCases } from './bus-contract.js'
import { nextTurn, poll, Recorder, UNREPORTED, warningsNaming } from './helpers.js'

const contract: BusContract = {
  name: 'RedisBus',
  makeBus: (url, options = {}) => new RedisBus({ url, ...options }),
  publishRaw: async (url, channel, text) => {
    const raw = new Redis(url)
    try {
      await raw.publish(channel, text)
    } finally {
      raw.disconnect()
    }
  },
}

describe('RedisBus options', () => {
  it.each([
    ['redis://127.0.0.1:6379/abc', /database number/],
    ['redis://127.0.0.1:6379?db=2', /query/],
    ['http://127.0.0.1:6379', /redis:\/\//],
  ])('refuses the url %s with InvalidOptionError', (url, message) => {
    expect(() => new RedisBus({ url })).toThrow(InvalidOptionError)
    expect(() => new RedisBus({ url })).toThrow(message)
  })

  // Spread over the bus's own settings, these undid its fail-fast publishes, its own re-subscribe and
  // backoff, or were silently beaten by the URL (host, port, and a database or credentials it gives)
  it.each([
    ['keyPrefix', 'app:', '`channel`'],
    ['host', 'other', '`url`'],
    ['port', 6380, '`url`'],
    ['lazyConnect', false, 'connects on first use'],
    ['enableOfflineQueue', true, 'fails fast'],
    ['maxRetriesPerRequest', 3, 'fails fast'],
    ['retryStrategy', () => 100, '`maxBackoff`'],
    ['autoResubscribe', true, 'subscribes again itself'],
    ['commandTimeout', 500, '`timeout`'],
  ])('refuses redisOptions.%s, naming what to use instead', (key, value, instead) => {
    const make = () => new RedisBus({ url: 'redis://127.0.0.1:6379', redisOptions: { [key]: value } })
    expect(make).toThrow(InvalidOptionError)
    expect(make).toThrow(`option \`redisOptions.${key}\` is refused`)
    expect(make).toThrow(instead)
  })

  it.each([
    ['db', 'redis://127.0.0.1:6379/2', { db: 3 }],
    ['password', 'redis://:secret@127.0.0.1:6379', { password: 'other' }],
    ['username', 'redis://u:secret@127.0.0.1:6379', { username: 'other' }],
    ['tls', 'rediss://127.0.0.1:6379', { tls: false }],
  ])('refuses redisOptions.%s where the url gives it too', (key, url, redisOptions) => {
    const make = () => new RedisBus({ url, redisOptions: redisOptions as never })
    expect(make).toThrow(InvalidOptionError)
    expect(make).toThrow(`option \`redisOptions.${key}\` cannot be combined with`)
  })

  it('takes redisOptions the URL leaves open, and refuses an array', () => {
    for (const redisOptions of [
      { db: 3 },
      { password: 'p', username: 'u' },
      { tls: { rejectUnauthorized: false } },
      { connectionName: 'x' },
    ]) {
      expect(() => new RedisBus({ url: 'redis://127.0.0.1:6379', redisOptions })).not.toThrow()
    }
    expect(() => new RedisBus({ url: 'redis://127.0.0.1:6379', redisOptions: [] as never })).toThrow(/`redisOptions` must be an object/)
  })
})

describe.runIf(selectedStores().has('redis'))('RedisBus', () => {
  let url = ''
  beforeAll(() => {
    url = inject('redis').url
  })

  runBusConformance(busConformance(contract, () => url, startRedis, 10_000))

  it('with a client you own: publishes through it, subscribes on a duplicate, and never closes it', async () => {
    const client = new Redis(url)
    const bus = new RedisBus({ client })
    const other = new RedisBus({ url })
    try {
      const r = new Recorder()
      other.subscribe(r)
      await poll(() => other.subscribed, 'the subscription')
      await bus.publish(['from-own-client'])
      await poll(() => r.keys.includes('from-own-client'), 'the message')
      await bus.close()
      await bus.close() // idempotent
      expect(await client.ping()).toBe('PONG')
      await expect(bus.publish(['x'])).rejects.toBeInstanceOf(StoreClosedError)
      expect(() => bus.subscribe(new Recorder())).toThrow(StoreClosedError)
    } finally {
      client.disconnect()
      await other.close()
    }
  })

  it('a server that is not running: the first publish fails at once, listeners stay down, close() is quick', async () => {
    const bus = new RedisBus({ url: `redis://127.0.0.1:${await freePort()}`, timeout: 2000 })
    const r = new Recorder()
    bus.subscribe(r)
    const started = performance.now()
    await expect(bus.publish(['x'])).rejects.toBeInstanceOf(StoreUnavailableError)
    expect(performance.now() - started).toBeLessThan(1000)
    expect(r.ups).toBe(0)
    expect(bus.subscribed).toBe(false)
    const closing = performance.now()
    await bus.close()
    expect(performance.now() - closing).toBeLessThan(1000)
  })

  it('a refused password appears neither in the publish error nor in what onError receives', async () => {
    const { host, port } = inject('redis')
    const reported: unknown[] = []
    const bus = new RedisBus({ url: `redis://alice:hunter2@${host}:${port}`, timeout: 2000, onError: (e) => reported.push(e) })
    bus.subscribe(new Recorder())
    try {
      const failure = await bus.publish(['x']).then(
        () => undefined,
        (err: unknown) => err,
      )
      expect(failure).toBeInstanceOf(StoreUnavailableError)
      await poll(() => reported.length > 0, 'the subscriber connection error')
      for (const shown of [failure, ...reported]) {
        expect(inspect(shown, { depth: 20 })).toContain('WRONGPASS')
        expect(inspect(shown, { depth: 20 })).not.toContain('hunter2')
      }
    } finally {
      await bus.close()
    }
  })

  it('without onError, the refused password appears in the warning about the connection error only as WRONGPASS', async () => {
    const { host, port } = inject('redis')
    const name = 'redis-bus-wrongpass-warning'
    const warnings = warningsNaming(name)
    const bus = new RedisBus({ url: `redis://alice:hunter2@${host}:${port}`, timeout: 2000, name })
    bus.subscribe(new Recorder())
    try {
      await poll(() => warnings.messages.length > 0, 'the warning')
      expect(warnings.messages).toEqual([expect.stringMatching(new RegExp(`^${name}: .*WRONGPASS`))])
      expect(warnings.messages[0]).not.toContain('hunter2')
    } finally {
      warnings.stop()
      await bus.close()
    }
  })

  // review: close() ended the first connection these publishes waited for; they rejected and nothing was sent
  it('publishes waiting for the first connection when close() is called are let finish: on a healthy server all are sent', async () => {
    const timeout = 2000
    const channel = `close-first-${process.pid}`
    const receiver = new RedisBus({ url, channel })
    const r = new Recorder()
    receiver.subscribe(r)
    const bus = new RedisBus({ url, channel, timeout })
    try {
      await poll(() => receiver.subscribed, 'the subscription')
      const keys = Array.from({ length: 50 }, (_, i) => `in-flight-${i}`)
      const started = performance.now()
      const outcomes = keys.map((key) =>
        bus.publish([key]).then(
          () => undefined,
          (err: unknown) => err,
        ),
      )
      await bus.close()
      expect(performance.now() - started).toBeLessThan(timeout)
      expect(await Promise.all(outcomes)).toEqual(keys.map(() => undefined))
      await expect(bus.publish(['late'])).rejects.toBeInstanceOf(StoreClosedError)
      await poll(() => keys.every((k) => r.keys.includes(k)), 'every publish to be delivered')
    } finally {
      await Promise.all([bus.close(), receiver.close()])
    }
  })

  it('a publish waiting for the first connection to a server that is not running rejects with StoreClosedError when close() is called, its cause saying why', async () => {
    const bus = new RedisBus({ url: `redis://127.0.0.1:${await freePort()}`, timeout: 2000 })
    const started = performance.now()
    const publishing = bus.publish(['x']).then(
      () => undefined,
      (err: unknown) => err,
    )
    await bus.close()
    const failure = await publishing
    expect(performance.now() - started).toBeLessThan(1000)
    expect(failure).toBeInstanceOf(StoreClosedError)
    expect((failure as Error).message).toMatch(/was closed while publishing/)
    expect((failure as Error).cause).toBeInstanceOf(StoreUnavailableError)
    expect(((failure as Error).cause as Error).message).toMatch(/ECONNREFUSED/)
  })

  // review: each waiting publish added its own 'ready'/'close'/'end' listeners: 11 printed three MaxListenersExceededWarning
  it('twenty publishes waiting for the first connection share one set of listeners: no MaxListenersExceededWarning', async () => {
    const warnings: Error[] = []
    const onWarning = (w: Error): void => {
      if (w.name === 'MaxListenersExceededWarning') warnings.push(w)
    }
    process.on('warning', onWarning)
    const bus = new RedisBus({ url, onError: () => {} })
    try {
      await Promise.all(Array.from({ length: 20 }, (_, i) => bus.publish([`many-${i}`])))
      await nextTurn()
      expect(warnings).toEqual([])
    } finally {
      process.off('warning', onWarning)
      await bus.close()
    }
  })

  it('twenty publishes waiting for a first connection that is refused all reject at once', async () => {
    const bus = new RedisBus({ url: `redis://127.0.0.1:${await freePort()}`, timeout: 2000 })
    try {
      const started = performance.now()
      const failures = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          bus.publish([`k${i}`]).then(
            () => undefined,
            (e: unknown) => e,
          ),
        ),
      )
      expect(performance.now() - started).toBeLessThan(1000)
      for (const f of failures) expect(f).toBeInstanceOf(StoreUnavailableError)
    } finally {
      await bus.close()
    }
  })

  malformedMessageCase(contract, () => url)

  /** Closes the pub/sub connections named `name` (CLIENT SETNAME) from the server side, as CLIENT KILL or a client-output-buffer-limit does. */
  async function killSubscriber(name: string): Promise<void> {
    const admin = new Redis(url)
    try {
      const list = (await admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string
      const ids = list
        .split('\n')
        .filter((line) => line.includes(` name=${name} `))
        .map((line) => /\bid=(\d+)/.exec(line)?.[1])
        .filter((id): id is string => id !== undefined)
      expect(ids.length).toBeGreaterThan(0)
      for (const id of ids) await admin.client('KILL', 'ID', id)
    } finally {
      admin.disconnect()
    }
  }

  for (const withOnError of [true, false]) {
    it(`a subscriber connection the server closes cleanly (CLIENT KILL) is reported ${withOnError ? 'to onError' : `as one ${UNREPORTED} warning`}, once`, async () => {
      const name = `redis-bus-client-kill-${withOnError}`
      const reported: unknown[] = []
      const warnings = warningsNaming(name)
      const bus = new RedisBus({
        url,
        name,
        maxBackoff: 100,
        redisOptions: { connectionName: name },
        ...(withOnError ? { onError: (e: unknown) => reported.push(e) } : {}),
      })
      const r = new Recorder()
      bus.subscribe(r)
      try {
        await poll(() => bus.subscribed, 'the subscription')
        await killSubscriber(name)
        await poll(() => r.downs === 1 && r.ups === 2, 'onDown, then onUp after the reconnect')
        await nextTurn()
        if (withOnError) {
          expect(warnings.messages).toEqual([])
          expect(reported).toHaveLength(1)
          expect(reported[0]).toBeInstanceOf(StoreUnavailableError)
          expect((reported[0] as Error).message).toMatch(new RegExp(`^${name}: the subscriber connection was closed by the server`))
        } else {
          expect(warnings.messages).toHaveLength(1)
          expect(warnings.messages[0]).toMatch(new RegExp(`^${name}: .*closed by the server`))
        }
      } finally {
        warnings.stop()
        await bus.close()
      }
    })
  }

  it('invalidates across two OS processes (a forked child with its own bus and memory layer)', async () => {
    const prefix = `fork-${process.pid}-${Date.now()}:`
    const db = new RedisStore({ url, prefix, tombstoneLifetime: 0 })
    const parentBus = new RedisBus({ url })
    const memory = new ProcessMemoryStore({ bus: parentBus, tombstoneLifetime: 0.1 })
    const chain = new ChainedStore([memory, db])
    const child = fork(fileURLToPath(new URL('./fixtures/bus-child.mjs', import.meta.url)), [], {
      env: { ...process.env, BUS: 'redis', BUS_URL: url, DB_URL: url, DB_PREFIX: prefix },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    let next = 0
    const pending = new Map<number, (value: unknown) => void>()
    child.on('message', (msg: { id?: number; result?: unknown; ready?: boolean }) => {
      if (msg.id !== undefined) pending.get(msg.id)?.(msg.result)
    })
    const ask = (op: string, args: Record<string, unknown> = {}): Promise<unknown> =>
      new Promise((resolve) => {
        const id = ++next
        pending.set(id, resolve)
        child.send({ id, op, ...args })
      })
    try {
      await poll(async () => (await ask('coherent')) === true, 'the child to subscribe', 20_000)
      await poll(() => memory.coherent, 'the parent to subscribe')
      const user = makeUser(42)
      user.name = 'v1'
      await chain.put(user)
      // read through the child's chain until its memory layer holds the copy (the put's eviction leaves a short tombstone)
      await poll(
        async () => (await ask('get', { userId: 42 })) === 'v1' && (await ask('memGet', { userId: 42 })) === 'v1',
        'the child to cache v1',
      )
      user.name = 'v2'
      await chain.put(user)
      const ms = await poll(async () => (await ask('memGet', { userId: 42 })) === null, 'the child to drop its copy')
      expect(await ask('get', { userId: 42 })).toBe('v2')
      // the child writes; the parent's copy goes
      await cacheIn(chain, memory, 42)
      expect((await memory.get(ConformanceUser, { id: 42 }))?.name).toBe('v2')
      await ask('put', { userId: 42, name: 'v3' })
      await poll(async () => (await memory.get(ConformanceUser, { id: 42 })) === undefined, 'the parent to drop its copy')
      expect((await chain.get(ConformanceUser, { id: 42 }))?.name).toBe('v3')
      await ask('delete', { userId: 42 })
      await poll(async () => (await memory.get(ConformanceUser, { id: 42 })) === undefined, 'the parent to drop its copy after the delete')
      expect(await chain.get(ConformanceUser, { id: 42 })).toBeUndefined()
      console.log(
        `RedisBus: the child process dropped its copy ${ms.toFixed(1)} ms after the parent's put resolved (including IPC polling)`,
      )
    } finally {
      await ask('exit')
      await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(undefined)))
      await chain.close()
      await parentBus.close()
    }
  })

  describe('errors nobody receives (a private redis-server)', () => {
    let server: RedisServer
    beforeAll(async () => {
      server = await startRedis()
    })
    afterAll(async () => {
      await server?.stop()
    })
    unreportedErrorCases(contract, () => server)
  })

  describe('a frozen server (a private redis-server)', () => {
    let server: RedisServer
    beforeAll(async () => {
      server = await startRedis()
    })
    afterAll(async () => {
      await server?.stop()
    })

    it('frozen (SIGSTOP): a publish waiting for the first connection when close() is called rejects within its timeout, and close() ends', async () => {
      const timeout = 300
      const bus = new RedisBus({ url: server.url, timeout })
      server.kill('SIGSTOP')
      try {
        const started = performance.now()
        const publishing = bus.publish(['x']).then(
          () => undefined,
          (err: unknown) => ({ err, ms: performance.now() - started }),
        )
        await bus.close()
        const failure = await publishing
        if (failure === undefined) throw new Error('the publish to a frozen server resolved')
        expect(failure.err).toBeInstanceOf(StoreClosedError)
        expect(((failure.err as Error).cause as Error).message).toMatch(/within 300 ms/)
        expect(failure.ms).toBeLessThan(timeout + 400) // within its timeout (slack for a loaded machine)
        expect(performance.now() - started).toBeLessThan(5 * timeout) // close(): the publish, then the bounded quit
      } finally {
        server.kill('SIGCONT')
        await bus.close()
      }
    })

    it('frozen (SIGSTOP): the heartbeat notices within heartbeatInterval + timeout; thawed, the layers come back', async () => {
      const p = processesOn(contract, server.url, { heartbeatInterval: 200, timeout: 300 })
      try {
        await poll(() => p.memA.coherent && p.memB.coherent, 'both buses to subscribe')
        await p.a.put(makeUser(2))
        server.kill('SIGSTOP')
        const noticed = await poll(() => !p.memB.coherent, 'the freeze to be noticed', 5000)
        expect(noticed).toBeLessThan(2000)
        const started = performance.now()
        await expect(p.busA.publish(['x'])).rejects.toBeInstanceOf(StoreUnavailableError)
        expect(performance.now() - started).toBeLessThan(1000)
        server.kill('SIGCONT')
        await poll(() => p.memA.coherent && p.memB.coherent, 'both buses to resubscribe', 10_000)
        await cacheIn(p.b, p.memB, 2)
        await p.a.delete(makeUser(2))
        await poll(async () => (await p.memB.get(ConformanceUser, { id: 2 })) === undefined, 'B to drop its copy after the thaw')
      } finally {
        server.kill('SIGCONT')
        await p.close()
      }
    })
  })
})
