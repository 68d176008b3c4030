/**
 * vitest reporter (after the default one): one line per distinct skip reason with how many tests it
 * skipped (e.g. `skipped  12 × does not apply: … (capabilities.expires is false)`), so capability skips
 * are counted and explained without a line per test, then a plain closing line
 * `tests: N passed, N failed, N skipped`.
 */
import type { Reporter, TestModule } from 'vitest/node'

export default class SkipSummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const byReason = new Map<string, number>()
    let passed = 0
    let failed = 0
    let skipped = 0
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const result = test.result()
        if (result.state === 'passed') passed++
        else if (result.state === 'failed') failed++
        else if (result.state === 'skipped') {
          skipped++
          const reason = result.note ?? 'no note (describe.runIf/skipIf, e.g. a store not selected by STOCKPYLE_STORES)'
          byReason.set(reason, (byReason.get(reason) ?? 0) + 1)
        }
      }
    }
    const lines = [...byReason].sort((a, b) => b[1] - a[1]).map(([reason, n]) => `  skipped ${String(n).padStart(3)} × ${reason}`)
    console.log(`\n${[...lines, `tests: ${passed} passed, ${failed} failed, ${skipped} skipped`].join('\n')}`)
  }
}
