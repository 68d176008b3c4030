import { describe, expect, it } from 'vitest'
import { AsyncLocalStore } from '../../src/index.js'
import { ConformanceUser, makeUser } from '../../src/testing/index.js'

describe('AsyncLocalStore', () => {
  it('holds nothing outside a scope: puts and deletes are no-ops, gets miss', async () => {
    const store = new AsyncLocalStore()
    await store.put(makeUser(1))
    expect(await store.get(ConformanceUser, { id: 1 })).toBeUndefined()
    await store.delete(makeUser(1))
    expect(store.inScope).toBe(false)
  })

  it('concurrent scopes never see each other, across awaits', async () => {
    const store = new AsyncLocalStore()
    const request = (id: number) =>
      store.run(async () => {
        await store.put(makeUser(id))
        await new Promise((r) => setTimeout(r, 5))
        const mine = await store.get(ConformanceUser, { id })
        const other = await store.get(ConformanceUser, { id: id === 1 ? 2 : 1 })
        return [mine?.id, other]
      })
    expect(await Promise.all([request(1), request(2)])).toEqual([
      [1, undefined],
      [2, undefined],
    ])
  })

  it('a scope ends with its run: a later run starts empty', async () => {
    const store = new AsyncLocalStore()
    await store.run(() => store.put(makeUser(3)))
    expect(await store.run(() => store.get(ConformanceUser, { id: 3 }))).toBeUndefined()
  })
})
