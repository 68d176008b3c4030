import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import KeyvPostgres from '@keyv/postgres'
import KeyvSqlite from '@keyv/sqlite'
import { Cluster, Redis } from 'ioredis'
import Keyv, { type KeyvStoreAdapter } from 'keyv'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { isStockpyleError, StoreUnavailableError } from '../../src/core/errors.js'
import { AsyncLocalStore, ChainedStore, KeyValueStore, ProcessMemoryStore } from '../../src/index.js'
import { KeyvStore } from '../../src/stores/keyv/index.js'
import { MemcacheStore } from '../../src/stores/memcache/index.js'
import { RedisStore } from '../../src/stores/redis/index.js'
import { prefixPattern, type ScanEvent, unlinkByPrefix } from '../../src/stores/redis/redis-clear.js'
import { redisSlot } from '../../src/stores/redis/redis-slot.js'
import { ConformanceUser, MapBackend, makeUser } from '../../src/testing/index.js'
import {
  freePort,
  type MemcachedServers,
  type RedisCluster,
  requireBinaries,
  selectedStores,
  startMemcached,
  startRedisCluster,
} from '../harness/servers.js'

const stores = selectedStores()
const execFileAsync = promisify(execFile)
let prefixes = 0
const prefix = (): string => `clr${process.pid}x${++prefixes}`
const users = (from: number, count: number): ConformanceUser[] => Array.from({ length: count }, (_, i) => makeUser(from + i))
const unsupported = (err: unknown): boolean => isStockpyleError(err, 'E_UNSUPPORTED')

/** Every key matching `pattern` on a node, by cursor (the test's own check, independent of the code under test). */
async function scanAll(node: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, page] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = next
    keys.push(...page)
  } while (cursor !== '0')
  return keys
}

describe('clear() of in-process stores', () => {
  it('ProcessMemoryStore empties at once, including aliases; the store works afterwards', async () => {
    const store = new ProcessMemoryStore()
    const all = users(1, 50)
    await store.batchPut(all)
    const cleared = store.clear()
    expect(store.size).toBe(0)
    await cleared
    expect(await store.get(ConformanceUser, { email: (all[3] as ConformanceUser).email })).toBeUndefined()
    await store.put(all[0] as ConformanceUser)
    expect(await store.get(ConformanceUser, { id: 1 })).toEqual(all[0])
  })

  it('AsyncLocalStore clears every live scope: nested, enclosing, concurrent, and from outside any', async () => {
    const store = new AsyncLocalStore()
    await store.run(async () => {
      await store.put(makeUser(1))
      await store.run(async () => {
        await store.put(makeUser(2))
        await store.clear()
        expect(await store.get(ConformanceUser, { id: 2 })).toBeUndefined()
      })
      // the enclosing scope's copy went too: a chain's clearCaches() leaves no copy in any request
      expect(await store.get(ConformanceUser, { id: 1 })).toBeUndefined()
    })
    let cleared = () => {}
    const isCleared = new Promise<void>((resolve) => {
      cleared = resolve
    })
    let held = () => {}
    const isHeld = new Promise<void>((resolve) => {
      held = resolve
    })
    const request = store.run(async () => {
      await store.put(makeUser(3))
      held()
      await isCleared
      return store.get(ConformanceUser, { id: 3 })
    })
    await isHeld
    await store.clear() // outside a scope
    cleared()
    expect(await request).toBeUndefined()
  })

  it('KeyValueStore over a backend without clear(prefix) refuses with E_UNSUPPORTED and keeps its data', async () => {
    const backend = new MapBackend()
    const noClear = {
      getMany: backend.getMany.bind(backend),
      setMany: backend.setMany.bind(backend),
      deleteMany: backend.deleteMany.bind(backend),
      close: backend.close.bind(backend),
    }
    const store = new KeyValueStore(noClear)
    await store.put(makeUser(1))
    await expect(store.clear()).rejects.toSatisfy(unsupported)
    expect(await store.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1))
  })

  it('KeyValueStore over MapBackend removes its prefix and nothing else', async () => {
    const backend = new MapBackend()
    const a = new KeyValueStore(backend, { prefix: 'a' })
    const ab = new KeyValueStore(backend, { prefix: 'ab' })
    await a.batchPut(users(1, 10))
    await ab.batchPut(users(1, 10))
    const before = backend.size
    await a.clear()
    expect(backend.size).toBe(before / 2)
    expect(await a.get(ConformanceUser, { id: 1 })).toBeUndefined()
    expect(await ab.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1))
  })
})

describe('prefixPattern', () => {
  it('escapes glob characters so the pattern matches the literal prefix only', () => {
    expect(prefixPattern('app:')).toBe('app:*')
    expect(prefixPattern('a*b?[c]\\:')).toBe('a\\*b\\?\\[c\\]\\\\:*')
  })
})

describe.runIf(stores.has('redis'))('RedisStore.clear() on a Redis server', () => {
  let raw: Redis
  beforeAll(() => {
    raw = new Redis(inject('redis').url)
  })
  afterAll(async () => {
    await raw.quit()
  })

  it('removes every key of its prefix in bounded batches (1,200 objects) and leaves another prefix and foreign keys alone', async () => {
    const mine = prefix()
    const other = `${mine}x` // shares the first characters: must survive
    const store = new RedisStore({ url: inject('redis').url, prefix: mine, timeout: 10_000 })
    const neighbour = new RedisStore({ url: inject('redis').url, prefix: other, timeout: 10_000 })
    try {
      await store.batchPut(users(1, 1200))
      await store.acquireLeases(ConformanceUser, [{ id: 5000 }], 60_000)
      await neighbour.batchPut(users(1, 20))
      await raw.set(mine, 'no colon: not under the prefix')
      expect((await scanAll(raw, `${mine}:*`)).length).toBe(1200 * 3 + 1)
      const monitor = await raw.duplicate()
      // Other test files share the server: look at the commands that name this prefix, and at any flush.
      const commands: string[][] = []
      await monitor.monitor().then((m) => m.on('monitor', (_t: string, args: string[]) => commands.push(args.map(String))))
      await store.clear()
      await monitor.disconnect()
      expect(await scanAll(raw, `${mine}:*`)).toEqual([])
      expect(await raw.get(mine)).toBe('no colon: not under the prefix')
      expect((await scanAll(raw, `${other}:*`)).length).toBe(20 * 3)
      expect(await neighbour.get(ConformanceUser, { email: makeUser(7).email })).toEqual(makeUser(7))
      expect(await store.get(ConformanceUser, { id: 7 })).toBeUndefined()
      const named = (name: string) => commands.filter((c) => c[0]?.toLowerCase() === name)
      // (the test's own scanAll uses COUNT 1000 and may still be seen by the monitor)
      const scans = named('scan').filter((c) => c.includes(`${mine}:*`) && c.includes('500'))
      expect(scans.length).toBeGreaterThan(1) // a cursor walked in pages of COUNT 500, not one call
      expect(
        named('unlink')
          .filter((c) => c[1]?.startsWith(`${mine}:`))
          .every((c) => c.length - 1 <= 500),
      ).toBe(true)
      expect(named('unlink').some((c) => c.slice(1).every((k) => k.startsWith(`${mine}:`)))).toBe(true)
      expect(named('keys').filter((c) => c[1]?.startsWith(mine))).toEqual([])
      expect([...named('flushdb'), ...named('flushall')]).toEqual([])
      await store.put(makeUser(7))
      expect(await store.get(ConformanceUser, { email: makeUser(7).email })).toEqual(makeUser(7))
    } finally {
      await raw.del(mine)
      await neighbour.clear()
      await store.clear()
      await store.close()
      await neighbour.close()
    }
  })

  it('a command refused during the clear (here UNLINK, by an ACL) rejects with a stockpyle error naming the store, the reply as its cause', async () => {
    const user = `noclear${process.pid}`
    await raw.call('ACL', 'SETUSER', user, 'on', '>pw', '~*', '&*', '+@all', '-unlink')
    const store = new RedisStore({
      url: inject('redis').url,
      username: user,
      password: 'pw',
      prefix: `noclear-${process.pid}`,
      timeout: 10_000,
    })
    try {
      await store.batchPut([makeUser(1), makeUser(2)])
      const err = await store.clear().catch((e: unknown) => e)
      expect(isStockpyleError(err)).toBe(true)
      expect((err as Error).message).toMatch(/^redis\(127\.0\.0\.1:\d+\) store clear/)
      expect(String((err as Error).cause)).toMatch(/NOPERM/)
      expect(await store.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1))
    } finally {
      await store.close()
      await raw.call('ACL', 'DELUSER', user)
    }
  })

  it('refuses with E_UNSUPPORTED when the store has no prefix, and says so in capabilities: a chain refuses clearCaches() before clearing anything (review: it cleared the other layers first)', async () => {
    const store = new RedisStore({ url: inject('redis').url, prefix: '' })
    const memory = new ProcessMemoryStore()
    const chain = new ChainedStore([memory, store, new ProcessMemoryStore({ name: 'database' })])
    try {
      expect(store.capabilities.clearable).toBe(false)
      await expect(store.clear()).rejects.toSatisfy(unsupported)
      await expect(store.clear()).rejects.toThrow(/it has no prefix, and removing every key of its backend is refused/)
      await memory.put(makeUser(1))
      await expect(chain.clearCaches()).rejects.toThrow(/cache layer 1 .*capabilities\.clearable is false/)
      expect(await memory.get(ConformanceUser, { id: 1 })).toBeDefined()
    } finally {
      await chain.close()
    }
  })
})

describe.runIf(stores.has('redis-cluster'))('RedisStore.clear() on a Redis Cluster (every master)', () => {
  it('removes its prefix from every master and leaves another prefix alone', async () => {
    const nodes = inject('redisCluster')
    const mine = prefix()
    const other = `${mine}y`
    const store = new RedisStore({ cluster: nodes, prefix: mine, timeout: 10_000 })
    const neighbour = new RedisStore({ cluster: nodes, prefix: other, timeout: 10_000 })
    const cluster = new Cluster(nodes)
    try {
      await store.batchPut(users(1, 600))
      await neighbour.batchPut(users(1, 30))
      const masters = cluster.nodes('master')
      expect(masters.length).toBe(3)
      const before = await Promise.all(masters.map((m) => scanAll(m, `${mine}:*`)))
      expect(before.every((keys) => keys.length > 0)).toBe(true)
      expect(before.flat().length).toBe(600 * 3)
      await store.clear()
      const after = await Promise.all(masters.map((m) => scanAll(m, `${mine}:*`)))
      expect(after.flat()).toEqual([])
      const survived = await Promise.all(masters.map((m) => scanAll(m, `${other}:*`)))
      expect(survived.flat().length).toBe(30 * 3)
      expect(await neighbour.get(ConformanceUser, { id: 3 })).toEqual(makeUser(3))
      expect(await store.get(ConformanceUser, { id: 3 })).toBeUndefined()
    } finally {
      await neighbour.clear()
      await store.close()
      await neighbour.close()
      await cluster.quit()
    }
  })

  it('a store whose first call is clear() connects first and clears every master (it resolved at once and removed nothing: its client knew no master yet)', async () => {
    const nodes = inject('redisCluster')
    const mine = prefix()
    const writer = new RedisStore({ cluster: nodes, prefix: mine, timeout: 10_000 })
    const store = new RedisStore({ cluster: nodes, prefix: mine, timeout: 10_000 })
    try {
      await writer.batchPut(users(1, 100))
      await store.clear()
      expect(
        await writer.batchGet(
          ConformanceUser,
          users(1, 100).map((u) => ({ id: u.id })),
        ),
      ).toEqual(users(1, 100).map(() => undefined))
    } finally {
      await store.close()
      await writer.close()
    }
  })
})

describe.runIf(stores.has('redis-cluster'))('RedisStore.clear() on a Redis Cluster while slots move (a private cluster)', () => {
  let cluster: RedisCluster
  let admins: Redis[]
  let ids: string[]
  let client: Cluster
  beforeAll(async () => {
    cluster = await startRedisCluster(3)
    admins = cluster.nodes.map((n) => new Redis({ host: n.host, port: n.port, maxRetriesPerRequest: 0, lazyConnect: true }))
    for (const a of admins) a.on('error', () => {})
    await Promise.all(admins.map((a) => a.connect()))
    ids = await Promise.all(admins.map((a) => a.cluster('MYID') as Promise<string>))
    client = new Cluster(cluster.nodes)
  }, 60_000)
  afterAll(async () => {
    await client?.quit()
    for (const a of admins ?? []) a.disconnect()
    await cluster?.stop()
  })

  const address = (i: number): string => `${cluster.nodes[i]?.host}:${cluster.nodes[i]?.port}`
  /** Index of the master whose own view says it serves `slot`. */
  const owner = async (slot: number): Promise<number> => {
    for (let i = 0; i < admins.length; i++) {
      const self = ((await (admins[i] as Redis).cluster('NODES')) as string).split('\n').find((line) => line.includes('myself')) ?? ''
      for (const range of self.split(' ').slice(8)) {
        if (range.startsWith('[')) continue
        const [lo, hi] = range.split('-').map(Number)
        if (slot >= (lo as number) && slot <= (hi ?? lo)!) return i
      }
    }
    throw new Error(`no master serves slot ${slot}`)
  }
  /** Every key of `pattern` on every master (the test's own check). */
  const left = async (pattern: string): Promise<string[]> => (await Promise.all(admins.map((a) => scanAll(a, pattern)))).flat().sort()
  /** The first step of a reshard of `slot`: the target imports it, the source migrates it. */
  const startMigration = async (slot: number, from: number, to: number): Promise<void> => {
    await admins[to]?.cluster('SETSLOT', slot, 'IMPORTING', ids[from] as string)
    await admins[from]?.cluster('SETSLOT', slot, 'MIGRATING', ids[to] as string)
  }
  /** Moves the keys of `slot` still on `from` to `to` (MIGRATE, as `redis-cli --cluster reshard` does). */
  const migrateKeys = async (slot: number, from: number, to: number): Promise<void> => {
    for (;;) {
      const keys = (await admins[from]?.cluster('GETKEYSINSLOT', slot, 100)) as string[]
      if (keys.length === 0) return
      const { host, port } = cluster.nodes[to] as { host: string; port: number }
      await admins[from]?.call('MIGRATE', host, String(port), '', '0', '5000', 'REPLACE', 'KEYS', ...keys)
    }
  }
  /** The last step: every master says `to` serves `slot`. */
  const finishMigration = async (slot: number, from: number, to: number): Promise<void> => {
    await migrateKeys(slot, from, to)
    for (const i of [to, from, ...admins.keys()]) await admins[i]?.cluster('SETSLOT', slot, 'NODE', ids[to] as string)
  }
  /** `count` keys under `p` in one hash slot (one hash tag), and `others` in slots all over. */
  const writeKeys = async (p: string, count: number, others: number): Promise<{ slot: number; inSlot: string[] }> => {
    const inSlot = Array.from({ length: count }, (_, i) => `${p}:{${p}t}:${i}`)
    const spread = Array.from({ length: others }, (_, i) => `${p}:o${i}`)
    await Promise.all([...inSlot, ...spread].map((key) => client.set(key, 'before the clear')))
    return { slot: redisSlot(inSlot[0] as string), inSlot }
  }
  const direct = <T>(work: () => Promise<T>): Promise<T> => work()

  it('a slot moved (all its keys) from one master to another after the target was scanned and before the source was: no key is left (review: 1–3 records of ~150 clears stayed readable)', async () => {
    const p = prefix()
    const { slot } = await writeKeys(p, 20, 200)
    const from = await owner(slot)
    const to = (from + 1) % 3
    let targetScanned = (): void => {}
    const scanned = new Promise<void>((resolve) => {
      targetScanned = resolve
    })
    const sweeps: ScanEvent[] = []
    const removed = await unlinkByPrefix(client, `${p}:`, {
      owner: 'test',
      step: direct,
      onScan: async (event) => {
        sweeps.push(event)
        const { node, pass, phase } = event
        if (pass !== 1) return
        if (node === address(to) && phase === 'end') {
          await startMigration(slot, from, to)
          await finishMigration(slot, from, to)
          targetScanned()
        }
        if (node === address(from) && phase === 'start') await scanned
      },
    })
    expect(await left(`${p}:*`)).toEqual([])
    expect(removed).toBe(220)
    // the slot that moved during the pass was swept on its new master (with the master's other slots:
    // its epoch grew when it took the slot, and a slot that left it and came back would look the same)
    const swept = sweeps.filter((e) => e.pass === 2 && e.phase === 'start')
    expect(swept).toContainEqual({ node: address(to), pass: 2, phase: 'start', slot })
    expect(swept.filter((e) => e.node !== address(to))).toEqual([])
  })

  it('a slot being migrated: keys MIGRATEd after the target was scanned and before the source was are not left (the layout is the same before and after the pass)', async () => {
    const p = prefix()
    const { slot } = await writeKeys(p, 20, 200)
    const from = await owner(slot)
    const to = (from + 2) % 3
    await startMigration(slot, from, to)
    try {
      let targetScanned = (): void => {}
      const scanned = new Promise<void>((resolve) => {
        targetScanned = resolve
      })
      const sweeps: ScanEvent[] = []
      await unlinkByPrefix(client, `${p}:`, {
        owner: 'test',
        step: direct,
        onScan: async (event) => {
          sweeps.push(event)
          const { node, pass, phase } = event
          if (pass !== 1) return
          if (node === address(to) && phase === 'end') {
            await migrateKeys(slot, from, to)
            targetScanned()
          }
          if (node === address(from) && phase === 'start') await scanned
        },
      })
      expect(await left(`${p}:*`)).toEqual([])
      // the slot being migrated was swept on its source, then on its target
      expect(sweeps.filter((e) => e.pass === 2 && e.phase === 'start')).toEqual([
        { node: address(from), pass: 2, phase: 'start', slot },
        { node: address(to), pass: 2, phase: 'start', slot },
      ])
    } finally {
      await finishMigration(slot, from, to)
    }
  })

  it('a slot whose keys a migration split between two masters: clear() follows the redirections (no MOVED/ASK) and leaves nothing', async () => {
    const p = prefix()
    const store = new RedisStore({ cluster: cluster.nodes, prefix: p, timeout: 5000 })
    await store.get(ConformanceUser, { id: 1 }) // connected: its client knows the masters
    const { slot, inSlot } = await writeKeys(p, 20, 200)
    const from = await owner(slot)
    const to = (from + 1) % 3
    await startMigration(slot, from, to)
    try {
      const { host, port } = cluster.nodes[to] as { host: string; port: number }
      await admins[from]?.call('MIGRATE', host, String(port), '', '0', '5000', 'KEYS', ...inSlot.slice(0, 10))
      expect(await admins[to]?.cluster('COUNTKEYSINSLOT', slot)).toBe(10)
      await store.clear()
      expect(await left(`${p}:*`)).toEqual([])
    } finally {
      await finishMigration(slot, from, to)
      await store.close()
    }
  })

  it('a command a master refuses during the clear (UNLINK, by an ACL) rejects naming the master, the reply as the cause', async () => {
    const p = prefix()
    const user = `noclear${process.pid}`
    await Promise.all(admins.map((a) => a.call('ACL', 'SETUSER', user, 'on', '>pw', '~*', '&*', '+@all', '-unlink')))
    const store = new RedisStore({ cluster: cluster.nodes, username: user, password: 'pw', prefix: p, timeout: 5000 })
    try {
      await store.get(ConformanceUser, { id: 1 }) // connected: its client knows the masters
      await writeKeys(p, 1, 50)
      const err = await store.clear().catch((e: unknown) => e)
      expect(err).toBeInstanceOf(StoreUnavailableError)
      expect((err as Error).message).toMatch(/^redis-cluster\(.*\) store clear on master 127\.0\.0\.1:\d+ failed: NOPERM/)
      expect(String((err as Error).cause)).toMatch(/NOPERM/)
    } finally {
      await store.close()
      await Promise.all(admins.map((a) => a.call('ACL', 'DELUSER', user)))
      await unlinkByPrefix(client, `${p}:`, { owner: 'test', step: direct })
    }
  })

  it('a cluster whose layout changes during every pass: rejects after the passes allowed, saying it kept resharding (never resolves while keys may remain)', async () => {
    const p = prefix()
    const { slot } = await writeKeys(p, 1, 50)
    // a slot whose state the hook toggles at the end of each pass, as a reshard's next slot would
    const toggled = (slot + 1) % 16384
    const at = await owner(toggled)
    try {
      const err = await unlinkByPrefix(client, `${p}:`, {
        owner: 'redis-cluster(test)',
        step: direct,
        passes: 3,
        onScan: async ({ node, pass, phase }) => {
          if (phase !== 'end' || node !== address(at)) return
          const state = pass % 2 === 1 ? ['MIGRATING', ids[(at + 1) % 3] as string] : ['STABLE']
          await admins[at]?.call('CLUSTER', 'SETSLOT', String(toggled), ...state)
        },
      }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(StoreUnavailableError)
      expect((err as Error).message).toMatch(
        /^redis-cluster\(test\) store clear: the cluster kept resharding: the slot layout changed during each of 3 passes over its masters; keys of the prefix may remain/,
      )
    } finally {
      await admins[at]?.cluster('SETSLOT', toggled, 'STABLE')
      await unlinkByPrefix(client, `${p}:`, { owner: 'test', step: direct })
    }
  })

  it('RedisStore.clear() in a loop while redis-cli reshards 300 slots: each clear leaves nothing readable or rejects saying the cluster kept resharding, never a raw MOVED/ASK', async () => {
    const p = prefix()
    const store = new RedisStore({ cluster: cluster.nodes, prefix: p, lifetime: 600, timeout: 5000 })
    const all = users(1, 300)
    const cli = requireBinaries('redis-cli')['redis-cli']
    const reshard = execFileAsync(
      cli,
      [
        '--cluster',
        'reshard',
        address(0),
        '--cluster-from',
        ids[1] as string,
        '--cluster-to',
        ids[2] as string,
        '--cluster-slots',
        '300',
        '--cluster-yes',
      ],
      { timeout: 60_000 },
    )
    let running = true
    const done = reshard.finally(() => {
      running = false
    })
    const outcomes: string[] = []
    try {
      while (running) {
        await store.batchPut(all)
        const err = await store.clear().then(
          () => undefined,
          (e: unknown) => e,
        )
        if (err === undefined) {
          const found = (
            await store.batchGet(
              ConformanceUser,
              all.map((u) => ({ id: u.id })),
            )
          ).filter(Boolean).length
          outcomes.push(found === 0 ? 'cleared' : `${found} left`)
        } else {
          expect(err).toBeInstanceOf(StoreUnavailableError)
          expect((err as Error).message).not.toMatch(/MOVED|ASK /)
          outcomes.push(/kept resharding/.test((err as Error).message) ? 'kept resharding' : (err as Error).message)
        }
      }
      await done
      expect(outcomes.filter((o) => o !== 'cleared' && o !== 'kept resharding')).toEqual([])
      expect(outcomes).toContain('cleared')
    } finally {
      await done.catch(() => {})
      await store.clear().catch(() => {})
      await store.close()
    }
  }, 90_000)
})

describe('KeyvStore.clear()', () => {
  it('an iterable adapter (Map): removes its prefix in the namespace, keeps another prefix and keys outside the namespace', async () => {
    const map = new Map<string, unknown>()
    const keyv = new Keyv({ store: map, namespace: 'app' })
    const store = new KeyvStore({ keyv, prefix: 'p1' })
    const neighbour = new KeyvStore({ keyv, prefix: 'p1x' })
    await store.batchPut(users(1, 700))
    await neighbour.batchPut(users(1, 5))
    // (Keyv's iterator deserializes every value of the Map, so these are Keyv-serialized too)
    const foreign = JSON.stringify({ value: 'foreign' })
    map.set('other:p1:ConformanceUser|id=n1', foreign)
    map.set('p1:ConformanceUser|id=n1', foreign)
    expect(map.size).toBe(700 * 3 + 5 * 3 + 2)
    await store.clear()
    expect(map.size).toBe(5 * 3 + 2)
    expect(map.get('other:p1:ConformanceUser|id=n1')).toBe(foreign)
    expect(map.get('p1:ConformanceUser|id=n1')).toBe(foreign)
    expect(await store.get(ConformanceUser, { id: 1 })).toBeUndefined()
    expect(await neighbour.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1))
  })

  /** A Keyv adapter over a Map that cannot list its keys. */
  function opaqueAdapter(): KeyvStoreAdapter & { data: Map<string, unknown>; cleared: number } {
    const data = new Map<string, unknown>()
    const adapter = {
      opts: {},
      namespace: undefined as string | undefined,
      data,
      cleared: 0,
      get: async (key: string) => data.get(key),
      set: async (key: string, value: unknown) => {
        data.set(key, value)
        return true
      },
      delete: async (key: string) => data.delete(key),
      clear: async () => {
        adapter.cleared++
        data.clear()
      },
      on: () => adapter,
    }
    return adapter as unknown as KeyvStoreAdapter & { data: Map<string, unknown>; cleared: number }
  }

  it('an adapter that cannot list keys: refused with E_UNSUPPORTED unless ownsNamespace, then keyv.clear()', async () => {
    const adapter = opaqueAdapter()
    const keyv = new Keyv({ store: adapter, namespace: 'app' })
    expect(keyv.iterator).toBeUndefined()
    const store = new KeyvStore({ keyv, prefix: 'q' })
    await store.put(makeUser(1))
    await expect(store.clear()).rejects.toSatisfy(unsupported)
    expect(await store.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1))
    const owner = new KeyvStore({ keyv, prefix: 'q', ownsNamespace: true })
    await owner.clear()
    expect(adapter.cleared).toBe(1)
    expect(await store.get(ConformanceUser, { id: 1 })).toBeUndefined()
  })

  it('declares capabilities.clearable only when clear() can work: a chain refuses clearCaches() before clearing any layer', async () => {
    const adapter = opaqueAdapter()
    const keyv = new Keyv({ store: adapter, namespace: 'app' })
    const opaque = new KeyvStore({ keyv, prefix: 'c' })
    expect(opaque.capabilities.clearable).toBe(false)
    expect(new KeyvStore({ keyv, prefix: 'c', ownsNamespace: true }).capabilities.clearable).toBe(true)
    expect(new KeyvStore({ keyv: new Keyv() }).capabilities.clearable).toBe(true)
    const memory = new ProcessMemoryStore()
    const chain = new ChainedStore([memory, opaque, new ProcessMemoryStore({ name: 'db' })])
    await chain.put(makeUser(1))
    await expect(chain.clearCaches()).rejects.toSatisfy(unsupported)
    expect(await memory.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1)) // nothing was cleared
    expect(await opaque.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1))
    await chain.close()
  })

  it('concurrent clears share one error listener per emitter (no MaxListenersExceededWarning), removed when the last ends', async () => {
    const adapter = new KeyvSqlite('sqlite://:memory:')
    const keyv = new Keyv(adapter, { namespace: 'app' })
    const store = new KeyvStore({ keyv, prefix: 'p', timeout: 10_000 })
    await store.batchPut(users(1, 50))
    const emitter = adapter as unknown as { listenerCount(event: string): number }
    const before = emitter.listenerCount('error')
    const warnings: string[] = []
    const onWarning = (w: Error) => warnings.push(w.name)
    process.on('warning', onWarning)
    try {
      const clears = Array.from({ length: 20 }, () => store.clear())
      expect(emitter.listenerCount('error')).toBeLessThanOrEqual(before + 1)
      await Promise.all(clears)
      await new Promise((r) => setImmediate(r))
      expect(warnings).not.toContain('MaxListenersExceededWarning')
      expect(emitter.listenerCount('error')).toBe(before)
    } finally {
      process.off('warning', onWarning)
      await store.close()
      await keyv.disconnect()
    }
  })
  it.runIf(stores.has('sqlite'))(
    '@keyv/sqlite (pages by LIMIT/OFFSET): every key of the prefix goes, however many, and nothing else',
    async () => {
      const keyv = new Keyv(new KeyvSqlite('sqlite://:memory:'), { namespace: 'app' })
      const store = new KeyvStore({ keyv, prefix: 'p', timeout: 10_000 })
      const neighbour = new KeyvStore({ keyv, prefix: 'q', timeout: 10_000 })
      const all = users(1, 1200)
      for (let i = 0; i < all.length; i += 200) await store.batchPut(all.slice(i, i + 200))
      await neighbour.batchPut(users(1, 5))
      await store.clear()
      const byId = await store.batchGet(
        ConformanceUser,
        all.map((u) => ({ id: u.id })),
      )
      const byEmail = await store.batchGet(
        ConformanceUser,
        all.map((u) => ({ email: u.email })),
      )
      expect(byId.filter(Boolean).length + byEmail.filter(Boolean).length).toBe(0)
      let left = 0
      for await (const [key] of (keyv.iterator as unknown as () => AsyncGenerator<[string, unknown]>)()) if (key.startsWith('p:')) left++
      expect(left).toBe(0)
      expect((await neighbour.batchGet(ConformanceUser, [{ id: 1 }, { id: 5 }])).map((u) => u?.id)).toEqual([1, 5])
      await store.close()
      await keyv.disconnect()
    },
  )

  it.runIf(stores.has('postgres'))(
    '@keyv/postgres with its server unreachable: clear() rejects with StoreUnavailableError (its iterator only emits the error)',
    async () => {
      const keyv = new Keyv(new KeyvPostgres({ uri: `postgresql://postgres@127.0.0.1:${await freePort()}/postgres`, table: 'keyv_gone' }))
      const store = new KeyvStore({ keyv, timeout: 5000 })
      const failure = await store.clear().then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(isStockpyleError(failure, 'E_STORE_UNAVAILABLE')).toBe(true)
      expect((failure as Error).message).toMatch(/^keyv\(keyv\) store clear failed: .*ECONNREFUSED/)
      const chain = new ChainedStore([new ProcessMemoryStore(), store, new ProcessMemoryStore({ name: 'db' })])
      await expect(chain.clearCaches()).rejects.toSatisfy((e: unknown) => isStockpyleError(e, 'E_STORE_UNAVAILABLE'))
      await chain.close()
      await keyv.disconnect()
    },
  )

  it('without a prefix: refused with E_UNSUPPORTED and clearable false (every key of the namespace would go), unless ownsNamespace: then keyv.clear() (review: the app’s own keys and other stores’ went)', async () => {
    const keyv = new Keyv({ store: new Map(), namespace: 'app' })
    await keyv.set('session:1', 'the app’s own')
    const neighbour = new KeyvStore({ keyv, prefix: 'other' })
    await neighbour.put(makeUser(2))
    const store = new KeyvStore({ keyv, prefix: '' })
    await store.put(makeUser(1))
    expect(store.capabilities.clearable).toBe(false)
    await expect(store.clear()).rejects.toSatisfy(unsupported)
    await expect(store.clear()).rejects.toThrow(/without a prefix: that would remove every key of the Keyv namespace.*ownsNamespace: true/)
    expect(await keyv.get('session:1')).toBe('the app’s own')
    expect(await neighbour.get(ConformanceUser, { id: 2 })).toEqual(makeUser(2))
    expect(await store.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1))
    const owner = new KeyvStore({ keyv, prefix: '', ownsNamespace: true })
    expect(owner.capabilities.clearable).toBe(true)
    await owner.clear()
    expect(await owner.get(ConformanceUser, { id: 1 })).toBeUndefined()
  })

  it.runIf(stores.has('redis'))(
    '@keyv/redis without a prefix: refused, nothing removed; with ownsNamespace, keyv.clear() empties the namespace and nothing outside it',
    async () => {
      const { default: KeyvRedis } = await import('@keyv/redis')
      const namespace = prefix()
      const keyv = new Keyv(new KeyvRedis(inject('redis').url), { namespace })
      const outside = new Keyv(new KeyvRedis(inject('redis').url), { namespace: `${namespace}y` })
      const store = new KeyvStore({ keyv, prefix: '' })
      const neighbour = new KeyvStore({ keyv, prefix: 'other' })
      try {
        await keyv.set('session:1', 'the app’s own')
        await outside.set('k', 'outside the namespace')
        await store.batchPut(users(1, 20))
        await neighbour.put(makeUser(1))
        expect(store.capabilities.clearable).toBe(false)
        await expect(store.clear()).rejects.toSatisfy(unsupported)
        expect(await keyv.get('session:1')).toBe('the app’s own')
        expect(await neighbour.get(ConformanceUser, { id: 1 })).toEqual(makeUser(1))
        expect(await store.get(ConformanceUser, { id: 20 })).toEqual(makeUser(20))
        const owner = new KeyvStore({ keyv, prefix: '', ownsNamespace: true })
        expect(owner.capabilities.clearable).toBe(true)
        await owner.clear()
        expect(await store.get(ConformanceUser, { id: 20 })).toBeUndefined()
        expect(await keyv.get('session:1')).toBeUndefined()
        expect(await outside.get('k')).toBe('outside the namespace')
      } finally {
        await outside.clear()
        await keyv.disconnect()
        await outside.disconnect()
      }
    },
  )

  it('rejects a non-boolean ownsNamespace synchronously', () => {
    expect(() => new KeyvStore({ keyv: new Keyv(), ownsNamespace: 'yes' as never })).toThrow(/`ownsNamespace`/)
  })
})

describe.runIf(stores.has('memcached'))('MemcacheStore.clear()', () => {
  let own: MemcachedServers
  beforeAll(async () => {
    own = await startMemcached(2)
  })
  afterAll(async () => {
    await own?.stop()
  })

  it('without ownsServers: refused with E_UNSUPPORTED, nothing removed (shared harness servers, two prefixes)', async () => {
    const servers = inject('memcachedServers')
    const store = new MemcacheStore({ servers, prefix: prefix() })
    const neighbour = new MemcacheStore({ servers, prefix: prefix() })
    try {
      await store.batchPut(users(1, 30))
      await neighbour.batchPut(users(1, 30))
      await expect(store.clear()).rejects.toSatisfy(unsupported)
      await expect(store.clear()).rejects.toThrow(/ownsServers/)
      expect(await store.batchGet(ConformanceUser, [{ id: 1 }, { id: 30 }])).toEqual([makeUser(1), makeUser(30)])
      expect(await neighbour.get(ConformanceUser, { id: 2 })).toEqual(makeUser(2))
    } finally {
      await store.batchDelete(users(1, 30))
      await neighbour.batchDelete(users(1, 30))
      await store.close()
      await neighbour.close()
    }
  })

  it('with ownsServers: flush_all on every server of the pool (servers started for this test)', async () => {
    const store = new MemcacheStore({ servers: own.servers, prefix: prefix(), ownsServers: true })
    const other = new MemcacheStore({ servers: own.servers, prefix: prefix() })
    try {
      const all = users(1, 200)
      await store.batchPut(all)
      await other.batchPut(all)
      const owners = new Set(all.map((u) => store.backend.serverFor(`${u.id}`)))
      expect(owners.size).toBe(2)
      await store.clear()
      expect(
        (
          await store.batchGet(
            ConformanceUser,
            all.map((u) => ({ id: u.id })),
          )
        ).every((u) => u === undefined),
      ).toBe(true)
      // flush_all empties the servers: what another store kept there goes too (that is what ownsServers says).
      expect(await other.get(ConformanceUser, { id: 1 })).toBeUndefined()
    } finally {
      await store.close()
      await other.close()
    }
  })

  it('rejects a non-boolean ownsServers synchronously', () => {
    expect(() => new MemcacheStore({ servers: ['127.0.0.1:1'], ownsServers: 1 as never })).toThrow(/`ownsServers`/)
  })
})

describe.runIf(stores.has('redis-cluster'))(
  'RedisStore.clear() on a Redis Cluster during a failover (a private cluster, one master with a replica)',
  () => {
    let cluster: RedisCluster
    let client: Cluster
    /** The master with a replica and its replica, in either role. */
    let pair: Redis[]
    beforeAll(async () => {
      cluster = await startRedisCluster(3, 1)
      const nodes = [cluster.nodes[0], cluster.replicas[0]] as { host: string; port: number }[]
      pair = nodes.map((n) => new Redis({ host: n.host, port: n.port, maxRetriesPerRequest: 0, lazyConnect: true }))
      for (const a of pair) a.on('error', () => {})
      await Promise.all(pair.map((a) => a.connect()))
      client = new Cluster(cluster.nodes)
    }, 90_000)
    afterAll(async () => {
      await client?.quit()
      for (const a of pair ?? []) a.disconnect()
      await cluster?.stop()
    })

    const addressOf = (node: Redis): string => `${node.options.host}:${node.options.port}`
    const role = async (node: Redis): Promise<string> => ((await node.role()) as string[])[0] as string
    /** The pair's current master and replica. */
    const roles = async (): Promise<{ master: Redis; replica: Redis }> => {
      const [a, b] = pair as [Redis, Redis]
      return (await role(a)) === 'master' ? { master: a, replica: b } : { master: b, replica: a }
    }
    /** `CLUSTER FAILOVER` on the pair's replica; resolves once the two swapped roles and the new replica is in sync. */
    const failover = async (): Promise<void> => {
      const { master, replica } = await roles()
      await replica.cluster('FAILOVER')
      const deadline = Date.now() + 30_000
      for (;;) {
        const info = (await master.info('replication')) as string
        if ((await role(replica)) === 'master' && /master_link_status:up/.test(info)) return
        if (Date.now() > deadline) throw new Error('the failover did not complete within 30 s')
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    }
    /** Every key of `pattern` on every node that is a master now (the test's own check). */
    const left = async (pattern: string): Promise<string[]> => {
      const nodes = [...cluster.nodes, ...cluster.replicas].map((n) => new Redis({ host: n.host, port: n.port, lazyConnect: true }))
      try {
        const keys: string[] = []
        for (const node of nodes) if ((await role(node)) === 'master') keys.push(...(await scanAll(node, pattern)))
        return keys.sort()
      } finally {
        for (const node of nodes) node.disconnect()
      }
    }
    const direct = <T>(work: () => Promise<T>): Promise<T> => work()

    it('a failover (CLUSTER FAILOVER on the replica) while the master is being scanned: clear() makes another pass through the current masters and leaves nothing (review: rejected with a bare "Connection is closed." after removing part of the keys)', async () => {
      const p = prefix()
      const keys = Array.from({ length: 3000 }, (_, i) => `${p}:k${i}`)
      for (let i = 0; i < keys.length; i += 500) await Promise.all(keys.slice(i, i + 500).map((key) => client.set(key, 'before the clear')))
      const { master } = await roles()
      const events: ScanEvent[] = []
      await unlinkByPrefix(client, `${p}:`, {
        owner: 'redis-cluster(test)',
        step: direct,
        onScan: async (event) => {
          events.push(event)
          if (event.pass !== 1 || event.phase !== 'start' || event.node !== addressOf(master)) return
          await failover()
          // what ioredis does when its slot refresh finds the node's role changed (CLUSTER SLOTS omits a
          // replica not yet in sync): it closes the node's connection and makes another
          client
            .nodes('all')
            .find((node) => addressOf(node) === addressOf(master))
            ?.disconnect()
        },
      })
      expect(await left(`${p}:*`)).toEqual([])
      // it made another pass rather than rejecting (which nodes that pass reaches depends on when ioredis
      // has refreshed its slot map: the demoted master, now a replica, answers with the same keys, and
      // their UNLINKs are redirected to the promoted one; CI at 0408e81 saw the old map once)
      expect(events.some((e) => e.pass === 2 && e.phase === 'start')).toBe(true)
    }, 60_000)

    it('a master whose connection is replaced in every pass allowed: rejects saying a master was demoted or its connection replaced (failover?), the failure as cause', async () => {
      const p = prefix()
      await Promise.all(Array.from({ length: 200 }, (_, i) => client.set(`${p}:k${i}`, 'before the clear')))
      const { master } = await roles()
      const err = await unlinkByPrefix(client, `${p}:`, {
        owner: 'redis-cluster(test)',
        step: direct,
        passes: 3,
        onScan: (event) => {
          if (event.phase === 'start' && event.node === addressOf(master)) {
            client
              .nodes('all')
              .find((node) => addressOf(node) === addressOf(master))
              ?.disconnect()
          }
        },
      }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(StoreUnavailableError)
      expect((err as Error).message).toMatch(
        /^redis-cluster\(test\) store clear: a master was demoted or its connection replaced during clear \(failover\?\): master\(s\) 127\.0\.0\.1:\d+ left the client's masters \(Connection is closed\.\) in pass 3, the last allowed; keys of the prefix may remain \(clear again\)$/,
      )
      expect(String((err as Error).cause)).toMatch(/Connection is closed/)
      await unlinkByPrefix(client, `${p}:`, { owner: 'test', step: direct })
      expect(await left(`${p}:*`)).toEqual([])
    }, 60_000)

    it('RedisStore.clear() of 20,000 objects with CLUSTER FAILOVER sent on the replica 20 ms after it began: resolves and leaves nothing readable', async () => {
      const p = prefix()
      const store = new RedisStore({ cluster: cluster.nodes, prefix: p, timeout: 5000 })
      try {
        for (let i = 0; i < 20_000; i += 2000) await store.batchPut(users(i + 1, 2000))
        const { replica } = await roles()
        const sent = new Promise((resolve) => setTimeout(resolve, 20)).then(() => replica.cluster('FAILOVER'))
        await store.clear()
        await sent
        await failoverDone()
        expect(await left(`${p}:*`)).toEqual([])
      } finally {
        await store.close()
      }
    }, 60_000)
    /** Resolves once the pair has one master and an in-sync replica. */
    const failoverDone = async (): Promise<void> => {
      const deadline = Date.now() + 30_000
      for (;;) {
        const { master, replica } = await roles()
        if ((await role(replica)) === 'slave' && /master_link_status:up/.test((await replica.info('replication')) as string) && master)
          return
        if (Date.now() > deadline) throw new Error('the failover did not complete within 30 s')
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    }
  },
)
