import { describe, expect, it } from 'vitest'
import {
  type GetEntriesOptions,
  type Instance,
  type KeyValueEntry,
  KeyValueStore,
  type Lookup,
  type Model,
  ProcessMemoryStore,
  type PutEntriesOptions,
  type Store,
  type StoreCapabilities,
  StoreDecorator,
  type StoreEntry,
} from '../../src/index.js'
import {
  type ConformanceCase,
  type ConformanceStoreOptions,
  conformanceGroups,
  MapBackend,
  runConformanceCase,
} from '../../src/testing/index.js'

/**
 * Each case added for what a chain relies on (expiry caps, add-only backfills, stale reads,
 * invalidation, leases) catches a store that breaks it on purpose: the case passes on the sound store
 * and rejects with its assertion on the broken one (which declares the same capabilities).
 */

function caseNamed(name: string): ConformanceCase {
  for (const [, cases] of conformanceGroups) for (const c of cases) if (c.name === name) return c
  throw new Error(`no conformance case named ${name}`)
}

type Factory = (o: ConformanceStoreOptions) => Store

/** Runs the case on the sound store (it must pass) and on the broken one (it must fail with an assertion). */
async function catches(caseName: string, sound: Factory, broken: Factory): Promise<string> {
  const c = caseNamed(caseName)
  expect(await runConformanceCase({ name: 'sound', createStore: sound }, c)).toBe('passed')
  const failure = await runConformanceCase({ name: 'broken', createStore: broken }, c).then(
    (outcome) => new Error(`the broken store was not caught: ${outcome}`),
    (err: unknown) => err as Error,
  )
  expect(failure).toMatchObject({ code: 'ERR_ASSERTION' })
  return failure.message
}

/** A decorator that declares other capabilities than its store has. */
class Claims extends StoreDecorator {
  readonly #claims: Partial<StoreCapabilities>
  constructor(inner: Store, claims: Partial<StoreCapabilities>) {
    super(inner)
    this.#claims = claims
  }
  override get capabilities(): StoreCapabilities {
    return { ...this.inner.capabilities, ...this.#claims }
  }
}

const memory: Factory = (o) => new ProcessMemoryStore(o)
const keyValue: Factory = (o) => new KeyValueStore(new MapBackend(() => o.clock.now()), o)

describe('conformance cases catch deliberately broken stores', () => {
  describe('expiry caps', () => {
    /** Stores every entry with the store's own lifetime, dropping the caller's expiresAt. */
    class IgnoresExpiryCaps extends StoreDecorator {
      override batchPutEntries(entries: readonly StoreEntry[], options?: PutEntriesOptions): Promise<void> {
        return super.batchPutEntries(
          entries.map((e) => ({ value: e.value, expiresAt: undefined })),
          options,
        )
      }
    }
    const broken: Factory = (o) => new IgnoresExpiryCaps(new ProcessMemoryStore(o))

    it('an entry that outlives its expiresAt', async () => {
      const message = await catches(
        'batchPutEntries: an entry expires at its expiresAt when that comes before the lifetime, and never outlives the lifetime',
        memory,
        broken,
      )
      expect(message).toMatch(/the capped entry reports its cap/)
    })

    it('an entry stored although its expiresAt has passed', async () => {
      await catches('batchPutEntries: an entry whose expiresAt has passed is not stored, and the older copy is gone', memory, broken)
    })
  })

  describe('add-only backfills', () => {
    it('a store that drops backfills', async () => {
      class DropsBackfills extends StoreDecorator {
        override async batchPutEntries(entries: readonly StoreEntry[], options?: PutEntriesOptions): Promise<void> {
          if (options?.backfill !== true) await super.batchPutEntries(entries, options)
        }
      }
      await catches(
        'a backfill lands where the key holds nothing, under every key, capped at its expiresAt',
        memory,
        (o) => new DropsBackfills(new ProcessMemoryStore(o)),
      )
    })

    it('a store that writes backfills like puts, over a newer value', async () => {
      class OverwritingBackfills extends StoreDecorator {
        override batchPutEntries(entries: readonly StoreEntry[]): Promise<void> {
          return super.batchPutEntries(entries) // the backfill option is lost
        }
      }
      const message = await catches(
        'a backfill never replaces a newer value, under any key',
        memory,
        (o) => new OverwritingBackfills(new ProcessMemoryStore(o)),
      )
      expect(message).toMatch(/newer/)
    })

    it('a backend whose "add" overwrites whatever is there (a tombstone included)', async () => {
      /** addMany implemented as a plain set: not atomic, not add-only. */
      class SetOnlyBackend extends MapBackend {
        override async addMany(entries: readonly KeyValueEntry[]): Promise<boolean[]> {
          await this.setMany(entries)
          return entries.map(() => true)
        }
      }
      const message = await catches(
        'a backfill never lands over the tombstone of a recent delete; a put does',
        keyValue,
        (o) => new KeyValueStore(new SetOnlyBackend(() => o.clock.now()), o),
      )
      expect(message).toMatch(/the copy read before the delete stays out/)
    })

    const refill =
      'with a grace, a backfill replaces an expired copy kept for stale reads, under every key; never a live copy or a tombstone'

    it('a store with a grace whose add-only backfills an expired copy refuses until the grace ends (a backend without refillMany)', async () => {
      /** The MapBackend as it was: addMany only, so an expired copy kept for grace refuses every backfill. */
      class AddOnlyBackend extends MapBackend {
        override refillMany = undefined as unknown as MapBackend['refillMany']
      }
      const message = await catches(
        refill,
        keyValue,
        (o) => new Claims(new KeyValueStore(new AddOnlyBackend(() => o.clock.now()), o), { refillsExpired: true }),
      )
      expect(message).toMatch(/the backfill replaced the expired copy/)
    })

    it('a backend whose refill overwrites whatever is there', async () => {
      class RefillIsASet extends MapBackend {
        override async refillMany(entries: readonly KeyValueEntry[]): Promise<boolean[]> {
          await this.setMany(entries)
          return entries.map(() => true)
        }
      }
      const message = await catches(refill, keyValue, (o) => new KeyValueStore(new RefillIsASet(() => o.clock.now()), o))
      expect(message).toMatch(/the tombstone of the delete refused the backfill/)
    })
  })

  describe('stale reads', () => {
    const name = 'stale reads: an expired copy comes back only with { stale: true }, only within grace, never after a delete'

    it('a store that serves expired copies to every read', async () => {
      class StaleOnEveryRead extends StoreDecorator {
        override batchGetEntries<M extends Model>(
          model: M,
          lookups: readonly Lookup<M>[],
          _options?: GetEntriesOptions,
        ): Promise<(StoreEntry<Instance<M>> | undefined)[]> {
          return super.batchGetEntries(model, lookups, { stale: true })
        }
        override async get<M extends Model>(model: M, lookup: Lookup<M>): Promise<Instance<M> | undefined> {
          return (await this.batchGetEntries(model, [lookup]))[0]?.value
        }
      }
      const message = await catches(name, memory, (o) => new StaleOnEveryRead(new ProcessMemoryStore(o)))
      expect(message).toMatch(/an expired copy is a miss for a normal read/)
    })

    it('a store that declares stale reads but keeps no expired copy', async () => {
      const message = await catches(name, memory, (o) => new Claims(new ProcessMemoryStore({ ...o, grace: 0 }), { staleReads: true }))
      expect(message).toMatch(/a stale read returns the expired copy/)
    })
  })

  describe('invalidation', () => {
    it('a cache whose batchInvalidate drops nothing', async () => {
      class IgnoresInvalidation extends StoreDecorator {
        override async batchInvalidate<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<void> {
          await this.inner.batchGet(model, lookups) // validates the lookups, then drops nothing
        }
      }
      const message = await catches(
        'batchInvalidate drops the copies under every key (a store that owns the truth keeps them); others stay',
        keyValue,
        (o) => new IgnoresInvalidation(new KeyValueStore(new MapBackend(() => o.clock.now()), o)),
      )
      expect(message).toMatch(/invalidated by any key, gone by every key/)
    })

    it('a store that declares tombstones but invalidates without leaving one', async () => {
      await catches(
        'after batchInvalidate, a backfill of a copy read before it does not land',
        memory,
        (o) => new Claims(new ProcessMemoryStore({ ...o, tombstoneLifetime: 0 }), { tombstones: true }),
      )
    })
  })

  describe('leases', () => {
    const exclusive = 'leases: one holder per lookup until released; leasesHeld tells; release is idempotent; data is untouched'

    it('a store that hands the same lease to everyone', async () => {
      class SharedLeases extends StoreDecorator {
        override async acquireLeases<M extends Model>(model: M, lookups: readonly Lookup<M>[], ttlMs: number): Promise<boolean[]> {
          await super.acquireLeases?.(model, lookups, ttlMs)
          return lookups.map(() => true)
        }
      }
      const message = await catches(exclusive, keyValue, (o) => new SharedLeases(keyValue(o)))
      expect(message).toMatch(/a held lease is refused/)
    })

    it('a store whose release keeps the lease', async () => {
      class StickyLeases extends StoreDecorator {
        override async releaseLeases(): Promise<void> {}
      }
      await catches(exclusive, keyValue, (o) => new StickyLeases(keyValue(o)))
    })

    it('a store that holds leases past their ttl', async () => {
      class EndlessLeases extends StoreDecorator {
        override acquireLeases<M extends Model>(model: M, lookups: readonly Lookup<M>[]): Promise<boolean[]> {
          return super.acquireLeases?.(model, lookups, 600_000) as Promise<boolean[]>
        }
      }
      const message = await catches(
        'leases: a lease is no longer held once its ttl has passed',
        keyValue,
        (o) => new EndlessLeases(keyValue(o)),
      )
      expect(message).toMatch(/held for ttlMs, not longer/)
    })
  })
})
