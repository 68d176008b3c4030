import { describe, expect, it } from 'vitest'
import { type BenchCase, measureGroup } from '../../src/cli/bench/runner.js'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** A case that records the index of every call it gets. */
function counting(run: () => Promise<unknown>, maxCalls?: number): { c: BenchCase; calls: number[] } {
  const calls: number[] = []
  const c: BenchCase = {
    row: 'R',
    library: 'x',
    role: 'stockpyle',
    label: 'x',
    maxCalls,
    run: async (i) => {
      calls.push(i)
      await run()
    },
  }
  return { c, calls }
}

describe('the bench runner’s warm-up', () => {
  it('makes at least warmupCalls calls of a fast case before the first round, however short warmupMs is', async () => {
    const { c, calls } = counting(async () => {})
    const [result] = await measureGroup([c], { rounds: 1, roundMs: 1, warmupMs: 0, warmupCalls: 3000, warmupMaxMs: 10_000 })
    expect(result?.rounds).toHaveLength(1)
    expect(calls.length).toBeGreaterThan(3000)
    expect(calls).toEqual(Array.from({ length: calls.length }, (_, i) => i))
  })

  it('stops warming a slow case at warmupMaxMs, short of warmupCalls', async () => {
    const { c, calls } = counting(() => sleep(5))
    const started = performance.now()
    await measureGroup([c], { rounds: 1, roundMs: 1, warmupMs: 0, warmupCalls: 5000, warmupMaxMs: 150 })
    expect(calls.length).toBeLessThan(100)
    expect(performance.now() - started).toBeLessThan(2000)
  })

  it('never warms a case past 15% of its maxCalls (its key pool)', async () => {
    const { c, calls } = counting(async () => {}, 1000)
    await measureGroup([c], { rounds: 2, roundMs: 1, warmupMs: 0, warmupCalls: 5000, warmupMaxMs: 10_000 })
    expect(calls.length).toBeLessThanOrEqual(1000)
    expect(calls.length).toBeGreaterThanOrEqual(150)
  })

  it('runs one untimed round of every contender after the warm-ups, then the timed rounds, within maxCalls', async () => {
    const order: string[] = []
    const make = (library: string, maxCalls?: number): BenchCase => ({
      row: 'R',
      library,
      role: library === 'a' ? 'floor' : 'stockpyle',
      label: library,
      maxCalls,
      run: async () => {
        order.push(library)
      },
    })
    const [a, b] = await measureGroup([make('a'), make('b', 600)], {
      rounds: 3,
      roundMs: 1,
      warmupMs: 0,
      warmupCalls: 50,
      warmupMaxMs: 10_000,
    })
    expect(a?.rounds).toHaveLength(3)
    expect(b?.rounds).toHaveLength(3)
    expect(b?.calls).toBeLessThanOrEqual(600)
    // after each warm-up (a's, then b's), four passes alternate a's calls and b's: the untimed one and three rounds
    const runs = order.filter((x, i) => order[i - 1] !== x)
    expect(runs).toEqual(['a', 'b', 'a', 'b', 'a', 'b', 'a', 'b', 'a', 'b'])
  })
})
