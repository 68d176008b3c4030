import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ChainedStore, ProcessMemoryStore, StoreClosedError, StoreUnavailableError } from '../../src/index.js'
import type { InvalidationBus } from '../../src/invalidation/index.js'
import { ConformanceUser, makeUser } from '../../src/testing/index.js'
import type { ServerProcess } from '../harness/servers.js'
import { measureDelay, poll, Recorder, summarize } from './helpers.js'

/** A bus as the contract tests see it. */
export type TestBus = InvalidationBus & { readonly subscribed: boolean; readonly channel: string }

/** Options the contract passes when it makes a bus. */
export interface TestBusOptions {
  heartbeatInterval?: number
  timeout?: number
  channel?: string
  onError?: (error: unknown) => void
}

/** How to run the contract against one bus implementation. */
export interface BusContract {
  readonly name: string
  /** The URL of the shared server (call inside tests or hooks). */
  readonly url: () => string
  readonly makeBus: (url: string, options?: TestBusOptions) => TestBus
  /** Sends a raw message on the channel, bypassing the bus (for malformed input). */
  readonly publishRaw: (url: string, channel: string, text: string) => Promise<void>
  /** Starts a private server the tests may kill and restart. */
  readonly startServer: () => Promise<ServerProcess & { readonly url: string }>
  /** Ms a restarted server may take until the buses are subscribed again. */
  readonly restartMs: number
}

/** Two simulated processes: each a memory layer on its own bus over one shared "database". */
export function twoProcesses(contract: BusContract, url: string, options: TestBusOptions = {}) {
  const busA = contract.makeBus(url, options)
  const busB = contract.makeBus(url, options)
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
export async function cacheIn(chain: ChainedStore, memory: ProcessMemoryStore, id: number): Promise<void> {
  await poll(async () => {
    await chain.get(ConformanceUser, { id })
    return (await memory.get(ConformanceUser, { id })) !== undefined
  }, `user ${id} to be cached in ${memory.name}`)
}

/** The tests every invalidation bus must pass, on real servers. */
export function describeBusContract(contract: BusContract): void {
  const { name, makeBus } = contract

  it('a put or delete in one process evicts the copy in the other', async () => {
    const p = twoProcesses(contract, contract.url())
    try {
      await poll(() => p.memA.coherent && p.memB.coherent, 'both buses to subscribe')
      const user = makeUser(1)
      await p.a.put(user)
      expect((await p.b.get(ConformanceUser, { id: 1 }))?.name).toBe(user.name)
      await cacheIn(p.b, p.memB, 1)
      user.name = 'renamed in A'
      await p.a.put(user)
      await poll(async () => (await p.memB.get(ConformanceUser, { id: 1 })) === undefined, 'B to drop its copy after the put')
      expect((await p.b.get(ConformanceUser, { email: user.email }))?.name).toBe('renamed in A')
      await cacheIn(p.a, p.memA, 1)
      await p.b.delete(user)
      await poll(async () => (await p.memA.get(ConformanceUser, { id: 1 })) === undefined, 'A to drop its copy after the delete')
      expect(await p.a.get(ConformanceUser, { id: 1 })).toBeUndefined()
    } finally {
      await p.close()
    }
  })

  it('delivers to every other bus, never to the publishing one; subscribe calls onUp at once only when subscribed', async () => {
    const url = contract.url()
    const busA = makeBus(url)
    const busB = makeBus(url)
    const busC = makeBus(url, { channel: 'another_channel' })
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
    const url = contract.url()
    const busA = makeBus(url)
    const busB = makeBus(url)
    try {
      const r = new Recorder()
      busB.subscribe(r)
      await poll(() => busB.subscribed, 'the subscription')
      const keys = Array.from({ length: 3000 }, (_, i) => `Big|k=${i}|${'x'.repeat(180)}ü`)
      await busA.publish(keys)
      await poll(() => r.keys.length === keys.length, 'every key')
      expect(r.keys).toEqual(keys)
    } finally {
      await Promise.all([busA.close(), busB.close()])
    }
  })

  it('reports malformed messages through onError and ignores them', async () => {
    const url = contract.url()
    const errors: unknown[] = []
    const bus = makeBus(url, { onError: (e) => errors.push(e) })
    const other = makeBus(url)
    try {
      const r = new Recorder()
      bus.subscribe(r)
      await poll(() => bus.subscribed, 'the subscription')
      await contract.publishRaw(url, bus.channel, 'not json')
      await contract.publishRaw(url, bus.channel, JSON.stringify({ o: 'x', k: [1, 2] }))
      await other.publish(['fine'])
      await poll(() => r.keys.length === 1, 'the good message')
      expect(r.keys).toEqual(['fine'])
      expect(errors).toHaveLength(2)
      expect(String(errors[0])).toMatch(/malformed/)
    } finally {
      await Promise.all([bus.close(), other.close()])
    }
  })

  it('close() tells the listeners onDown (a memory layer on a closed bus serves nothing); calls after it fail', async () => {
    const bus = makeBus(contract.url())
    const memory = new ProcessMemoryStore({ bus })
    await poll(() => memory.coherent, 'the subscription')
    await memory.put(makeUser(5))
    await bus.close()
    await bus.close() // idempotent
    expect(memory.coherent).toBe(false)
    expect(await memory.get(ConformanceUser, { id: 5 })).toBeUndefined()
    await expect(bus.publish(['x'])).rejects.toBeInstanceOf(StoreClosedError)
    expect(() => bus.subscribe(new Recorder())).toThrow(StoreClosedError)
    await memory.close()
  })

  it('measures the invalidation delay between two buses (200 messages)', async () => {
    const url = contract.url()
    const busA = makeBus(url)
    const busB = makeBus(url)
    try {
      const r = new Recorder()
      busB.subscribe(r)
      await poll(() => busB.subscribed, 'the subscription')
      await measureDelay((keys) => busA.publish(keys), r, 20) // warm-up
      const delay = summarize(await measureDelay((keys) => busA.publish(keys), r, 200))
      console.log(
        `${name} invalidation delay over ${delay.n} messages: median ${delay.median} ms, p99 ${delay.p99} ms, max ${delay.max} ms`,
      )
      expect(delay.median).toBeLessThan(50)
    } finally {
      await Promise.all([busA.close(), busB.close()])
    }
  })

  describe('server faults (a private server)', () => {
    let server: ServerProcess & { readonly url: string }
    beforeAll(async () => {
      server = await contract.startServer()
    })
    afterAll(async () => {
      await server?.stop()
    })

    it('killed: publish fails fast, memory layers serve nothing; restarted: they come back empty and invalidations flow again', async () => {
      const errors: unknown[] = []
      const p = twoProcesses(contract, server.url)
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
        expect(performance.now() - started).toBeLessThan(1000)
        p.a.events.on('cacheError', (e) => errors.push(e))
        const renamed = makeUser(1)
        renamed.name = 'written while the bus was down'
        await p.a.put(renamed) // the database takes it; the memory layer's publish fails and is reported
        expect(errors.length).toBeGreaterThan(0)
        expect((await p.b.get(ConformanceUser, { id: 1 }))?.name).toBe(renamed.name) // from the database
        expect(p.memB.size).toBe(0) // nothing is held while down
        await server.restart()
        await poll(() => p.memA.coherent && p.memB.coherent, 'both buses to resubscribe', contract.restartMs)
        expect(p.memB.size).toBe(0) // cleared on the way up
        await cacheIn(p.b, p.memB, 1)
        renamed.name = 'after the restart'
        await p.a.put(renamed)
        await poll(async () => (await p.memB.get(ConformanceUser, { id: 1 })) === undefined, 'B to drop its copy after the restart')
        expect((await p.b.get(ConformanceUser, { id: 1 }))?.name).toBe('after the restart')
      } finally {
        await p.close()
      }
    })
  })
}
