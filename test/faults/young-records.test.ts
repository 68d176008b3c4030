/**
 * What a store hands out per object (entries, and inside a chain its hits) must stay in V8's young
 * generation however long earlier batches lived: an object literal whose objects mostly outlive a young
 * GC gets its later objects allocated old, and an old entry keeps the young object it points to alive
 * through every young GC until the next full GC (SqlStore next to a chain promoted ~0.5 MB per batch
 * of 1,000 in a third of processes and ran at 0.6x of its floor instead of 0.84x; bench/RESULTS.md,
 * round 11). The child (fixtures/young-records.mjs) runs with --allow-natives-syntax and counts, per
 * store, the entries of a fresh batch allocated old after 300 batches were each kept for 30 more.
 */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'

const fixture = fileURLToPath(new URL('./fixtures/young-records.mjs', import.meta.url))

it('entries of a fresh batch are young in every store and through a chain, after earlier batches were kept long', async () => {
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      process.execPath,
      ['--allow-natives-syntax', fixture],
      { env: { ...process.env, NODE_OPTIONS: '' }, timeout: 60_000 },
      (error, out, stderr) => (error === null ? resolve(out) : reject(new Error(`${error.message}\n${stderr}`))),
    )
  })
  expect(JSON.parse(stdout.trim())).toEqual({
    ProcessMemoryStore: 0,
    'KeyValueStore(MapBackend)': 0,
    SqlStore: 0,
    'ChainedStore (memory emptied)': 0,
  })
}, 90_000)
