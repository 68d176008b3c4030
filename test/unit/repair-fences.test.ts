import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { KeyValueStore, ProcessMemoryStore, type Store } from '../../src/index.js'
import { ConformanceUser, ManualClock, MapBackend, makeUser } from '../../src/testing/index.js'

const LIFETIME_MS = 1000

/** One step on one key: a delete, a repair of a change made `ago` ms before now, time passing, or a backfill of a copy read `age` ms ago. */
type Step =
  | { readonly kind: 'delete' }
  | { readonly kind: 'repair'; readonly ago: number }
  | { readonly kind: 'advance'; readonly ms: number }
  | { readonly kind: 'backfill'; readonly age: number }

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.constant({ kind: 'delete' as const }),
  fc.record({ kind: fc.constant('repair' as const), ago: fc.integer({ min: 0, max: 3 * LIFETIME_MS }) }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 1500 }) }),
  fc.record({ kind: fc.constant('backfill' as const), age: fc.integer({ min: 0, max: 3 * LIFETIME_MS }) }),
)

const stores: [string, (clock: ManualClock) => Store][] = [
  ['ProcessMemoryStore', (clock) => new ProcessMemoryStore({ clock, tombstoneLifetime: LIFETIME_MS / 1000 })],
  [
    'KeyValueStore(MapBackend)',
    (clock) => new KeyValueStore(new MapBackend(() => clock.now()), { clock, tombstoneLifetime: LIFETIME_MS / 1000 }),
  ],
]

/**
 * Deletes and late repairs (invalidations with `changedAt`, as a chain sends after a failed write) in
 * any order: a copy read before a change is never backfilled while that change's tombstone lifetime
 * runs — whichever came later, the delete or the repair.
 */
describe.each(stores)('%s: deletes and repairs in any order fence every copy read before them', (_name, make) => {
  it('property: no backfill of a copy read before a change lands within the change’s tombstone lifetime', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 30 }), async (steps) => {
        const clock = new ManualClock(1_000_000)
        const store = make(clock)
        await store.put(makeUser(9))
        /** Changes so far: copies read before `at` must stay out until `until`. */
        const fences: { at: number; until: number }[] = []
        for (const s of steps) {
          const now = clock.now()
          if (s.kind === 'delete') {
            await store.delete(makeUser(9))
            fences.push({ at: now, until: now + LIFETIME_MS })
          } else if (s.kind === 'repair') {
            await store.batchInvalidate?.(ConformanceUser, [{ id: 9 }], { changedAt: now - s.ago })
            fences.push({ at: now - s.ago, until: now - s.ago + LIFETIME_MS })
          } else if (s.kind === 'advance') {
            clock.advance(s.ms)
          } else {
            const readAt = now - s.age
            const copy = makeUser(9)
            copy.name = `read at ${readAt}`
            await store.batchPutEntries([{ value: copy, expiresAt: undefined }], { backfill: true })
            const fenced = fences.some((f) => f.at > readAt && now < f.until)
            if (fenced) expect((await store.get(ConformanceUser, { id: 9 }))?.name).not.toBe(copy.name)
          }
        }
        await store.close()
      }),
      { numRuns: 400 },
    )
  })
})
