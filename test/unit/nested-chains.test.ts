import { describe, expect, it } from 'vitest'
import { ChainedStore, LoaderStore, ProcessMemoryStore, type Store, StoreDecorator } from '../../src/index.js'
import { ConformanceUser, ManualClock, makeUser } from '../../src/testing/index.js'

/** outer [memory, inner [memory, source]], the inner chain plain or wrapped in a decorator. */
function nested(wrapped: boolean) {
  const rows = new Map([[1, makeUser(1)]])
  const source = new LoaderStore({
    model: ConformanceUser,
    load: async (lookups) => lookups.map((l) => rows.get((l as { id: number }).id)),
  })
  const innerMemory = new ProcessMemoryStore({ name: 'inner-memory' })
  const inner = new ChainedStore([innerMemory, source], { name: 'inner' })
  const outer = new ChainedStore([new ProcessMemoryStore({ name: 'outer-memory' }), wrapped ? new StoreDecorator(inner) : (inner as Store)])
  return { rows, innerMemory, outer }
}

describe('a chain as the last layer of another', () => {
  for (const wrapped of [false, true]) {
    const how = wrapped ? 'wrapped in a decorator' : 'as it is'
    it(`batchInvalidate drops the copies in its caches too (${how})`, async () => {
      const { rows, innerMemory, outer } = nested(wrapped)
      expect((await outer.get(ConformanceUser, { id: 1 }))?.name).toBe(makeUser(1).name)
      rows.set(1, Object.assign(makeUser(1), { name: 'changed at the source' }))
      await outer.batchInvalidate(ConformanceUser, [{ id: 1 }])
      expect(await innerMemory.get(ConformanceUser, { id: 1 })).toBeUndefined()
      expect((await outer.get(ConformanceUser, { id: 1 }))?.name).toBe('changed at the source')
    })

    it(`clearCaches() clears its caches too (${how})`, async () => {
      const { innerMemory, outer } = nested(wrapped)
      await outer.get(ConformanceUser, { id: 1 })
      expect(innerMemory.size).toBe(1)
      await outer.clearCaches()
      expect(innerMemory.size).toBe(0)
    })
  }

  it("serveStale: while the source fails, the outer chain serves the expired copies the nested chain's caches keep", async () => {
    const clock = new ManualClock()
    const rows = new Map([[1, makeUser(1)]])
    let failing = false
    const source = new LoaderStore({
      model: ConformanceUser,
      load: async (lookups) => {
        if (failing) throw new Error('source down')
        return lookups.map((l) => rows.get((l as { id: number }).id))
      },
    })
    const inner = new ChainedStore([new ProcessMemoryStore({ clock, lifetime: 1, grace: 3600 }), source], { clock })
    const outer = new ChainedStore([new ProcessMemoryStore({ clock, lifetime: 1 }), inner], { clock, serveStale: true })
    expect((await outer.get(ConformanceUser, { id: 1 }))?.name).toBe(makeUser(1).name)
    clock.advance(2000)
    failing = true
    expect((await outer.get(ConformanceUser, { id: 1 }))?.name).toBe(makeUser(1).name)
  })
})
