import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { ChainedStore, ProcessMemoryStore, StoreClosedError, StoreUnavailableError } from '../../src/index.js'
import { RedisBus } from '../../src/invalidation/index.js'
import { RedisStore } from '../../src/stores/redis/index.js'
import { ConformanceUser, makeUser } from '../../src/testing/index.js'
import { type RedisServer, selectedStores, startRedis } from '../harness/servers.js'
import { measureDelay, poll, Recorder, summarize } from './helpers.js'

/** Two simulated processes: each a memory layer on its own bus over one shared "database". */
function twoProcesses(url: string, options: { heartbeatInterval?: number; timeout?: number } = {}) {
  const busA = new RedisBus({ url, ...options })
  const busB = new RedisBus({ url, ...options })
  const db = new ProcessMemoryStore({ tombstoneLifetime: 0, name: 'db' })
  // Evictions leave tombstones that refuse backfills for tombstoneLifetime: short here, so tests can re-cache quickly.
  const memA = new ProcessMemoryStore({ bus: busA, name: 'memA', tombstoneLifetime: 0.1 })
  const memB = new ProcessMemoryStore({ bus: busB, name: 'memB', tombstoneLifetime: 0.1 })
  const a = new ChainedStore([memA, db])
  const b = new ChainedStore([memB, db])
  const close = async (): Promise<void> => {
    await Promise.all([a.close(), b.close()])
    await Promise.all([busA.close(), busB.close()])
  }
  return { busA, busB, db, memA, memB, a, b, close }
}

/** Reads through `chain` until the object is cached in `memory` (an eviction's tombstone may refuse the first backfills). */
async function cacheIn(chain: ChainedStore, memory: ProcessMemoryStore, id: number): Promise<void> {
  await poll(async () => {
    await chain.get(ConformanceUser, { id })
    return (await memory.get(ConformanceUser, { id })) !== undefined
  }, `user ${id} to be cached in ${memory.name}`)
}

describe.runIf(selectedStores().has('redis'))('RedisBus', () => {
  let url = ''
  beforeAll(() => {
    url = inject('redis').url
  })

  it('a put or delete in one process evicts the copy in the other', async () => {
    const p = twoProcesses(url)
    try {
      await poll(() => p.memA.coherent && p.memB.coherent, 'both buses to subscribe')
      const user = makeUser(1)
      await p.a.put(user)
      expect((await p.b.get(ConformanceUser, { id: 1 }))?.name).toBe(user.name)
      await cacheIn(p.b, p.memB, 1) // backfilled into B's memory
      user.name = 'renamed in A'
      await p.a.put(user)
      await poll(async () => (await p.memB.get(ConformanceUser, { id: 1 })) === undefined, 'B to drop its copy after the put')
      expect((await p.b.get(ConformanceUser, { email: user.email }))?.name).toBe('renamed in A')
      // and the other way round
      await cacheIn(p.a, p.memA, 1)
      await p.b.delete(user)
      await poll(async () => (await p.memA.get(ConformanceUser, { id: 1 })) === undefined, 'A to drop its copy after the delete')
      expect(await p.a.get(ConformanceUser, { id: 1 })).toBeUndefined()
    } finally {
      await p.close()
    }
  })

  it('delivers to every other bus, never to the publishing one; subscribe calls onUp at once only when subscribed', async () => {
    const busA = new RedisBus({ url })
    const busB = new RedisBus({ url })
    const busC = new RedisBus({ url, channel: 'another-channel' })
    try {
      const a = new Recorder()
      const b = new Recorder()
      const c = new Recorder()
      busA.subscribe(a)
      busB.subscribe(b)
      busC.subscribe(c)
      expect(a.ups).toBe(0) // not subscribed yet
      await poll(() => a.ups === 1 && b.ups === 1 && c.ups === 1, 'the subscriptions')
      const late = new Recorder()
      const stop = busB.subscribe(late)
      expect(late.ups).toBe(1) // already subscribed: onUp right away
      await busA.publish(['k|a=1', 'k|a=2'])
      await busB.publish(['k|b=1'])
      await poll(() => a.keys.length === 1 && b.keys.length === 2 && late.keys.length === 2, 'the deliveries')
      expect(a.keys).toEqual(['k|b=1'])
      expect(b.keys).toEqual(['k|a=1', 'k|a=2'])
      stop()
      await busA.publish(['k|a=3'])
      await poll(() => b.keys.length === 3, 'the third delivery')
      expect(late.keys).toHaveLength(2)
      expect(c.keys).toEqual([]) // another channel
      await busA.publish([]) // nothing to send
    } finally {
      await Promise.all([busA.close(), busB.close(), busC.close()])
    }
  })

  it('splits large key lists into several messages and delivers every key in order', async () => {
    const busA = new RedisBus({ url })
    const busB = new RedisBus({ url })
    const admin = new Redis(url, { lazyConnect: true })
    try {
      const r = new Recorder()
      busB.subscribe(r)
      await poll(() => busB.subscribed, 'the subscription')
      const keys = Array.from({ length: 3000 }, (_, i) => `Big|k=${i}|${'x'.repeat(180)}ü`)
      await admin.connect()
      const messages = await admin.pubsub('NUMSUB', busA.channel)
      expect(Number(messages[1])).toBeGreaterThanOrEqual(1)
      await busA.publish(keys)
      await poll(() => r.keys.length === keys.length, 'every key')
      expect(r.keys).toEqual(keys)
    } finally {
      admin.disconnect()
      await Promise.all([busA.close(), busB.close()])
    }
  })

  it('reports malformed messages through onError and ignores them', async () => {
    const errors: unknown[] = []
    const bus = new RedisBus({ url, onError: (e) => errors.push(e) })
    const other = new RedisBus({ url })
    const raw = new Redis(url)
    try {
      const r = new Recorder()
      bus.subscribe(r)
      await poll(() => bus.subscribed, 'the subscription')
      await raw.publish(bus.channel, 'not json')
      await raw.publish(bus.channel, JSON.stringify({ o: 'x', k: [1, 2] }))
      await other.publish(['fine'])
      await poll(() => r.keys.length === 1, 'the good message')
      expect(r.keys).toEqual(['fine'])
      expect(errors).toHaveLength(2)
      expect(String(errors[0])).toMatch(/malformed message/)
    } finally {
      raw.disconnect()
      await Promise.all([bus.close(), other.close()])
    }
  })

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

  it('close() tells the listeners onDown: a memory layer on a closed bus serves nothing', async () => {
    const bus = new RedisBus({ url })
    const memory = new ProcessMemoryStore({ bus })
    await poll(() => memory.coherent, 'the subscription')
    await memory.put(makeUser(5))
    await bus.close()
    expect(memory.coherent).toBe(false)
    expect(await memory.get(ConformanceUser, { id: 5 })).toBeUndefined()
    await memory.close()
  })

  it('measures the invalidation delay between two buses (200 messages)', async () => {
    const busA = new RedisBus({ url })
    const busB = new RedisBus({ url })
    try {
      const r = new Recorder()
      busB.subscribe(r)
      await poll(() => busB.subscribed, 'the subscription')
      await measureDelay((keys) => busA.publish(keys), r, 20) // warm-up
      const delay = summarize(await measureDelay((keys) => busA.publish(keys), r, 200))
      console.log(`RedisBus invalidation delay over ${delay.n} messages: median ${delay.median} ms, p99 ${delay.p99} ms, max ${delay.max} ms`)
      expect(delay.median).toBeLessThan(50)
    } finally {
      await Promise.all([busA.close(), busB.close()])
    }
  })

  it('invalidates across two OS processes (a forked child with its own bus and memory layer)', async () => {
    const prefix = `fork-${process.pid}-${Date.now()}:`
    const db = new RedisStore({ url, prefix, tombstoneLifetime: 0 })
    const parentBus = new RedisBus({ url })
    const memory = new ProcessMemoryStore({ bus: parentBus, tombstoneLifetime: 0.1 })
    const chain = new ChainedStore([memory, db])
    const child = fork(fileURLToPath(new URL('./fixtures/bus-child.ts', import.meta.url)), [], {
      execArgv: ['--import', fileURLToPath(new URL('./fixtures/ts-register.mjs', import.meta.url))],
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
      await poll(async () => (await ask('get', { userId: 42 })) === 'v1' && (await ask('memGet', { userId: 42 })) === 'v1', 'the child to cache v1')
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
      console.log(`RedisBus: the child process dropped its copy ${ms.toFixed(1)} ms after the parent's put resolved (including IPC polling)`)
    } finally {
      await ask('exit')
      await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(undefined)))
      await chain.close()
      await parentBus.close()
    }
  })

  describe('server faults (a private redis-server)', () => {
    let server: RedisServer
    beforeAll(async () => {
      server = await startRedis()
    })
    afterAll(async () => {
      await server?.stop()
    })

    it('killed: publish fails fast, memory layers serve nothing; restarted: they come back empty and invalidations flow again', async () => {
      const errors: unknown[] = []
      const p = twoProcesses(server.url)
      try {
        await poll(() => p.memA.coherent && p.memB.coherent, 'both buses to subscribe')
        await p.a.put(makeUser(1))
        await cacheIn(p.b, p.memB, 1)
        server.kill('SIGKILL')
        await poll(() => !p.memA.coherent && !p.memB.coherent, 'both memory layers to notice the outage', 5000)
        expect(await p.memB.get(ConformanceUser, { id: 1 })).toBeUndefined()
        expect(p.memB.size).toBe(0)
        const started = performance.now()
        const failure = await p.busA.publish(['x']).catch((e: unknown) => e)
        expect(failure).toBeInstanceOf(StoreUnavailableError)
        expect(performance.now() - started).toBeLessThan(500)
        p.a.events.on('cacheError', (e) => errors.push(e))
        const renamed = makeUser(1)
        renamed.name = 'written while the bus was down'
        await p.a.put(renamed) // the database takes it; the memory layer's publish fails and is reported
        expect(errors.length).toBeGreaterThan(0)
        expect((await p.b.get(ConformanceUser, { id: 1 }))?.name).toBe(renamed.name) // from the database
        await server.restart()
        await poll(() => p.memA.coherent && p.memB.coherent, 'both buses to resubscribe', 10_000)
        expect(p.memB.size).toBe(0)
        await cacheIn(p.b, p.memB, 1)
        renamed.name = 'after the restart'
        await p.a.put(renamed)
        await poll(async () => (await p.memB.get(ConformanceUser, { id: 1 })) === undefined, 'B to drop its copy after the restart')
        expect((await p.b.get(ConformanceUser, { id: 1 }))?.name).toBe('after the restart')
      } finally {
        await p.close()
      }
    })

    it('frozen (SIGSTOP): the heartbeat notices within heartbeatInterval + timeout; thawed, the layers come back', async () => {
      const p = twoProcesses(server.url, { heartbeatInterval: 200, timeout: 300 })
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
