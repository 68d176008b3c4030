import assert from 'node:assert/strict'
import {
  ChainedStore,
  type InvalidationBus,
  type InvalidationListener,
  isStockpyleError,
  ProcessMemoryStore,
  type StoreCapabilities,
  StoreDecorator,
} from '../index.js'
import { makeUser } from './cases/fixtures.js'
import { ConformanceUser } from './models.js'

/** What {@link runBusConformance} passes when it asks for a bus. */
export interface BusConformanceBusOptions {
  /**
   * The channel (a name of at most 40 characters of `[a-z0-9_]`) unique to this test: buses on the
   * same channel talk to each other, buses on different channels never do.
   */
  readonly channel: string
  /** Receives what the bus cannot throw to a caller (malformed messages, connection errors). */
  readonly onError: (error: unknown) => void
}

/** Buses on a transport that a test may take down (a server killed) and bring back. */
export interface BusOutage {
  /** A bus on this transport. */
  createBus(options: BusConformanceBusOptions): InvalidationBus
  /** The transport goes away (e.g. SIGKILL of the server); resolves once it is gone. */
  down(): Promise<void>
  /** The transport comes back (e.g. the server restarted); resolves once it accepts connections. */
  up(): Promise<void>
  /** Ms buses may take to notice an outage and to be delivering again after `up`. Default 10,000. */
  readonly withinMs?: number | undefined
  /** Releases the transport (stops the private server). */
  close(): Promise<void>
}

/** Options of {@link runBusConformance}. */
export interface BusConformanceOptions {
  /** Name of the bus configuration, shown in test names. */
  name: string
  /** Creates a bus on the shared transport (the suite closes it). */
  createBus(options: BusConformanceBusOptions): InvalidationBus | Promise<InvalidationBus>
  /** Sends raw text on a channel, bypassing the bus (malformed input). Without it, that case is skipped (printed). */
  publishRaw?: ((channel: string, text: string) => Promise<void>) | undefined
  /** A transport of its own for the outage case (e.g. a private server). Without it, that case is skipped (printed). */
  outage?: (() => Promise<BusOutage>) | undefined
  /** The runner's `describe` (vitest, node:test, jest, mocha). */
  describe(name: string, body: () => void): unknown
  /** The runner's `test`/`it`. */
  test(name: string, body: () => Promise<void>): unknown
  /** Ms to wait for a delivery or a (re)connection before failing. Default 10,000. */
  timeoutMs?: number | undefined
}

/**
 * Registers the contract every {@link InvalidationBus} must keep (see docs/invalidation.md): delivery
 * to every other bus on the channel and never to the publisher, onUp/onDown, large key lists, close,
 * malformed input, delivery delay and, with `outage`, what a memory layer does while the transport is
 * down. Asserts with `node:assert/strict`; waits in real time (buses deliver asynchronously).
 */
export function runBusConformance(options: BusConformanceOptions): void {
  const within = options.timeoutMs ?? 10_000
  let counter = 0
  const channel = () => `stockpyle_bus_cf_${process.pid}_${++counter}`
  /** Runs `body` with buses made on one fresh channel, closing them all afterwards. */
  const withBuses = (body: (make: (onError?: (e: unknown) => void) => Promise<InvalidationBus>, channel: string) => Promise<void>) => {
    return async () => {
      const ch = channel()
      const made: InvalidationBus[] = []
      const make = async (onError: (e: unknown) => void = () => {}) => {
        const bus = await options.createBus({ channel: ch, onError })
        made.push(bus)
        return bus
      }
      try {
        await body(make, ch)
      } finally {
        await Promise.all(made.map((b) => b.close()))
      }
    }
  }

  options.describe(`bus conformance: ${options.name}`, () => {
    options.test(
      'a put or delete in one process evicts the copy in the other',
      withBuses(async (make) => {
        const p = twoProcesses(await make(), await make())
        try {
          await poll(() => p.memA.coherent && p.memB.coherent, 'both buses to be up', within)
          const user = makeUser(1)
          await p.a.put(user)
          assert.equal((await p.b.get(ConformanceUser, { id: 1 }))?.name, user.name)
          await cacheIn(p.b, p.memB, 1, within)
          user.name = 'renamed in A'
          await p.a.put(user)
          await poll(async () => (await p.memB.get(ConformanceUser, { id: 1 })) === undefined, 'B to drop its copy after the put', within)
          assert.equal((await p.b.get(ConformanceUser, { email: user.email }))?.name, 'renamed in A')
          await cacheIn(p.a, p.memA, 1, within)
          await p.b.delete(user)
          await poll(
            async () => (await p.memA.get(ConformanceUser, { id: 1 })) === undefined,
            'A to drop its copy after the delete',
            within,
          )
          assert.equal(await p.a.get(ConformanceUser, { id: 1 }), undefined)
        } finally {
          await p.close()
        }
      }),
    )

    options.test(
      'an invalidation by an alternate key, in a process that does not hold the object, drops it in one that does',
      withBuses(async (make) => {
        const p = twoProcesses(await make(), await make())
        try {
          await poll(() => p.memA.coherent && p.memB.coherent, 'both buses to be up', within)
          const user = makeUser(2)
          await p.b.put(user)
          await cacheIn(p.b, p.memB, 2, within)
          assert.equal(await p.memA.get(ConformanceUser, { id: 2 }), undefined)
          // A holds nothing: it publishes the alternate key as it is; B resolves it to its record
          await p.a.batchInvalidate(ConformanceUser, [{ email: user.email }])
          await poll(async () => (await p.memB.get(ConformanceUser, { id: 2 })) === undefined, 'B to drop its copy', within)
          assert.equal(await p.memB.get(ConformanceUser, { email: user.email }), undefined)
        } finally {
          await p.close()
        }
      }),
    )

    options.test(
      'delivers to every other bus on the channel, never to the publisher nor to another channel; onUp at once when up',
      withBuses(async (make) => {
        const [busA, busB] = [await make(), await make()]
        const busC = await options.createBus({ channel: channel(), onError: () => {} })
        try {
          const [a, b, c] = [new Recorder(), new Recorder(), new Recorder()]
          busA.subscribe(a)
          busB.subscribe(b)
          busC.subscribe(c)
          await poll(() => a.ups === 1 && b.ups === 1 && c.ups === 1, 'the subscriptions', within)
          const late = new Recorder()
          const stop = busB.subscribe(late)
          assert.equal(late.ups, 1, 'a bus that is up calls onUp at once')
          await busA.publish(['k|a=1', 'k|a=2'])
          await busB.publish(['k|b=1'])
          await poll(() => a.keys.length === 1 && b.keys.length === 2 && late.keys.length === 2, 'the deliveries', within)
          assert.deepEqual(a.keys, ['k|b=1'])
          assert.deepEqual(b.keys, ['k|a=1', 'k|a=2'])
          stop()
          await busA.publish(['k|a=3'])
          await poll(() => b.keys.length === 3, 'the third delivery', within)
          assert.equal(late.keys.length, 2, 'an unsubscribed listener hears nothing more')
          await busA.publish([])
          assert.deepEqual(c.keys, [], 'another channel hears nothing')
          assert.equal(a.downs + b.downs, 0)
        } finally {
          await busC.close()
        }
      }),
    )

    options.test(
      'delivers a large key list completely and in order',
      withBuses(async (make) => {
        const [busA, busB] = [await make(), await make()]
        const r = new Recorder()
        busB.subscribe(r)
        await poll(() => r.ups === 1, 'the subscription', within)
        const keys = Array.from({ length: 3000 }, (_, i) => `Big|k=${i}|${'x'.repeat(180)}ü`)
        await busA.publish(keys)
        await poll(() => r.keys.length === keys.length, 'every key', within)
        assert.deepEqual(r.keys, keys)
      }),
    )

    options.test(
      'close(): listeners get onDown (a memory layer on it serves nothing); publish rejects and subscribe throws StoreClosedError',
      withBuses(async (make) => {
        const bus = await make()
        const memory = new ProcessMemoryStore({ bus })
        await poll(() => memory.coherent, 'the subscription', within)
        await memory.put(makeUser(5))
        await bus.close()
        await bus.close()
        assert.equal(memory.coherent, false)
        assert.equal(await memory.get(ConformanceUser, { id: 5 }), undefined)
        const closed = (err: unknown) => isStockpyleError(err, 'E_STORE_CLOSED')
        await assert.rejects(bus.publish(['x']), closed)
        assert.throws(() => bus.subscribe(new Recorder()), closed)
        await memory.close()
      }),
    )

    options.test(
      'a bad argument: publish rejects and subscribe throws InvalidArgumentError, and nothing is sent',
      withBuses(async (make) => {
        const [busA, busB] = [await make(), await make()]
        const r = new Recorder()
        busB.subscribe(r)
        await poll(() => r.ups === 1, 'the subscription', within)
        const badArgument = (err: unknown) => isStockpyleError(err, 'E_INVALID_ARGUMENT')
        for (const bad of ['k|a=1', [1], ['k|a=1', undefined], undefined, { 0: 'k|a=1', length: 1 }]) {
          // (rejects, never throws: publish returns a promise)
          await assert.rejects(() => busA.publish(bad as never), badArgument, `publish(${String(bad)})`)
        }
        for (const bad of [() => {}, {}, { onInvalidate: () => {} }, undefined]) {
          assert.throws(() => busA.subscribe(bad as never), badArgument, `subscribe(${String(bad)})`)
        }
        await busA.publish(['k|after'])
        await poll(() => r.keys.length === 1, 'the delivery', within)
        assert.deepEqual(r.keys, ['k|after'], 'nothing of the refused publishes was delivered')
      }),
    )

    const raw = options.publishRaw
    if (raw === undefined) {
      console.info(`[stockpyle bus conformance] ${options.name}: skipping "malformed messages": no publishRaw given`)
    } else {
      options.test(
        'reports malformed messages through onError and ignores them',
        withBuses(async (make, ch) => {
          const errors: unknown[] = []
          const bus = await make((e) => errors.push(e))
          const other = await make()
          const r = new Recorder()
          bus.subscribe(r)
          await poll(() => r.ups === 1, 'the subscription', within)
          await raw(ch, 'not json')
          await raw(ch, JSON.stringify({ o: 'x', k: [1, 2] }))
          await other.publish(['fine'])
          await poll(() => r.keys.length === 1, 'the good message', within)
          assert.deepEqual(r.keys, ['fine'])
          assert.equal(errors.length, 2)
          assert.match(String(errors[0]), /malformed/)
        }),
      )
    }

    options.test(
      'delivers 200 messages one after another with a median delay under 50 ms',
      withBuses(async (make) => {
        const [busA, busB] = [await make(), await make()]
        const r = new Recorder()
        busB.subscribe(r)
        await poll(() => r.ups === 1, 'the subscription', within)
        const samples = await measureDelay((keys) => busA.publish(keys), r, 200)
        const median = [...samples].sort((x, y) => x - y)[100] as number
        console.info(`[stockpyle bus conformance] ${options.name}: median delivery delay over 200 messages ${median.toFixed(3)} ms`)
        assert.ok(median < 50, `median delay ${median} ms`)
      }),
    )

    const outage = options.outage
    if (outage === undefined) {
      console.info(`[stockpyle bus conformance] ${options.name}: skipping "outage": no outage given`)
    } else {
      options.test(
        'transport down: publish fails fast, memory layers serve nothing; back up: they come back empty and invalidations flow',
        () => outageCase(outage, channel(), within),
      )
    }
  })
}

async function outageCase(start: () => Promise<BusOutage>, ch: string, within: number): Promise<void> {
  const transport = await start()
  const wait = transport.withinMs ?? 10_000
  const p = twoProcesses(transport.createBus({ channel: ch, onError: () => {} }), transport.createBus({ channel: ch, onError: () => {} }))
  try {
    await poll(() => p.memA.coherent && p.memB.coherent, 'both buses to be up', within)
    await p.a.put(makeUser(1))
    await cacheIn(p.b, p.memB, 1, within)
    await transport.down()
    await poll(() => !p.memA.coherent && !p.memB.coherent, 'both memory layers to notice the outage', wait)
    assert.equal(await p.memB.get(ConformanceUser, { id: 1 }), undefined)
    assert.equal(p.memB.size, 0, 'a memory layer holds nothing while its bus is down')
    const started = performance.now()
    await assert.rejects(p.busA.publish(['x']), (err) => isStockpyleError(err, 'E_STORE_UNAVAILABLE'))
    assert.ok(performance.now() - started < 1000, 'publish fails within a second')
    const errors: unknown[] = []
    p.a.events.on('cacheError', (e) => errors.push(e))
    const renamed = makeUser(1)
    renamed.name = 'written while the bus was down'
    await p.a.put(renamed) // the database takes it; the memory layer's publish fails and is reported
    assert.ok(errors.length > 0, 'the failed publish is reported as a cache error')
    assert.equal((await p.b.get(ConformanceUser, { id: 1 }))?.name, renamed.name)
    assert.equal(p.memB.size, 0)
    await transport.up()
    await poll(() => p.memA.coherent && p.memB.coherent, 'both buses to be up again', wait)
    assert.equal(p.memB.size, 0, 'cleared on the way up')
    await cacheIn(p.b, p.memB, 1, within)
    renamed.name = 'after the outage'
    await p.a.put(renamed)
    await poll(async () => (await p.memB.get(ConformanceUser, { id: 1 })) === undefined, 'B to drop its copy after the outage', within)
    assert.equal((await p.b.get(ConformanceUser, { id: 1 }))?.name, 'after the outage')
  } finally {
    await p.close()
    await transport.close()
  }
}

/**
 * Two simulated processes for testing an invalidation bus: each a chain of a `ProcessMemoryStore` on
 * its own bus (`busA`, `busB`: two connections to one channel) over one shared stand-in database that
 * owns the truth. Evictions leave tombstones of 0.1 s. `close()` closes both chains, then both buses.
 */
export function twoProcesses(busA: InvalidationBus, busB: InvalidationBus) {
  const store = new ProcessMemoryStore({ tombstoneLifetime: 0, name: 'db' })
  // The stand-in database owns the truth: invalidations never reach it.
  const db = new (class extends StoreDecorator {
    override get capabilities(): StoreCapabilities {
      return { ...this.inner.capabilities, authoritative: true }
    }
  })(store)
  // Evictions leave tombstones that refuse backfills for tombstoneLifetime: short, to re-cache quickly.
  const memA = new ProcessMemoryStore({ bus: busA, name: 'memA', tombstoneLifetime: 0.1 })
  const memB = new ProcessMemoryStore({ bus: busB, name: 'memB', tombstoneLifetime: 0.1 })
  const a = new ChainedStore([memA, db])
  const b = new ChainedStore([memB, db])
  const close = async (): Promise<void> => {
    await Promise.all([a.close(), b.close()])
    await Promise.all([busA.close(), busB.close()])
  }
  return { busA, busB, memA, memB, a, b, close }
}

/** Reads through `chain` until the object is cached in `memory` (an eviction's tombstone may refuse the first backfills). */
/**
 * Reads `ConformanceUser` `id` through `chain` until it is cached in `memory` (an eviction's tombstone
 * may refuse the first backfills). @throws AssertionError after `within` ms (default 10 s).
 */
export async function cacheIn(chain: ChainedStore, memory: ProcessMemoryStore, id: number, within = 10_000): Promise<void> {
  await poll(
    async () => {
      await chain.get(ConformanceUser, { id })
      return (await memory.get(ConformanceUser, { id })) !== undefined
    },
    `user ${id} to be cached in ${memory.name}`,
    within,
  )
}

/** Waits until `check()` holds, checking every 2 ms. @throws AssertionError naming `what` after `timeoutMs`. */
async function poll(check: () => boolean | Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const start = performance.now()
  while (!(await check())) {
    assert.ok(performance.now() - start <= timeoutMs, `timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

/** A listener that records what a bus delivers (deliveries, `onUp`/`onDown` counts). */
export class Recorder implements InvalidationListener {
  readonly keys: string[] = []
  ups = 0
  downs = 0
  /** Called with each delivery, after recording it. */
  onKeys: ((keys: readonly string[]) => void) | undefined
  onInvalidate(keys: readonly string[]): void {
    this.keys.push(...keys)
    this.onKeys?.(keys)
  }
  onDown(): void {
    this.downs++
  }
  onUp(): void {
    this.ups++
  }
}

/** Ms from each single-key publish until `recorder` received it, one message after another. */
export async function measureDelay(publish: (keys: string[]) => Promise<void>, recorder: Recorder, count: number): Promise<number[]> {
  const samples: number[] = []
  for (let i = 0; i < count; i++) {
    const key = `delay|i=${i}|${Math.random()}`
    const received = new Promise<number>((resolve) => {
      recorder.onKeys = (keys) => {
        if (keys.includes(key)) resolve(performance.now())
      }
    })
    const start = performance.now()
    await publish([key])
    let timer: NodeJS.Timeout | undefined
    const lost = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new assert.AssertionError({ message: `message ${i} not received within 5 s` })), 5000)
    })
    samples.push((await Promise.race([received, lost]).finally(() => clearTimeout(timer))) - start)
  }
  recorder.onKeys = undefined
  return samples
}
