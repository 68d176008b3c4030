import { fail } from 'node:assert/strict'
import type { StoreCapabilities } from '../index.js'
import type { ConformanceCase, ConformanceOptions, ConformanceTarget } from './case.js'
import { backfillCases } from './cases/backfill.js'
import { basicCases } from './cases/basic.js'
import { batchCases } from './cases/batch.js'
import { clearCases } from './cases/clear.js'
import { corruptEntryCases } from './cases/corrupt-entries.js'
import { deleteByKeyCases } from './cases/delete-by-key.js'
import { errorCases } from './cases/errors.js'
import { expiryCapCases } from './cases/expiry-caps.js'
import { fidelityCases } from './cases/fidelity.js'
import { invalidationCases } from './cases/invalidation.js'
import { keyCases } from './cases/keys.js'
import { leaseCases } from './cases/leases.js'
import { lifecycleCases } from './cases/lifecycle.js'
import { lifetimeCases } from './cases/lifetime.js'
import { polymorphicCases } from './cases/polymorphic.js'
import { refusedWriteCases } from './cases/refused-writes.js'
import { staleReadCases } from './cases/stale-reads.js'
import { updateCases } from './cases/updates.js'
import { ManualClock } from './manual-clock.js'

export type { CaseContext, ConformanceCase, ConformanceOptions, ConformanceStoreOptions, ConformanceTarget } from './case.js'

/** Every case of the suite, by group, in the order they run. */
export const conformanceGroups: readonly (readonly [string, readonly ConformanceCase[]])[] = [
  ['basic', basicCases],
  ['keys', keyCases],
  ['batch', batchCases],
  ['reads around updates', updateCases],
  ['delete by key', deleteByKeyCases],
  ['clear', clearCases],
  ['fidelity', fidelityCases],
  ['errors', errorCases],
  ['corrupt entries', corruptEntryCases],
  ['lifetime', lifetimeCases],
  ['polymorphic', polymorphicCases],
  ['lifecycle', lifecycleCases],
  ['refused writes', refusedWriteCases],
  // What a chain relies on in its layers (each case runs only where the store declares it).
  ['entries: expiry caps', expiryCapCases],
  ['entries: add-only backfills', backfillCases],
  ['entries: stale reads', staleReadCases],
  ['invalidation', invalidationCases],
  ['leases', leaseCases],
]

let prefixCounter = 0

/**
 * Refuses a `skip` entry that names no case (it would skip nothing, silently): the name must be a
 * case's whole name. @throws RangeError naming it, and the cases whose names start with it or contain it.
 */
function checkSkipNames(names: Iterable<string>): void {
  const all = conformanceGroups.flatMap(([, cases]) => cases.map((c) => c.name))
  for (const name of names) {
    if (all.includes(name)) continue
    const near = all.filter((n) => typeof name === 'string' && name !== '' && n.includes(name))
    throw new RangeError(
      `runStoreConformance: skip names no case: ${JSON.stringify(name)} (a case's whole name is needed)${near.length === 0 ? '' : `; did you mean ${near.map((n) => JSON.stringify(n)).join(' or ')}?`}`,
    )
  }
}

/**
 * Registers the conformance suite: one test per behaviour of the store API (README "The store API",
 * docs/writing-a-store.md), asserting with `node:assert/strict`. A case a store's capabilities exclude
 * is skipped through the runner's test context with its reason (vitest and node:test count it as
 * skipped), or, with runners without one, prints the reason and passes without asserting; a case
 * listed in `skip` is not registered and its reason is printed.
 * @throws RangeError for a `skip` entry that names no case.
 */
export function runStoreConformance(options: ConformanceOptions): void {
  const skipped = new Map((options.skip ?? []).map((s) => [s.test, s.reason]))
  checkSkipNames(skipped.keys())
  options.describe(`conformance: ${options.name}`, () => {
    for (const [group, cases] of conformanceGroups) {
      const run = cases.filter((c) => {
        const reason = skipped.get(c.name)
        if (reason !== undefined) console.info(`[stockpyle conformance] ${options.name}: skipping "${c.name}": ${reason}`)
        return reason === undefined
      })
      // A group whose every case is skipped registers nothing (runners reject an empty describe).
      if (run.length === 0) continue
      options.describe(group, () => {
        for (const c of run) {
          // a rest parameter keeps the function's length 0: jest and mocha read a declared parameter as a `done` callback
          options.test(c.name, async (...context: unknown[]) => {
            await runConformanceCase(options, c, context[0])
          })
        }
      })
    }
  })
}

/**
 * A cache store given `lifetime` must honour it (every cache store accepts `lifetime`): one that
 * declares `expires: false` would have every case about expiry skipped while it keeps objects forever.
 * Only an authoritative store (it owns the data) may keep objects until deleted.
 * @throws AssertionError naming the store and what to do.
 */
function assertHonoursLifetime(target: ConformanceTarget, c: ConformanceCase, caps: StoreCapabilities): void {
  if (c.options?.lifetime === undefined || caps.authoritative || caps.expires) return
  fail(
    `${target.name}: the store was created with \`lifetime\` but declares capabilities.expires false: every cache store honours \`lifetime\` (seconds, a Date or a callback; docs/writing-a-store.md): expire entries and declare expires: true, or declare authoritative: true if the store owns the data`,
  )
}

/**
 * Runs one case against a fresh store of `target` (on a new {@link ManualClock}, with a unique prefix)
 * and closes the store. Resolves `'passed'`, or `'not applicable'` when the store's capabilities exclude
 * the case (reported through `context.skip(note)` when the runner's test context has it, else
 * printed); rejects with the case's assertion error when the store breaks the contract — also, for a
 * case that passes `lifetime`, when a store that is not authoritative declares `expires: false`. For
 * running a case on its own, e.g. to show that it catches a broken store.
 */
export async function runConformanceCase(
  target: ConformanceTarget,
  c: ConformanceCase,
  context?: unknown,
): Promise<'passed' | 'not applicable'> {
  const clock = new ManualClock()
  const store = await target.createStore({ ...c.options, clock, prefix: `cf${++prefixCounter}x${process.pid}` })
  try {
    assertHonoursLifetime(target, c, store.capabilities)
    const why = c.unless?.(store.capabilities, store)
    if (why !== undefined) {
      const skip = (context as { skip?: unknown } | undefined)?.skip
      if (typeof skip === 'function') skip.call(context, `does not apply: ${why}`)
      else console.info(`[stockpyle conformance] ${target.name}: "${c.name}" does not apply: ${why}`)
      return 'not applicable'
    }
    const body = () => c.body(store, { clock })
    if (target.scope !== undefined) await target.scope(store, body)
    else await body()
    return 'passed'
  } finally {
    await store.close()
  }
}
