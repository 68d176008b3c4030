import assert from 'node:assert/strict'
import type { StoreCapabilities } from '../../index.js'
import type { ConformanceCase } from '../case.js'
import { ConformanceUser } from '../models.js'
import { makeUser } from './fixtures.js'

const expires = (c: StoreCapabilities) => (c.expires ? undefined : 'the store keeps objects until deleted (capabilities.expires is false)')

/** `lifetime`: seconds, absolute Dates and callbacks; never ends early. */
export const lifetimeCases: readonly ConformanceCase[] = [
  {
    name: 'lifetime in seconds: a hit until it ends, a miss after, by every key',
    options: { lifetime: 2 },
    unless: expires,
    async body(store, { clock }) {
      const user = makeUser(500)
      await store.put(user)
      clock.advance(1999)
      assert.deepEqual(await store.get(ConformanceUser, { email: user.email }), user)
      clock.advance(2)
      assert.equal(await store.get(ConformanceUser, { id: 500 }), undefined)
      assert.equal(await store.get(ConformanceUser, { email: user.email }), undefined)
    },
  },
  {
    name: 'lifetime callback: seconds, an absolute Date, or undefined for never',
    options: {
      lifetime: (obj: object) => {
        const id = (obj as ConformanceUser).id
        if (id === 501) return 1
        if (id === 502) return new Date(Date.now() + 60_000)
        return undefined
      },
    },
    unless: expires,
    async body(store, { clock }) {
      const users = [501, 502, 503].map(makeUser)
      await store.batchPut(users)
      clock.advance(1500)
      assert.deepEqual(await store.batchGet(ConformanceUser, [{ id: 501 }, { id: 502 }, { id: 503 }]), [undefined, users[1], users[2]])
      clock.advance(60_000)
      assert.deepEqual(await store.batchGet(ConformanceUser, [{ id: 501 }, { id: 502 }, { id: 503 }]), [undefined, undefined, users[2]])
    },
  },
  {
    name: 'a lifetime already over stores nothing and removes the old copy',
    options: { lifetime: (obj: object) => ((obj as ConformanceUser).name === 'expired' ? new Date(0) : 60) },
    unless: expires,
    async body(store) {
      const user = makeUser(504)
      await store.put(user)
      user.name = 'expired'
      await store.put(user)
      assert.equal(await store.get(ConformanceUser, { id: 504 }), undefined)
    },
  },
]
