/**
 * A read that starts in a scope after a write resolved, while a read of the same key begun before the
 * write is still in flight (single-flight would share it): found by review, such a read joined the
 * older read, returned the copy the write replaced, and its scope kept that copy for the rest of the
 * request — when the write went through another chain over the same AsyncLocalStore, or was made on
 * the store itself, and no other scope was live to have the write noted.
 */
import { describe, expect, it } from 'vitest'
import { AsyncLocalStore, ChainedStore, LoaderStore } from '../../src/index.js'
import { ConformanceUser, makeUser } from '../../src/testing/index.js'

type User = InstanceType<typeof ConformanceUser>

/** Two chains [requestCache, source] over one AsyncLocalStore and one source; `slow`'s next load can be held. */
function twoChains() {
  const requestCache = new AsyncLocalStore()
  const rows = new Map<number, User>([[1, makeUser(1)]])
  const state = { hold: undefined as Promise<void> | undefined, loaded: () => {} }
  const source = (held: boolean) =>
    new LoaderStore({
      model: ConformanceUser,
      load: async (lookups) => {
        const found = lookups.map((l) => {
          const row = rows.get((l as { id: number }).id)
          return row === undefined ? undefined : Object.assign(makeUser(row.id), row)
        })
        if (held && state.hold !== undefined) {
          state.loaded()
          await state.hold
        }
        return found
      },
      save: async (objs) => {
        for (const o of objs) rows.set(o.id, Object.assign(makeUser(o.id), o))
      },
      remove: async (objs) => {
        for (const o of objs) rows.delete(o.id)
      },
    })
  const slow = new ChainedStore([requestCache, source(true)])
  const fast = new ChainedStore([requestCache, source(false)])
  /** Holds the next load through `slow`: `taken` once it has read its rows; `release` lets it answer. */
  const holdNextLoad = () => {
    let release = () => {}
    state.hold = new Promise((resolve) => {
      release = () => {
        state.hold = undefined
        resolve()
      }
    })
    const taken = new Promise<void>((resolve) => {
      state.loaded = resolve
    })
    return { taken, release: () => release() }
  }
  return { requestCache, rows, slow, fast, holdNextLoad }
}

const named = (name: string) => Object.assign(makeUser(1), { name })

describe('AsyncLocalStore: a read that starts after a write resolved, while a read begun before it is in flight', () => {
  type Setup = ReturnType<typeof twoChains>
  /** [what, where the older read runs, the write, the name the source then holds (undefined: deleted)] */
  const cases: [string, 'outside' | 'in the writing scope', (s: Setup) => Promise<unknown>, string | undefined][] = [
    ['a put through the other chain in another scope', 'outside', (s) => s.requestCache.run(() => s.fast.put(named('v2'))), 'v2'],
    ['a put through the other chain outside any scope', 'outside', (s) => s.fast.put(named('v2')), 'v2'],
    ['a put through the other chain in the scope of the older read', 'in the writing scope', (s) => s.fast.put(named('v2')), 'v2'],
    ['a delete through the other chain', 'outside', (s) => s.requestCache.run(() => s.fast.delete(named('v1'))), undefined],
    [
      'a put on the store itself (the app wrote the row)',
      'outside',
      (s) => {
        s.rows.set(1, named('v2'))
        return s.requestCache.run(() => s.requestCache.put(named('v2')))
      },
      'v2',
    ],
    [
      'an invalidation on the store itself',
      'outside',
      (s) => {
        s.rows.set(1, named('v2'))
        return s.requestCache.batchInvalidate(ConformanceUser, [{ id: 1 }])
      },
      'v2',
    ],
    [
      "the other chain's clearCaches() (the app changed the source)",
      'outside',
      (s) => {
        s.rows.set(1, named('v2'))
        return s.fast.clearCaches()
      },
      'v2',
    ],
  ]

  for (const [what, where, write, expected] of cases) {
    it(`${what}: the later read gets the new state and its scope keeps no older copy (older read ${where})`, async () => {
      const s = twoChains()
      const { slow, fast, requestCache, holdNextLoad } = s
      const { taken, release } = holdNextLoad()
      let older: Promise<User | undefined> | undefined
      if (where === 'outside') {
        older = slow.get(ConformanceUser, { id: 1 })
        await taken
        await write(s)
      } else {
        await requestCache.run(async () => {
          older = slow.get(ConformanceUser, { id: 1 })
          await taken
          await write(s)
        })
      }
      const seen = await requestCache.run(async () => {
        const first = slow.get(ConformanceUser, { id: 1 }) // starts after the write resolved
        await new Promise((r) => setImmediate(r))
        release()
        return {
          first: (await first)?.name,
          held: (await requestCache.get(ConformanceUser, { id: 1 }))?.name,
          again: (await slow.get(ConformanceUser, { id: 1 }))?.name,
          other: (await fast.get(ConformanceUser, { id: 1 }))?.name,
        }
      })
      expect((await older)?.name).toBe(makeUser(1).name) // it began before the write
      expect(seen).toEqual({ first: expected, held: expected, again: expected, other: expected })
    })
  }
})
