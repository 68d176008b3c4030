import { defineConfig } from 'vitest/config'

/**
 * Fault tests that assert latencies and database shares while servers die or freeze. They run after
 * everything else, one file at a time: on a 2-core CI machine the other files' load would otherwise
 * be measured as the library's.
 */
const TIMED_FAULTS = [
  'test/faults/node-failures.test.ts',
  'test/faults/memcache-faults.test.ts',
  'test/faults/chain-faults.test.ts',
  'test/faults/recovery-under-load.test.ts',
  'test/faults/event-loop-stall.test.ts',
]

export default defineConfig({
  test: {
    globalSetup: ['test/harness/global-setup.ts'],
    // the default summary, plus one line per skip reason with its count (capability skips of the conformance suite)
    reporters: ['default', './test/harness/skip-summary.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'suite',
          include: ['test/**/*.test.ts'],
          exclude: TIMED_FAULTS,
          typecheck: { enabled: true, include: ['test/**/*.test-d.ts'], tsconfig: './tsconfig.json' },
        },
      },
      {
        extends: true,
        test: { name: 'timed faults', include: TIMED_FAULTS, fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
})
