/**
 * The coherence harness (issue 5, item 6; docs/coherence.md): a randomized multi-process workload over
 * ChainedStore([ProcessMemoryStore({ bus: RedisBus }), RedisStore, SqlStore(PostgreSQL)]) with random
 * delays in every layer and real server faults, checked for stale caches, reads older than the
 * reader's own acknowledged writes, errors and lost writes. Run with protections off, the same
 * harness must report violations.
 *
 * Reproduce a run: `COHERENCE_SEED=<seed printed> npm run build && npx vitest run test/coherence/coherence.test.ts`.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { type MemcachedServers, type RedisServer, selectedStores, startMemcached, startRedis } from '../harness/servers.js'
import { type HarnessResult, harnessSeed, runHarness } from './harness.js'

const stores = selectedStores()
const seed = harnessSeed()

function print(result: HarnessResult): void {
  console.log(result.summary)
  console.log(`  faults: ${result.faults.log.join('; ') || 'none'}`)
  console.log(
    `  layers (summed over processes): ${result.layerStats
      .map(
        (l) =>
          `${l.name}: hits=${l.hits} errors=${l.errors} skipped=${l.skipped} backfills=${l.backfills} pendingRepairs=${l.pendingRepairs}`,
      )
      .join(' | ')}`,
  )
  for (const [kind, examples] of Object.entries(result.samples)) {
    if (examples.length > 0) console.log(`  ${kind} e.g.: ${examples.map((e) => JSON.stringify(e)).join('\n    ')}`)
  }
}

describe.runIf(stores.has('redis') && stores.has('postgres'))('coherence harness (multi-process, real server faults)', () => {
  let redis: RedisServer
  beforeAll(async () => {
    console.log(`coherence harness seed: ${seed} (reproduce with COHERENCE_SEED=${seed})`)
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis?.stop()
  })

  it('protections on: every cache layer agrees with the database, reads see their own writes, no errors, no lost writes', async () => {
    const result = await runHarness({
      protections: true,
      seed,
      cache: 'redis',
      redis,
      postgresUrl: inject('postgresUrl'),
      log: (line) => console.log(line),
    })
    print(result)
    expect(result.operations).toBeGreaterThanOrEqual(10_000)
    expect(result.options.actors).toBeGreaterThanOrEqual(50)
    expect(result.faults.kills).toBeGreaterThanOrEqual(1)
    expect(result.faults.freezes).toBeGreaterThanOrEqual(1)
    expect(result.violations).toEqual({ staleCache: 0, readAfterWrite: 0, errors: 0, lostWrite: 0, corrupt: 0, phantom: 0 })
  }, 300_000)

  it('protections on, copies expiring (lifetime 4 s, grace 60 s, serveStale): expired copies refilled under concurrent writes, no violations', async () => {
    const result = await runHarness({
      protections: true,
      seed,
      cache: 'redis',
      redis,
      postgresUrl: inject('postgresUrl'),
      expiry: { lifetime: 4, grace: 60 },
      log: (line) => console.log(line),
    })
    print(result)
    expect(result.operations).toBeGreaterThanOrEqual(10_000)
    expect(result.faults.kills + result.faults.freezes).toBeGreaterThanOrEqual(2)
    expect(result.violations).toEqual({ staleCache: 0, readAfterWrite: 0, errors: 0, lostWrite: 0, corrupt: 0, phantom: 0 })
  }, 300_000)

  it('protections off (coherence: false, tombstoneLifetime: 0, no bus): the same harness reports violations', async () => {
    const result = await runHarness({
      protections: false,
      seed,
      cache: 'redis',
      redis,
      postgresUrl: inject('postgresUrl'),
      log: (line) => console.log(line),
    })
    print(result)
    expect(result.operations).toBeGreaterThanOrEqual(10_000)
    expect(result.violations.staleCache + result.violations.readAfterWrite).toBeGreaterThan(0)
    // what the protections do not govern stays clean
    expect(result.violations.errors + result.violations.lostWrite + result.violations.corrupt + result.violations.phantom).toBe(0)
  }, 300_000)

  describe.runIf(stores.has('memcached'))('over a pool of three memcached servers', () => {
    let memcached: MemcachedServers
    beforeAll(async () => {
      memcached = await startMemcached(3)
    })
    afterAll(async () => {
      await memcached?.stop()
    })

    it('protections on, memcached layer (one node of three killed or frozen at a time; the bus on Redis): no violations', async () => {
      const result = await runHarness({
        protections: true,
        seed,
        cache: 'memcached',
        redis,
        memcached,
        postgresUrl: inject('postgresUrl'),
        log: (line) => console.log(line),
      })
      print(result)
      expect(result.operations).toBeGreaterThanOrEqual(10_000)
      expect(result.faults.kills + result.faults.freezes).toBeGreaterThanOrEqual(2)
      expect(result.violations).toEqual({ staleCache: 0, readAfterWrite: 0, errors: 0, lostWrite: 0, corrupt: 0, phantom: 0 })
    }, 300_000)
  })
})
