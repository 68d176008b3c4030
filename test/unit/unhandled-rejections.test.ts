/**
 * Property: whatever interleaving of get / batchGet / put / delete / invalidate and of layer failures
 * and recoveries, no promise the chain creates is left without a handler. Listens on `process` for
 * `unhandledRejection` around each run (the child-process tests in test/faults check the same under
 * Node's default crash-on-unhandled mode).
 */
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ChainedStore, ProcessMemoryStore, type Store } from '../../src/index.js'
import { ConformanceUser, FaultStore, makeUser } from '../../src/testing/index.js'

const unhandled: unknown[] = []
const listener = (reason: unknown): void => {
  unhandled.push(reason)
}

type Layer = 'l1' | 'l2' | 'db'
type Command =
  | { kind: 'get' | 'put' | 'delete' | 'invalidate'; id: number }
  | { kind: 'batchGet' | 'batchPut'; ids: number[] }
  | { kind: 'fail' | 'recover'; layer: Layer; ops: ('get' | 'put' | 'delete')[] }

const id = fc.integer({ min: 1, max: 4 })
const layer = fc.constantFrom<Layer>('l1', 'l2', 'db')
const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ kind: fc.constantFrom('get', 'put', 'delete', 'invalidate' as const), id }),
  fc.record({ kind: fc.constantFrom('batchGet', 'batchPut' as const), ids: fc.array(id, { minLength: 1, maxLength: 4 }) }),
  fc.record({
    kind: fc.constantFrom('fail', 'recover' as const),
    layer,
    ops: fc.subarray(['get', 'put', 'delete'] as ('get' | 'put' | 'delete')[], { minLength: 1 }),
  }),
)

function run(chain: ChainedStore, faults: Record<Layer, FaultStore>, c: Command): Promise<unknown> {
  switch (c.kind) {
    case 'get':
      return chain.get(ConformanceUser, { id: c.id })
    case 'put':
      return chain.put(makeUser(c.id))
    case 'delete':
      return chain.delete(makeUser(c.id))
    case 'invalidate':
      return chain.batchInvalidate(ConformanceUser, [{ id: c.id }])
    case 'batchGet':
      return chain.batchGet(
        ConformanceUser,
        c.ids.map((i) => ({ id: i })),
      )
    case 'batchPut':
      return chain.batchPut(c.ids.map(makeUser))
    case 'fail':
      faults[c.layer].fail(...c.ops)
      return Promise.resolve()
    case 'recover':
      faults[c.layer].recover()
      return Promise.resolve()
  }
}

describe('no unhandled rejection in any interleaving of calls and failures', () => {
  beforeAll(() => {
    process.on('unhandledRejection', listener)
  })
  afterAll(() => {
    process.off('unhandledRejection', listener)
  })

  for (const shape of ['[l1, l2, db]', '[l1, db]'] as const) {
    it(`${shape}, with and without stale reads, leases off`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.array(command, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 6 }),
          fc.boolean(),
          fc.integer({ min: 0, max: 2 ** 31 - 1 }),
          async (rounds, serveStale, seed) => {
            let state = seed
            const random = () => {
              state = (state * 1_103_515_245 + 12_345) % 2 ** 31
              return state / 2 ** 31
            }
            const faults: Record<Layer, FaultStore> = {
              l1: new FaultStore(new ProcessMemoryStore({ name: 'l1' })),
              l2: new FaultStore(new ProcessMemoryStore({ name: 'l2' })),
              db: new FaultStore(new ProcessMemoryStore({ name: 'db' })),
            }
            for (const f of Object.values(faults)) f.jitter(2, random)
            const layers: Store[] = shape === '[l1, db]' ? [faults.l1, faults.db] : [faults.l1, faults.l2, faults.db]
            const chain = new ChainedStore(layers, { serveStale, breaker: { failures: 2, halfOpenAfter: 5 } })
            unhandled.length = 0
            for (const round of rounds) {
              // each round's calls run concurrently; every caller handles its own outcome
              await Promise.allSettled(round.map((c) => run(chain, faults, c)))
            }
            for (const f of Object.values(faults)) f.recover()
            // let fire-and-forget work (repairs, releases) run to its end
            for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 2))
            await chain.close()
            await new Promise((r) => setTimeout(r, 5))
            expect(unhandled).toEqual([])
          },
        ),
        { numRuns: 60 },
      )
    })
  }
})
