/**
 * One OS process of the coherence harness (forked by harness.ts with `child_process.fork`), over the
 * BUILT package (`npm test` builds first). It builds
 *
 *   ChainedStore([ProcessMemoryStore({ bus: RedisBus }), RedisStore | MemcacheStore, SqlStore(PostgreSQL)])
 *
 * with every layer wrapped in a FaultStore that delays each call by a random (seeded) number of ms,
 * and runs `actors` concurrent actors. Each key is owned by one actor of one process, which writes it
 * with a strictly increasing `version` (puts and deletes, single and batched); every actor of every
 * process reads every key by primary and alternate keys, with get and batchGet.
 *
 * Checks made here, as the calls return:
 * - intact: every object read is exactly what some version wrote, and answers the lookup it was read by;
 * - readAfterWrite (owner process only): a read that began after a write of the key resolved returns
 *   that write's state or the state of a write that started later, never an older one;
 * - errors: no chain call rejects (the database is never faulted).
 *
 * IPC (parent → worker → parent): `init` {config} → `ready`; `go` {ops} → `done`; `readAll` {foreignOnly} →
 * `readAllDone`; `finalWrites` {spreadMs, epoch} → `finalWritesDone`; `inspect` → `inspected` {memory
 * layer contents}; `report` → `report` {counts, violations, logs}; `exit`. Any failure → `failed` {error}.
 */
import { pathToFileURL } from 'node:url'
import { CoherenceItem, childSeed, EMAILS, intact, itemOf, lookupsOf, rng, slugOf } from './shared.js'

// The built package; COHERENCE_DIST (a directory) runs the harness against another build, e.g. a candidate fix.
const dist = process.env.COHERENCE_DIST
  ? `${pathToFileURL(process.env.COHERENCE_DIST).href}/`
  : new URL('../../dist/', import.meta.url).href
const { ChainedStore, ProcessMemoryStore } = await import(`${dist}index.js`)
const { RedisBus } = await import(`${dist}invalidation/index.js`)
const { RedisStore } = await import(`${dist}stores/redis/index.js`)
const { SqlStore } = await import(`${dist}stores/sql/index.js`)
const { FaultStore } = await import(`${dist}testing/index.js`)

/** A FaultStore that stays an in-process layer for the chain (no timeout, no breaker, fast path), as the memory store it wraps. */
class InProcessFaultStore extends FaultStore {
  get capabilities() {
    return { ...super.capabilities, inProcess: true }
  }
}

/**
 * A FaultStore over a cache store that hands out leases. FaultStore copies its inner store's
 * capabilities (`leases: true`) but does not forward acquireLeases/releaseLeases/leasesHeld, so a
 * chain with `leases` would fail every lease call on it (a TypeError the chain counts as a cache
 * failure: the breaker then keeps the layer skipped); this forwards them, each after a random delay
 * like the store's other calls.
 */
class LeaseFaultStore extends FaultStore {
  #inner
  #random
  #maxMs = 0
  constructor(inner) {
    super(inner)
    this.#inner = inner
  }
  jitter(maxMs, random = Math.random) {
    super.jitter(maxMs, random)
    this.#maxMs = maxMs
    this.#random = random
  }
  async #delay() {
    const ms = this.#maxMs > 0 ? Math.floor(this.#random() * (this.#maxMs + 1)) : 0
    if (ms > 0) await sleep(ms)
  }
  async acquireLeases(model, lookups, ttlMs) {
    await this.#delay()
    return this.#inner.acquireLeases(model, lookups, ttlMs)
  }
  async releaseLeases(model, lookups) {
    await this.#delay()
    return this.#inner.releaseLeases(model, lookups)
  }
  async leasesHeld(model, lookups) {
    await this.#delay()
    return this.#inner.leasesHeld(model, lookups)
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const send = (msg) => process.send?.(msg)
/** ms on CLOCK_MONOTONIC, which every process of this machine shares (libuv's hrtime). */
const clockMs = () => Number(process.hrtime.bigint() / 1000n) / 1000
const MAX_SAMPLES = 8

/** @type {any} */
let config
/** @type {ChainedStore} */
let chain
/** @type {ProcessMemoryStore} */
let memory
/** @type {RedisBus | undefined} */
let bus
/** The chain's layers, unwrapped: a violation is explained by what each of them holds right after it. */
let raw
/** Explanations of violations still being gathered (awaited before the report). */
const probes = []
const closers = []

// Per owned key: log[v] = { deleted } for every version started; acked = last resolved version; started = last started version.
const logs = new Map()
const acked = new Map()
const started = new Map()
// Per key (any): versions this process read.
const seen = new Map()
// Reads of keys other processes own: [id, lookup index in lookupsOf(id), version or -1 for a miss, start ms].
const remoteReads = []
const counts = { ops: 0, lookups: 0, get: 0, batchGet: 0, put: 0, delete: 0, batchPut: 0, batchDelete: 0 }
const violations = { readAfterWrite: 0, corrupt: 0, errors: 0 }
const samples = { readAfterWrite: [], corrupt: [], errors: [] }

function violation(kind, detail) {
  violations[kind]++
  if (samples[kind].length < MAX_SAMPLES) samples[kind].push(detail)
}

const ownerOf = (id) => (id - 1) % config.processes
const actorOf = (id) => Math.floor((id - 1) / config.processes) % config.actors

async function build() {
  const { protections, leases, cache, delays, seed, index, expiry } = config
  const seeds = (n) => rng(childSeed(seed, 100 + index * 10 + n))
  if (protections) {
    bus = new RedisBus({ url: config.redisUrl, channel: config.channel, timeout: 300, heartbeatInterval: 500, maxBackoff: 500 })
    closers.push(() => bus.close())
  }
  memory = new ProcessMemoryStore({
    max: config.memoryMax,
    ...(expiry ?? {}),
    ...(bus === undefined ? {} : { bus }),
    ...(protections ? {} : { tombstoneLifetime: 0 }),
  })
  const cacheOptions = { prefix: config.prefix, timeout: 300, ...(expiry ?? {}), ...(protections ? {} : { tombstoneLifetime: 0 }) }
  let shared
  if (cache === 'memcached') {
    const { MemcacheStore } = await import(`${dist}stores/memcache/index.js`)
    shared = new MemcacheStore({ servers: config.memcachedServers, retryDelay: 500, onError: () => {}, ...cacheOptions })
  } else {
    shared = new RedisStore({ url: config.redisUrl, ...cacheOptions })
  }
  const db = new SqlStore({ url: config.pgUrl }, { tables: { CoherenceItem: config.table }, maxConnections: 4 })
  const layers = [new InProcessFaultStore(memory), new LeaseFaultStore(shared), new FaultStore(db)]
  raw = { memory, cache: shared, db }
  layers[0].jitter(delays.memory, seeds(0))
  layers[1].jitter(delays.cache, seeds(1))
  layers[2].jitter(delays.db, seeds(2))
  chain = new ChainedStore(layers, {
    coherence: protections,
    timeout: config.chainTimeout,
    ...(leases ? { leases: { wait: 300, ttl: 1000 } } : {}),
    ...(expiry === undefined ? {} : { serveStale: true }),
  })
  closers.unshift(() => chain.close())
  for (let id = 1; id <= config.keys; id++) {
    if (ownerOf(id) !== index) continue
    // The parent wrote version 1 of every key to the database before the run.
    logs.set(id, [{ deleted: true }, { deleted: false, resolvedMs: clockMs() }])
    acked.set(id, 1)
    started.set(id, 1)
  }
  if (bus !== undefined) {
    const deadline = Date.now() + 20_000
    while (!memory.coherent) {
      if (Date.now() > deadline) throw new Error(`worker ${index}: the invalidation bus did not come up within 20 s`)
      await sleep(10)
    }
  }
}

/** The versions a lookup may legitimately return for a read of an owned key that began when `from` was acked. */
function validResult(id, lookup, obj, from) {
  const log = logs.get(id)
  const to = started.get(id)
  for (let v = from; v <= to; v++) {
    const state = log[v]
    const answers = !state.deleted && intact(itemOf(id, v, config.index), lookup)
    if (answers ? obj !== undefined && obj.version === v : obj === undefined) return true
  }
  return false
}

function checkRead(lookup, obj, ownedFrom, busUpAtStart, startMs) {
  const id = lookup.id ?? keyOfLookup(lookup)
  if (ownedFrom === undefined && config.recordRemoteReads)
    remoteReads.push([id, lookupIndex(lookup), obj === undefined ? -1 : obj.version, startMs])
  if (obj !== undefined) {
    if (!intact(obj, lookup)) {
      violation('corrupt', { lookup, got: summary(obj) })
      return
    }
    let versions = seen.get(obj.id)
    if (versions === undefined) seen.set(obj.id, (versions = new Set()))
    versions.add(obj.version)
  }
  if (ownedFrom !== undefined && !validResult(id, lookup, obj, ownedFrom)) {
    const log = logs.get(id)
    const detail = {
      lookup,
      got: obj === undefined ? null : obj.version,
      ackedAtStart: ownedFrom,
      ackedAtStartState: log[ownedFrom].deleted ? 'deleted' : 'put',
      startedAtEnd: started.get(id),
      memoryCoherent: `${busUpAtStart}→${memory.coherent}`,
      readStartedMsAfterAck: Math.round(startMs - log[ownedFrom].resolvedMs),
      readTookMs: Math.round(clockMs() - startMs),
    }
    violation('readAfterWrite', detail)
    explain(detail, lookup)
  }
}

/** Adds to a violation's detail what each layer holds for the lookup right after it (read directly, unguarded). */
function explain(detail, lookup) {
  const look = (store) =>
    store.get(CoherenceItem, lookup).then(
      (obj) => (obj === undefined ? null : obj.version),
      (err) => `error: ${err?.message ?? err}`,
    )
  probes.push(
    Promise.all([look(raw.memory), look(raw.cache), look(raw.db)]).then(([memoryLayer, cacheLayer, database]) => {
      detail.right_after = {
        memory: memoryLayer,
        cache: cacheLayer,
        database,
        chainLayers: chain.stats().map((l) => ({ name: l.name, errors: l.errors, pendingRepairs: l.pendingRepairs })),
        cacheServers: raw.cache.stats?.(),
      }
    }),
  )
}

function lookupIndex(lookup) {
  if (lookup.id !== undefined) return 0
  if (lookup.slug !== undefined) return 1
  return 2 + Number(/-e(\d+)@/.exec(lookup.email)[1])
}

function keyOfLookup(lookup) {
  if (lookup.slug !== undefined) return Number(lookup.slug.slice('item-'.length))
  return Number(/^k(\d+)-/.exec(lookup.email)[1])
}

const summary = (obj) => (obj === undefined ? null : { id: obj.id, version: obj.version, email: obj.email, payloadOk: intact(obj, {}) })

function randomLookup(r, id) {
  const kind = Math.floor(r() * 3)
  if (kind === 0) return { id }
  if (kind === 1) return { slug: slugOf(id) }
  return { email: `k${id}-e${Math.floor(r() * EMAILS)}@coherence.test` }
}

async function call(label, fn) {
  try {
    return { ok: true, value: await fn() }
  } catch (err) {
    violation('errors', `${label}: ${err?.stack ?? err}`.slice(0, 600))
    return { ok: false }
  }
}

async function readOne(r, id) {
  const lookup = randomLookup(r, id)
  const from = acked.get(id) // undefined unless this process owns the key
  const up = memory.coherent
  const t = clockMs()
  counts.ops++
  counts.get++
  counts.lookups++
  const res = await call(`get ${JSON.stringify(lookup)}`, () => chain.get(CoherenceItem, lookup))
  if (res.ok) checkRead(lookup, res.value, from, up, t)
}

async function readBatch(r) {
  const n = 2 + Math.floor(r() * 7)
  const lookups = []
  for (let i = 0; i < n; i++) lookups.push(randomLookup(r, 1 + Math.floor(r() * config.keys)))
  await readLookups(lookups)
}

/** One batchGet of `lookups`, checked. */
async function readLookups(lookups) {
  const n = lookups.length
  const ids = lookups.map((l) => l.id ?? keyOfLookup(l))
  const from = ids.map((id) => acked.get(id))
  const up = memory.coherent
  const t = clockMs()
  counts.ops++
  counts.batchGet++
  counts.lookups += n
  const res = await call(`batchGet ${JSON.stringify(lookups)}`, () => chain.batchGet(CoherenceItem, lookups))
  if (!res.ok) return
  if (res.value.length !== n) {
    violation('corrupt', { lookups, got: `${res.value.length} results` })
    return
  }
  lookups.forEach((lookup, i) => {
    checkRead(lookup, res.value[i], from[i], up, t)
  })
}

/** Every lookup of every key (with `foreignOnly`, of every key another process owns), in one batchGet. */
async function readAll(foreignOnly) {
  const lookups = []
  for (let id = 1; id <= config.keys; id++) if (!(foreignOnly && logs.has(id))) lookups.push(...lookupsOf(id))
  await readLookups(lookups)
  return {}
}

async function write(r, mine) {
  const ids = mine.length > 1 && r() < 0.2 ? mine.slice(0, 2) : [mine[Math.floor(r() * mine.length)]]
  const present = ids.every((id) => !logs.get(id)[acked.get(id)].deleted)
  await writeKeys(ids, present && r() < 0.15)
}

/** Writes the next version of each key: a put, or a delete of the object as it was last put. */
async function writeKeys(ids, deleting) {
  const objs = []
  const versions = []
  for (const id of ids) {
    const log = logs.get(id)
    const v = started.get(id) + 1
    if (deleting) {
      // delete the object as it was last put (its keys, including the email of that version)
      let last = acked.get(id)
      while (log[last].deleted) last--
      objs.push(itemOf(id, last, config.index))
    } else {
      objs.push(itemOf(id, v, config.index))
    }
    log[v] = { deleted: deleting, resolvedMs: undefined }
    started.set(id, v)
    versions.push(v)
  }
  counts.ops++
  const op = ids.length > 1 ? (deleting ? 'batchDelete' : 'batchPut') : deleting ? 'delete' : 'put'
  counts[op]++
  const res = await call(`${op} ${ids.join(',')} v${versions.join(',')}`, () =>
    op === 'put' ? chain.put(objs[0]) : op === 'delete' ? chain.delete(objs[0]) : chain[op](objs),
  )
  if (!res.ok) return
  const t = clockMs()
  ids.forEach((id, i) => {
    const v = versions[i]
    logs.get(id)[v].resolvedMs = t
    if (v > acked.get(id)) acked.set(id, v)
  })
}

/** Per actor, its random stream (continued across epochs). */
const actorRandom = []

async function actor(a, ops) {
  actorRandom[a] ??= rng(childSeed(config.seed, 1000 + config.index * 1000 + a))
  const r = actorRandom[a]
  const mine = [...logs.keys()].filter((id) => actorOf(id) === a)
  const owned = [...logs.keys()]
  const { pWrite, pOwnRead, pRead } = config.mix
  for (let i = 0; i < ops; i++) {
    const x = r()
    if (x < pWrite && mine.length > 0) await write(r, mine)
    else if (x < pWrite + pOwnRead && owned.length > 0) await readOne(r, owned[Math.floor(r() * owned.length)])
    else if (x < pWrite + pOwnRead + pRead) await readOne(r, 1 + Math.floor(r() * config.keys))
    else await readBatch(r)
    if (r() < 0.5) await sleep(Math.floor(r() * config.thinkMs))
  }
}

/** One epoch of the workload: `ops` operations per actor. */
async function run(ops) {
  const start = performance.now()
  await Promise.all(Array.from({ length: config.actors }, (_, a) => actor(a, ops)))
  return { elapsedMs: performance.now() - start }
}

/**
 * The final round's writes, made while the parent holds a fault: every owned key is written once more
 * (a put, or now and then a delete) at a random moment within `spreadMs`.
 */
async function finalWrites(spreadMs, epoch) {
  const r = rng(childSeed(config.seed, 5000 + epoch * 100 + config.index))
  await Promise.all(
    [...logs.keys()].map(async (id) => {
      const at = Math.floor(r() * spreadMs)
      const deleting = !logs.get(id)[acked.get(id)].deleted && r() < 0.15
      await sleep(at)
      await writeKeys([id], deleting)
    }),
  )
  return {}
}

function report() {
  const finals = {}
  for (const [id, log] of logs) {
    const a = acked.get(id)
    // the states the database may hold: the last acknowledged write's, or a later (failed) one's
    finals[id] = {
      acked: a,
      ackedDeleted: log[a].deleted,
      started: started.get(id),
      states: log.map((e) => (e.deleted ? 0 : 1)),
      resolvedMs: log.map((e) => e.resolvedMs ?? null),
    }
  }
  return {
    index: config.index,
    counts,
    violations,
    samples,
    finals,
    seen: Object.fromEntries([...seen].map(([id, versions]) => [id, [...versions]])),
    remoteReads,
    stats: chain.stats(),
  }
}

async function inspect() {
  if (bus !== undefined) {
    const deadline = Date.now() + 20_000
    while (!memory.coherent && Date.now() < deadline) await sleep(10)
  }
  const entries = {}
  for (let id = 1; id <= config.keys; id++) {
    const lookups = lookupsOf(id)
    const found = await memory.batchGet(CoherenceItem, lookups)
    entries[id] = found.map((obj, i) => (obj === undefined ? null : intact(obj, lookups[i]) ? obj.version : -1))
  }
  return { index: config.index, coherent: memory.coherent, entries, stats: chain.stats() }
}

process.on('message', (msg) => {
  const reply = (work, type) =>
    work.then(
      (result) => send({ type, ...result }),
      (err) => send({ type: 'failed', error: String(err?.stack ?? err) }),
    )
  switch (msg.type) {
    case 'init':
      config = msg.config
      reply(
        build().then(() => ({})),
        'ready',
      )
      break
    case 'go':
      reply(run(msg.ops), 'done')
      break
    case 'readAll':
      reply(readAll(msg.foreignOnly === true), 'readAllDone')
      break
    case 'finalWrites':
      reply(finalWrites(msg.spreadMs, msg.epoch), 'finalWritesDone')
      break
    case 'report':
      reply(
        Promise.allSettled(probes).then(() => ({ report: report() })),
        'report',
      )
      break
    case 'inspect':
      reply(
        inspect().then((memoryLayer) => ({ memoryLayer })),
        'inspected',
      )
      break
    case 'exit':
      // allSettled never rejects: nothing can be left unhandled here
      void Promise.allSettled(closers.map((close) => close())).finally(() => process.exit(0))
      break
  }
})
process.on('disconnect', () => process.exit(0))
