import type { ConformanceCase, ConformanceOptions } from './case.js'
import { basicCases } from './cases/basic.js'
import { batchCases } from './cases/batch.js'
import { clearCases } from './cases/clear.js'
import { deleteByKeyCases } from './cases/delete-by-key.js'
import { errorCases } from './cases/errors.js'
import { fidelityCases } from './cases/fidelity.js'
import { keyCases } from './cases/keys.js'
import { lifecycleCases } from './cases/lifecycle.js'
import { lifetimeCases } from './cases/lifetime.js'
import { polymorphicCases } from './cases/polymorphic.js'
import { ManualClock } from './manual-clock.js'

export type { CaseContext, ConformanceCase, ConformanceOptions, ConformanceStoreOptions } from './case.js'

let prefixCounter = 0

/**
 * Registers the conformance suite: one test per behaviour of the store API (README "The store API",
 * docs/writing-a-store.md), asserting with `node:assert/strict`. A case a store's capabilities exclude
 * is skipped through the runner's test context with its reason (vitest and node:test count it as
 * skipped), or, with runners without one, prints the reason and passes without asserting; a case
 * listed in `skip` is not registered and its reason is printed.
 */
export function runStoreConformance(options: ConformanceOptions): void {
  const skipped = new Map((options.skip ?? []).map((s) => [s.test, s.reason]))
  const groups: [string, readonly ConformanceCase[]][] = [
    ['basic', basicCases],
    ['keys', keyCases],
    ['batch', batchCases],
    ['delete by key', deleteByKeyCases],
    ['clear', clearCases],
    ['fidelity', fidelityCases],
    ['errors', errorCases],
    ['lifetime', lifetimeCases],
    ['polymorphic', polymorphicCases],
    ['lifecycle', lifecycleCases],
  ]
  options.describe(`conformance: ${options.name}`, () => {
    for (const [group, cases] of groups) {
      options.describe(group, () => {
        for (const c of cases) {
          const reason = skipped.get(c.name)
          if (reason !== undefined) {
            console.info(`[stockpyle conformance] ${options.name}: skipping "${c.name}": ${reason}`)
            continue
          }
          // a rest parameter keeps the function's length 0: jest and mocha read a declared parameter as a `done` callback
          options.test(c.name, (...context: unknown[]) => runCase(options, c, context[0]))
        }
      })
    }
  })
}

async function runCase(options: ConformanceOptions, c: ConformanceCase, context: unknown): Promise<void> {
  const clock = new ManualClock()
  const store = await options.createStore({ ...c.options, clock, prefix: `cf${++prefixCounter}x${process.pid}` })
  try {
    const why = c.unless?.(store.capabilities)
    if (why !== undefined) {
      const skip = (context as { skip?: unknown } | undefined)?.skip
      if (typeof skip === 'function') skip.call(context, `does not apply: ${why}`)
      else console.info(`[stockpyle conformance] ${options.name}: "${c.name}" does not apply: ${why}`)
      return
    }
    const body = () => c.body(store, { clock })
    if (options.scope !== undefined) await options.scope(store, body)
    else await body()
  } finally {
    await store.close()
  }
}
