/**
 * A failing layer — the database above all — must never crash the host process. Each scenario runs in a
 * child Node process with the default unhandled-rejection mode (`throw`): one promise the library leaves
 * without a handler ends the child with exit code 1. The child (fixtures/failing-layers.mjs) makes the
 * authoritative layer fail reads, then writes, then everything, then makes the cache layers fail, while
 * callers run concurrent get / batchGet / put / delete of the same and of different keys.
 */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, inject, it } from 'vitest'
import { selectedStores } from '../harness/servers.js'

const fixture = fileURLToPath(new URL('./fixtures/failing-layers.mjs', import.meta.url))

interface Phase {
  phase: string
  fulfilled: number
  rejected: Record<string, number>
}

function runChild(env: Record<string, string>): Promise<{ code: number | null; phases: Map<string, Phase>; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [fixture],
      { env: { ...process.env, NODE_OPTIONS: '', ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const phases = new Map<string, Phase>()
        for (const line of stdout.split('\n')) {
          if (line.trim() === '') continue
          const phase = JSON.parse(line) as Phase
          phases.set(phase.phase, phase)
        }
        resolve({ code: error === null ? 0 : ((error as { code?: number }).code ?? null), phases, stderr })
      },
    )
  })
}

/** The codes a caller may see while the database fails: its own failure, as the chain passes it on. */
const DATABASE_FAILURES = new Set(['ECONNREFUSED', 'E_STORE_UNAVAILABLE', 'E_STORE_CLOSED'])

function expectDocumentedOutcomes(result: Awaited<ReturnType<typeof runChild>>, options: { cacheErrorsThrow?: boolean } = {}): void {
  expect(result.stderr, 'the child wrote to stderr (an unhandled rejection?)').toBe('')
  expect(result.code, 'the child process exited non-zero: a promise was left without a handler').toBe(0)
  expect(result.phases.get('done')).toBeDefined()
  const phase = (name: string): Phase => result.phases.get(name) as Phase
  // while the database is up, callers see no error — unless they asked for cache errors
  for (const name of ['healthy', 'healed']) expect(phase(name)).toMatchObject({ fulfilled: 13, rejected: {} })
  if (options.cacheErrorsThrow !== true) expect(phase('caches fail, db up')).toMatchObject({ fulfilled: 13, rejected: {} })
  else expect(Object.keys(phase('caches fail, db up').rejected)).toEqual(['E_STORE_UNAVAILABLE'])
  // while it fails, the callers that reached it get its failure — never anything else
  for (const name of ['db reads fail', 'db writes fail', 'db fails everything', 'caches and db fail', 'caches recover, db fails']) {
    const p = phase(name)
    expect(
      Object.values(p.rejected).reduce((a, b) => a + b, 0),
      `${name}: some callers must see the failure`,
    ).toBeGreaterThan(0)
    for (const code of Object.keys(p.rejected)) {
      if (options.cacheErrorsThrow === true && code === 'E_STORE_UNAVAILABLE') continue
      expect(DATABASE_FAILURES, `${name}: unexpected rejection ${code}`).toContain(code)
    }
  }
  expect(Object.keys(phase('db closed').rejected)).toContain('E_STORE_CLOSED')
}

interface HookOutcome {
  hook: string
  onErrorCalls?: number
  warnings: { code: string; message: string }[]
  [observation: string]: unknown
}

/**
 * Runs fixtures/throwing-hooks.mjs: `HOOK` names the callbacks that fail, `SYNC=1` makes them throw
 * instead of returning a promise that rejects. Warnings are not printed (`--no-warnings`): the child
 * reports the ones it received.
 */
function runHooks(env: Record<string, string>): Promise<{ code: number | null; outcome: HookOutcome | undefined; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--no-warnings', fileURLToPath(new URL('./fixtures/throwing-hooks.mjs', import.meta.url))],
      { env: { ...process.env, NODE_OPTIONS: '', ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const line = stdout.split('\n').find((l) => l.startsWith('{'))
        resolve({
          code: error === null ? 0 : ((error as { code?: number }).code ?? null),
          outcome: line === undefined ? undefined : (JSON.parse(line) as HookOutcome),
          stderr,
        })
      },
    )
  })
}

/** The child ended normally, and got exactly one warning with `code` (a callback failing on every call warns once). */
function expectWarnedOnce(result: Awaited<ReturnType<typeof runHooks>>, code: string, mentions: RegExp): HookOutcome {
  expect(result.stderr, 'the child wrote to stderr (an unhandled rejection?)').toBe('')
  expect(result.code, 'the child process exited non-zero: a promise was left without a handler').toBe(0)
  const outcome = result.outcome as HookOutcome
  expect(outcome.warnings.filter((w) => w.code === code)).toEqual([{ code, message: expect.stringMatching(mentions) }])
  return outcome
}

describe('a caller’s callback that throws or rejects never crashes the process, and is warned about once', () => {
  for (const sync of [false, true]) {
    const how = sync ? 'throw' : 'reject (async)'
    const env = sync ? { SYNC: '1' } : {}

    it(`a chain's meter whose instruments ${how}: the calls answer, STOCKPYLE_METER once`, async () => {
      const outcome = expectWarnedOnce(
        await runHooks({ HOOK: 'meter', ...env }),
        'STOCKPYLE_METER',
        /its meter.*(add|record) (threw|rejected)/,
      )
      expect(outcome).toMatchObject({ get: 1, batchGet: [1, null], measured: true })
    })

    it(`a CacheSyncPlugin onError that ${sync ? 'throws' : 'rejects'}: STOCKPYLE_CALLBACK once`, async () => {
      const outcome = expectWarnedOnce(
        await runHooks({ HOOK: 'cache-sync', ...env }),
        'STOCKPYLE_CALLBACK',
        /CacheSyncPlugin.*`onError`.*onError (threw|rejected)/,
      )
      expect(outcome.onErrorCalls).toBe(2)
    })

    if (!sync) {
      it('a CacheSyncPlugin without onError: each invalidation that failed after COMMIT is a STOCKPYLE_CACHE_SYNC warning', async () => {
        const result = await runHooks({ HOOK: 'cache-sync', DEFAULT_ON_ERROR: '1' })
        expect(result.stderr, 'the child wrote to stderr (an unhandled rejection?)').toBe('')
        expect(result.code).toBe(0)
        const warnings = (result.outcome as HookOutcome).warnings
        expect(warnings).toEqual([
          { code: 'STOCKPYLE_CACHE_SYNC', message: expect.stringMatching(/invalidation after COMMIT failed/) },
          { code: 'STOCKPYLE_CACHE_SYNC', message: expect.stringMatching(/invalidation after COMMIT failed/) },
        ])
      })
    }

    describe.runIf(selectedStores().has('memcached'))('over real memcached', () => {
      it(`a MemcacheStore onError that ${sync ? 'throws' : 'rejects'}: reads answer, STOCKPYLE_CALLBACK once`, async () => {
        const servers = JSON.stringify({ memcached: inject('memcachedServers') })
        const outcome = expectWarnedOnce(
          await runHooks({ HOOK: 'memcache', SERVERS: servers, ...env }),
          'STOCKPYLE_CALLBACK',
          /memcache\(.*`onError`.*onError (threw|rejected)/,
        )
        expect(outcome.answered).toBe(20)
        expect(outcome.onErrorCalls).toBeGreaterThanOrEqual(3)
      })
    })

    describe.runIf(selectedStores().has('redis'))('over a real Redis', () => {
      it(`a RedisBus listener and onError that ${sync ? 'throw' : 'reject'}: STOCKPYLE_CALLBACK once`, async () => {
        const servers = JSON.stringify({ redis: inject('redis').url })
        const outcome = expectWarnedOnce(
          await runHooks({ HOOK: 'redis-bus', SERVERS: servers, ...env }),
          'STOCKPYLE_CALLBACK',
          /redis.*`onError`.*onError (threw|rejected)/,
        )
        expect(outcome.onErrorCalls).toBeGreaterThanOrEqual(3) // onUp, then each onInvalidate
      })
    })

    describe.runIf(selectedStores().has('postgres'))('over a real PostgreSQL', () => {
      it(`a PostgresBus listener and onError that ${sync ? 'throw' : 'reject'}: STOCKPYLE_CALLBACK once`, async () => {
        const servers = JSON.stringify({ postgres: inject('postgresUrl') })
        const outcome = expectWarnedOnce(
          await runHooks({ HOOK: 'postgres-bus', SERVERS: servers, ...env }),
          'STOCKPYLE_CALLBACK',
          /postgres.*`onError`.*onError (threw|rejected)/,
        )
        expect(outcome.onErrorCalls).toBeGreaterThanOrEqual(3)
      })

      it(`watchDatabase's onInvalidate and onError that ${sync ? 'throw' : 'reject'}: STOCKPYLE_CALLBACK once`, async () => {
        const servers = JSON.stringify({ postgres: inject('postgresUrl') })
        const outcome = expectWarnedOnce(
          await runHooks({ HOOK: 'watch-database', SERVERS: servers, ...env }),
          'STOCKPYLE_CALLBACK',
          /database-watcher.*`onError`.*onError (threw|rejected)/,
        )
        expect(outcome.onErrorCalls).toBeGreaterThanOrEqual(2)
      })
    })
  }
})

describe('a failing layer never crashes the process (child processes, default unhandled-rejection mode)', () => {
  it('a failing tx write left without await: transaction() rejects with its error, and its own promise does not end the process', async () => {
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [fileURLToPath(new URL('./fixtures/forgotten-await.mjs', import.meta.url))],
        { env: { ...process.env, NODE_OPTIONS: '' }, timeout: 60_000 },
        (error, stdout, stderr) => resolve({ code: error === null ? 0 : ((error as { code?: number }).code ?? null), stdout, stderr }),
      )
    })
    expect(result.stderr, 'the child wrote to stderr (an unhandled rejection?)').toBe('')
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toEqual({ transaction: 'E_KEY_CONFLICT', row: null })
  })

  for (const chain of ['memory+db', 'memory+memory+db', 'memory+faulty-memory+db']) {
    it(`[${chain}] with a custom authoritative store`, async () => {
      expectDocumentedOutcomes(await runChild({ CHAIN: chain }))
    })
  }

  describe.runIf(selectedStores().has('redis'))('over a real Redis and SQLite', () => {
    for (const variant of [{}, { LEASES: '1' }, { ON_CACHE_ERROR: 'throw' }]) {
      it(`[memory, redis, sqlite] ${JSON.stringify(variant)}`, async () => {
        const servers = JSON.stringify({ redis: inject('redis').url })
        expectDocumentedOutcomes(await runChild({ CHAIN: 'memory+redis+sqlite', SERVERS: servers, ...variant }), {
          cacheErrorsThrow: variant.ON_CACHE_ERROR === 'throw',
        })
      })
    }
  })

  describe.runIf(selectedStores().has('memcached'))('over real memcached and SQLite', () => {
    for (const variant of [{}, { LEASES: '1' }]) {
      it(`[memory, memcached×3, sqlite] ${JSON.stringify(variant)}`, async () => {
        const servers = JSON.stringify({ memcached: inject('memcachedServers') })
        expectDocumentedOutcomes(await runChild({ CHAIN: 'memory+memcached+sqlite', SERVERS: servers, ...variant }))
      })
    }
  })
})
