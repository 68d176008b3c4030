/**
 * Single-flight and writes: a read that began after a write was acknowledged must never share the
 * answer of a read that began while the write was still updating the caches (it may have read what
 * the write was about to replace). Found by the coherence harness: a read 18 ms after the owner's
 * delete returned the deleted version, through a memory layer that served nothing (its bus was down).
 */
import { describe, expect, it } from 'vitest'
import type { KeyValueEntry } from '../../src/contracts/key-value-backend.js'
import { ChainedStore, KeyValueStore, ProcessMemoryStore } from '../../src/index.js'
import { ConformanceUser, MapBackend, makeUser } from '../../src/testing/index.js'

/** A gate: `wait()` resolves once `open()` was called. */
function gate(): { wait: () => Promise<void>; open: () => void } {
  let open: () => void = () => {}
  const opened = new Promise<void>((resolve) => {
    open = resolve
  })
  return { wait: () => opened, open }
}

/** A MapBackend whose writes can be held, and whose reads can answer late what they found at once. */
class HeldBackend extends MapBackend {
  writes: ReturnType<typeof gate> | undefined
  replies: ReturnType<typeof gate> | undefined
  writesWaiting = 0
  readsWaiting = 0

  override async getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    const found = await super.getMany(keys)
    const replies = this.replies
    if (replies !== undefined) {
      this.readsWaiting++
      await replies.wait()
    }
    return found
  }

  override async setMany(entries: readonly KeyValueEntry[]): Promise<void> {
    await this.#held()
    return super.setMany(entries)
  }

  override async deleteMany(keys: readonly string[]): Promise<void> {
    await this.#held()
    return super.deleteMany(keys)
  }

  async #held(): Promise<void> {
    const writes = this.writes
    if (writes === undefined) return
    this.writesWaiting++
    await writes.wait()
  }
}

const until = async (done: () => boolean): Promise<void> => {
  for (let i = 0; i < 1000 && !done(); i++) await new Promise((resolve) => setImmediate(resolve))
  expect(done()).toBe(true)
}

describe('single-flight across a write', () => {
  it('a read begun after a delete was acknowledged does not join a read begun while the delete was updating the caches', async () => {
    const backend = new HeldBackend()
    const db = new ProcessMemoryStore({ tombstoneLifetime: 0 })
    const chain = new ChainedStore([new ProcessMemoryStore(), new KeyValueStore(backend), db])
    const user = makeUser(5)
    await chain.put(user)
    // the memory layer holds nothing for it (as while its bus is down): reads go to the cache layer
    await (chain.layers[0] as ProcessMemoryStore).batchInvalidate(ConformanceUser, [{ id: 5 }])

    // the delete has reached the database; its write to the cache layer is held
    backend.writes = gate()
    const deleted = chain.delete(user)
    await until(() => backend.writesWaiting > 0)
    // a read begins now: the memory layer misses, the cache layer still holds the old copy (answered late)
    backend.replies = gate()
    const during = chain.get(ConformanceUser, { id: 5 })
    await until(() => backend.readsWaiting > 0)
    backend.writes.open()
    await deleted

    // acknowledged: every read that begins from now on must miss
    const after = chain.get(ConformanceUser, { id: 5 })
    backend.replies.open()
    expect(await after).toBeUndefined()
    const concurrent = await during
    expect(concurrent === undefined || concurrent.id === 5).toBe(true) // it overlapped the delete: either answer
    expect(await chain.get(ConformanceUser, { id: 5 })).toBeUndefined()
    await chain.close()
  })

  it('a read begun after a put was acknowledged does not join a read begun while the put was updating the caches', async () => {
    const backend = new HeldBackend()
    const db = new ProcessMemoryStore({ tombstoneLifetime: 0 })
    const chain = new ChainedStore([new ProcessMemoryStore(), new KeyValueStore(backend), db])
    const user = makeUser(6)
    user.name = 'old'
    await chain.put(user)
    await (chain.layers[0] as ProcessMemoryStore).batchInvalidate(ConformanceUser, [{ id: 6 }])

    const newer = makeUser(6)
    newer.name = 'new'
    backend.writes = gate()
    const written = chain.put(newer)
    await until(() => backend.writesWaiting > 0)
    backend.replies = gate()
    const during = chain.get(ConformanceUser, { id: 6 })
    await until(() => backend.readsWaiting > 0)
    backend.writes.open()
    await written
    await (chain.layers[0] as ProcessMemoryStore).batchInvalidate(ConformanceUser, [{ id: 6 }])

    const after = chain.get(ConformanceUser, { id: 6 })
    backend.replies.open()
    expect((await after)?.name).toBe('new')
    expect(['old', 'new']).toContain((await during)?.name)
    await chain.close()
  })
})
