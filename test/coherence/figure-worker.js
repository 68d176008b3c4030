/**
 * A worker process for the coherence figures (figures.test.ts), over the built package.
 *
 * IPC (parent → worker, each answered by `{ id, result }` or `{ id, error }`):
 * - `storm` {redisUrl, pgUrl, table, prefix, leases, gets, startAtMs, dbDelayMs, objectId}: builds
 *   ChainedStore([ProcessMemoryStore, RedisStore, FaultStore(SqlStore)]), waits until `startAtMs` on
 *   the shared monotonic clock, fires `gets` concurrent gets of object `id`, and answers how many reads
 *   reached the database and the slowest get.
 * - `bus` {redisUrl, channel}: opens a ProcessMemoryStore on a RedisBus that records when each key was
 *   published (this process) or delivered (other processes).
 * - `publish` {keys}: publishes through that bus; `received` {}: the delivery times so far; `sent` {}.
 * - `exit`.
 */
import { pathToFileURL } from 'node:url'
import { CoherenceItem } from './shared.js'

const dist = process.env.COHERENCE_DIST
  ? `${pathToFileURL(process.env.COHERENCE_DIST).href}/`
  : new URL('../../dist/', import.meta.url).href
const { ChainedStore, ProcessMemoryStore } = await import(`${dist}index.js`)
const { RedisBus } = await import(`${dist}invalidation/index.js`)
const { RedisStore } = await import(`${dist}stores/redis/index.js`)
const { SqlStore } = await import(`${dist}stores/sql/index.js`)
const { FaultStore } = await import(`${dist}testing/index.js`)

/** ms on CLOCK_MONOTONIC, shared by every process of this machine. */
const clockMs = () => Number(process.hrtime.bigint() / 1000n) / 1000
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const closers = []

async function storm({ redisUrl, pgUrl, table, prefix, leases, gets, startAtMs, dbDelayMs, objectId: id }) {
  const db = new FaultStore(new SqlStore({ url: pgUrl }, { tables: { CoherenceItem: table }, maxConnections: 2 }))
  const chain = new ChainedStore([new ProcessMemoryStore(), new RedisStore({ url: redisUrl, prefix }), db], {
    ...(leases ? { leases: { wait: 2000 } } : {}),
  })
  try {
    // connect everything first (another object), so the storm measures reads, not connection setup
    await chain.get(CoherenceItem, { id: id + 1_000_000 })
    db.delay(dbDelayMs)
    const before = db.calls.get
    while (clockMs() < startAtMs - 2) await sleep(1)
    while (clockMs() < startAtMs) {
      // spin the last ms so every process fires at the same moment
    }
    const t0 = performance.now()
    const results = await Promise.all(Array.from({ length: gets }, () => chain.get(CoherenceItem, { id })))
    const slowestMs = performance.now() - t0
    if (!results.every((r) => r?.id === id)) throw new Error(`storm: a get of ${id} missed`)
    return { dbReads: db.calls.get - before, slowestMs }
  } finally {
    await chain.close()
  }
}

let bus
let memory
const sent = new Map()
const received = new Map()

async function openBus({ redisUrl, channel }) {
  const inner = new RedisBus({ url: redisUrl, channel })
  closers.push(() => inner.close())
  // the bus the memory layer uses: records when each key goes out
  bus = {
    name: inner.name,
    publish: async (keys) => {
      const t = clockMs()
      for (const key of keys) sent.set(key, t)
      await inner.publish(keys)
    },
    subscribe: (listener) => inner.subscribe(listener),
    close: () => inner.close(),
  }
  // delivery times of other processes' keys, seen by the same subscription as the memory layer's eviction
  inner.subscribe({
    onInvalidate: (keys) => {
      const t = clockMs()
      for (const key of keys) received.set(key, t)
    },
    onDown: () => {},
    onUp: () => {},
  })
  memory = new ProcessMemoryStore({ bus })
  const deadline = Date.now() + 20_000
  while (!memory.coherent) {
    if (Date.now() > deadline) throw new Error('figure worker: the bus did not come up within 20 s')
    await sleep(5)
  }
  return {}
}

async function handle(msg) {
  switch (msg.op) {
    case 'storm':
      return storm(msg)
    case 'bus':
      return openBus(msg)
    case 'publish':
      await bus.publish(msg.keys)
      return {}
    case 'sent':
      return Object.fromEntries(sent)
    case 'received':
      return Object.fromEntries(received)
    case 'exit':
      await Promise.allSettled([memory?.close(), ...closers.map((close) => close())])
      process.send?.({ id: msg.id, result: {} }, () => process.exit(0))
      return undefined
  }
  throw new Error(`figure worker: unknown op ${msg.op}`)
}

process.on('message', (msg) => {
  handle(msg).then(
    (result) => {
      if (msg.op !== 'exit') process.send?.({ id: msg.id, result })
    },
    (err) => process.send?.({ id: msg.id, error: String(err?.stack ?? err) }),
  )
})
process.on('disconnect', () => process.exit(0))
