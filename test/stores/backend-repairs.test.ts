import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { KeyValueBackend } from '../../src/contracts/key-value-backend.js'
import { encodeAlias, encodeRecord, encodeTombstone, envelopeExpiry, envelopeKind, KIND_TOMBSTONE } from '../../src/core/codec.js'
import { canonicalKey, KeyValueStore } from '../../src/index.js'
import { ConformanceUser, makeUser } from '../../src/testing/index.js'
import { type BackendTarget, serverTargets } from './backend-targets.js'

let prefixes = 0
const uniquePrefix = (): string => `br${process.pid}x${++prefixes}`

/** A backend with `repairMany` on real servers. */
type Target = BackendTarget<KeyValueBackend & Required<Pick<KeyValueBackend, 'repairMany'>>> & Required<Pick<BackendTarget, 'unreadable'>>

const targets = serverTargets() as [string, () => Target][]

const tombstoneUntil = (bytes: Uint8Array | undefined): number | undefined =>
  bytes !== undefined && envelopeKind(bytes) === KIND_TOMBSTONE ? (envelopeExpiry(bytes) ?? 0) : undefined

describe.runIf(targets.length > 0).each(targets)('%s: repairMany, one atomic step per key', (_name, make) => {
  let target: Target
  beforeAll(() => {
    target = make()
  })
  afterAll(async () => {
    await target.close()
  })

  /** One key per thing a key can hold (spread over the servers, or hash slots, by their names). */
  async function holding(prefix: string, now: number) {
    const k = (s: string): string => `${prefix}:${s}`
    const keys = {
      nothing: k('nothing'),
      record: k(canonicalKey(ConformanceUser, { id: 1 })), // registers the model: records can be encoded
      alias: k('alias'),
      shorter: k('shorter'),
      longer: k('longer'),
      forever: k('forever'),
      foreign: k('foreign'),
      unreadable: k('unreadable'),
    }
    await target.backend.setMany([
      { key: keys.record, value: encodeRecord(makeUser(1), now + 60_000), expiresAt: now + 60_000 },
      { key: keys.alias, value: encodeAlias(keys.record, undefined), expiresAt: undefined },
      { key: keys.shorter, value: encodeTombstone(now + 1_000), expiresAt: now + 1_000 },
      { key: keys.longer, value: encodeTombstone(now + 50_000), expiresAt: now + 50_000 },
      { key: keys.forever, value: encodeTombstone(0), expiresAt: undefined },
      { key: keys.foreign, value: Buffer.from('not an envelope'), expiresAt: undefined },
    ])
    await target.unreadable(keys.unreadable)
    return keys
  }

  const after = async (keys: Record<string, string>) => {
    const held = await target.backend.getMany(Object.values(keys))
    return Object.fromEntries(Object.keys(keys).map((name, i) => [name, held[i] === undefined ? 'nothing' : tombstoneUntil(held[i])]))
  }

  it('while its tombstone is needed: writes it over nothing, a copy, foreign bytes and a shorter tombstone; keeps a longer one', async () => {
    const now = Date.now()
    const keys = await holding(uniquePrefix(), now)
    const until = now + 10_000
    await target.backend.repairMany([...Object.values(keys), keys.record], until) // a key twice is repaired once
    expect(await after(keys)).toEqual({
      nothing: until,
      record: until,
      alias: until,
      shorter: until,
      longer: now + 50_000,
      forever: 0,
      foreign: until,
      unreadable: until,
    })
    if (target.pttl !== undefined) {
      for (const key of [keys.nothing, keys.record, keys.shorter, keys.unreadable]) {
        expect(await target.pttl(key)).toBeGreaterThan(8_000)
        expect(await target.pttl(key)).toBeLessThanOrEqual(10_000)
      }
      expect(await target.pttl(keys.longer)).toBeGreaterThan(40_000)
      expect(await target.pttl(keys.forever)).toBe(-1)
    }
    await target.backend.deleteMany(Object.values(keys))
  })

  it('once its tombstone would have ended: deletes the copies, keeps every tombstone, writes nothing where nothing was', async () => {
    const now = Date.now()
    const keys = await holding(uniquePrefix(), now)
    await target.backend.repairMany(Object.values(keys), now - 1)
    expect(await after(keys)).toEqual({
      nothing: 'nothing',
      record: 'nothing',
      alias: 'nothing',
      shorter: now + 1_000,
      longer: now + 50_000,
      forever: 0,
      foreign: 'nothing',
      unreadable: 'nothing',
    })
    await target.backend.deleteMany(Object.values(keys))
  })

  it('repairs a batch of 1,200 keys of one hash slot, and nothing for no keys', async () => {
    const prefix = uniquePrefix()
    const keys = Array.from({ length: 1_200 }, (_, i) => `${prefix}:{same}${i}`)
    const until = Date.now() + 5_000
    await target.backend.repairMany(keys, until)
    expect((await target.backend.getMany(keys)).every((bytes) => tombstoneUntil(bytes) === until)).toBe(true)
    await target.backend.repairMany([], until)
    await target.backend.deleteMany(keys)
  })

  it('keeps the longer tombstone of a delete another process makes while the repair runs', async () => {
    const inner = target.backend
    const prefix = uniquePrefix()
    const other = new KeyValueStore(inner, { prefix, tombstoneLifetime: 5 })
    let onRepair: (() => Promise<void>) | undefined
    const interleave = async (): Promise<void> => {
      const run = onRepair
      onRepair = undefined
      await run?.()
    }
    // The repairing process's backend: the other process's delete lands once the repair has begun — after
    // the read of a repair that reads, then writes; before the one step where the server does both.
    const racing: KeyValueBackend = {
      name: 'racing',
      getMany: async (keys, options) => {
        const found = await inner.getMany(keys, options)
        await interleave()
        return found
      },
      setMany: (entries) => inner.setMany(entries),
      ...(inner.addMany === undefined
        ? {}
        : { addMany: (entries) => (inner.addMany as NonNullable<typeof inner.addMany>).call(inner, entries) }),
      deleteMany: (keys) => inner.deleteMany(keys),
      close: async () => {},
      // absent where the backend has none (to see this test fail, leave it out)
      repairMany: async (keys, until) => {
        await interleave()
        return inner.repairMany(keys, until)
      },
    }
    const store = new KeyValueStore(racing, { prefix, tombstoneLifetime: 5 })
    const user = makeUser(41)
    await store.put(user)
    onRepair = () => other.delete(user)
    // a change that failed 4 s ago: its tombstone would last 1 s more, the delete's 5 s
    const failedAt = Date.now() - 4_000
    await store.batchInvalidate(ConformanceUser, [{ id: 41 }], { changedAt: failedAt })
    expect(onRepair).toBeUndefined()
    const [held] = await inner.getMany([`${prefix}:ConformanceUser|id=n41`])
    expect(tombstoneUntil(held)).toBeGreaterThan(failedAt + 5_000)
    await store.batchPutEntries([{ value: user, expiresAt: undefined }], { backfill: true })
    expect(await store.get(ConformanceUser, { id: 41 })).toBeUndefined()
    await inner.deleteMany([`${prefix}:ConformanceUser|id=n41`])
  })
})
