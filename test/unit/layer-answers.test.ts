/**
 * A chain checks what each layer answers before it uses it: an array of one slot per lookup, each
 * `undefined` or an entry holding an instance of the model asked for. A custom store (or decorator)
 * that answers otherwise fails as a layer (a cache layer's lookups are answered from below, reported;
 * the database's read rejects), naming the layer — never a raw TypeError, a wrong object or a silent
 * miss. A layer that throws something that is not an Error reaches callers and listeners as a
 * StockpyleError naming the layer, the thrown value as its `cause`.
 */
import { describe, expect, it } from 'vitest'
import {
  BaseStore,
  type CacheErrorEvent,
  ChainedStore,
  capabilities,
  type DecoratedOperation,
  Entry,
  isStockpyleError,
  keys,
  type LookupRequest,
  PartialFailureError,
  ProcessMemoryStore,
  StoreDecorator,
} from '../../src/index.js'
import { ManualClock } from '../../src/testing/index.js'

class Book {
  static readonly stockpyleName = 'LayerAnswersBook'
  static readonly stockpyleKeys = keys('id')
  constructor(
    public id: number,
    public title: string,
  ) {}
}
class Other {
  static readonly stockpyleName = 'LayerAnswersOther'
  static readonly stockpyleKeys = keys('id')
  constructor(public id: number) {}
}

type Answer = (requests: readonly LookupRequest[]) => unknown

/** A store whose reads answer what `answer` returns (or throws); writes succeed and keep nothing. */
function badStore(answer: Answer) {
  return new (class Bad extends BaseStore {
    override readonly name = 'bad'
    override readonly capabilities = capabilities({ expires: true })
    protected override async readMany(_info: unknown, requests: readonly LookupRequest[]) {
      return answer(requests) as never
    }
    protected override async writeMany() {}
    protected override async removeMany() {}
  })()
}

const answers: [string, Answer][] = [
  ['too few slots', () => []],
  ['too many slots', (r) => [...r.map(() => undefined), new Entry(new Book(1, 'x'), undefined)]],
  ['no array', () => undefined],
  ['null in a slot', (r) => r.map(() => null)],
  ['an object, not an entry', (r) => r.map(() => new Book(1, 'raw'))],
  ['a plain object as the value', (r) => r.map(() => new Entry({ id: 1, title: 'plain' }, undefined))],
  ['another model’s instance', (r) => r.map(() => new Entry(new Other(1), undefined))],
]

describe('a chain checks each layer’s answer', () => {
  for (const [label, answer] of answers) {
    it(`a cache layer answering with ${label}: the lookups are answered from below, the failure reported naming the layer`, async () => {
      const db = new ProcessMemoryStore({ name: 'db' })
      await db.put(new Book(1, 'from the database'))
      const chain = new ChainedStore([new ProcessMemoryStore(), badStore(answer), db])
      const events: CacheErrorEvent[] = []
      chain.events.on('cacheError', (e: CacheErrorEvent) => events.push(e))
      const got = await chain.batchGet(Book, [{ id: 1 }, { id: 2 }])
      expect(got).toEqual([new Book(1, 'from the database'), undefined])
      expect(got[0]).toBeInstanceOf(Book)
      expect(events.map((e) => [e.layer, e.operation])).toEqual([['bad', 'get']])
      expect(isStockpyleError(events[0]?.error, 'E_STOCKPYLE')).toBe(true)
      expect(((events[0] as CacheErrorEvent).error as Error).message).toMatch(/`bad`/)
      await chain.close()
    })

    it(`the database layer answering with ${label}: the read rejects with a StockpyleError naming it`, async () => {
      const chain = new ChainedStore([new ProcessMemoryStore(), badStore(answer)], { name: 'books' })
      const err = await chain.batchGet(Book, [{ id: 1 }, { id: 2 }]).catch((e: unknown) => e)
      expect(isStockpyleError(err, 'E_STOCKPYLE')).toBe(true)
      expect((err as Error).message).toMatch(/books store get: .*`bad`/)
      await chain.close()
    })
  }

  for (const [label, thrown] of [
    ['a string', 'boom'],
    ['null', null],
    ['a plain object', { message: 'objerr' }],
  ] as const) {
    it(`a layer that throws ${label}: callers and listeners get a StockpyleError naming the layer, with the value as cause`, async () => {
      const db = new ProcessMemoryStore({ name: 'db' })
      await db.put(new Book(1, 'db'))
      const cache = badStore(() => {
        throw thrown
      })
      const events: CacheErrorEvent[] = []
      const chain = new ChainedStore([cache, db])
      chain.events.on('cacheError', (e: CacheErrorEvent) => events.push(e))
      expect(await chain.get(Book, { id: 1 })).toEqual(new Book(1, 'db'))
      expect(isStockpyleError(events[0]?.error, 'E_STOCKPYLE')).toBe(true)
      expect(((events[0] as CacheErrorEvent).error as Error).cause).toBe(thrown)
      const tail = new ChainedStore([new ProcessMemoryStore(), cache], { name: 'books' })
      const err = await tail.get(Book, { id: 1 }).catch((e: unknown) => e)
      expect(isStockpyleError(err, 'E_STOCKPYLE')).toBe(true)
      expect((err as Error).message).toMatch(/books store get: .*`bad`/)
      expect((err as Error).cause).toBe(thrown)
      await chain.close()
      await tail.close()
    })
  }

  /** A decorator whose reads answer what `answer` gives for an operation (else the inner store's). */
  class Answering extends StoreDecorator {
    readonly #answer: (op: string, args: readonly unknown[]) => unknown
    constructor(inner: ProcessMemoryStore, name: string, answer: (op: string, args: readonly unknown[]) => unknown) {
      super(inner, { name })
      this.#answer = answer
    }
    protected override around<T>(op: DecoratedOperation, args: readonly unknown[], call: () => Promise<T>): Promise<T> {
      const given = this.#answer(op, args)
      return given === undefined ? call() : (given as Promise<T>)
    }
  }

  it('the fast path (an in-process first layer’s get) checks its answer too', async () => {
    const db = new ProcessMemoryStore({ name: 'db' })
    await db.put(new Book(1, 'db'))
    for (const policy of ['report', 'throw'] as const) {
      const first = new Answering(new ProcessMemoryStore(), 'bad', (op) => (op === 'get' ? Promise.resolve(new Other(1)) : undefined))
      const chain = new ChainedStore([first, db], { onCacheError: policy })
      const events: CacheErrorEvent[] = []
      chain.events.on('cacheError', (e: CacheErrorEvent) => events.push(e))
      const read = chain.get(Book, { id: 1 })
      if (policy === 'report') expect(await read).toEqual(new Book(1, 'db'))
      else await expect(read).rejects.toThrow(/`bad` answered a get of `Book`/)
      expect(events.map((e) => [e.layer, e.operation])).toEqual([['bad', 'get']])
      await chain.close()
    }
  })

  it('stale reads check the answers of the layers they ask', async () => {
    const clock = new ManualClock()
    const db = new ProcessMemoryStore({ name: 'db', clock })
    await db.put(new Book(1, 'db'))
    const down = new Answering(db, 'db-down', (op) => (op === 'batchGetEntries' ? Promise.reject(new Error('database down')) : undefined))
    for (const answer of [(r: readonly unknown[]) => r.map(() => new Entry(new Other(1), 0)), () => []]) {
      const cache = new Answering(new ProcessMemoryStore({ clock }), 'bad', (op, args) =>
        op === 'batchGetEntries' && (args[2] as { stale?: boolean } | undefined)?.stale === true
          ? Promise.resolve(answer(args[1] as unknown[]))
          : undefined,
      )
      const chain = new ChainedStore([cache, down], { serveStale: true, clock })
      const events: CacheErrorEvent[] = []
      chain.events.on('cacheError', (e: CacheErrorEvent) => events.push(e))
      await expect(chain.get(Book, { id: 1 })).rejects.toThrow(/database down/)
      expect(events.map((e) => [e.layer, e.operation])).toContainEqual(['bad', 'stale'])
      await chain.close()
    }
  })

  it('a partial failure’s answers are checked: another model’s object is never handed on', async () => {
    const db = new ProcessMemoryStore({ name: 'db' })
    await db.batchPut([new Book(1, 'one'), new Book(2, 'two')])
    const cache = new Answering(new ProcessMemoryStore(), 'bad', (op) =>
      op === 'batchGetEntries'
        ? Promise.reject(
            new PartialFailureError('node x failed', {
              failed: [1],
              results: [new Entry(new Other(1), undefined), undefined],
              nodes: ['x'],
            }),
          )
        : undefined,
    )
    const chain = new ChainedStore([cache, db])
    const got = await chain.batchGet(Book, [{ id: 1 }, { id: 2 }])
    expect(got).toEqual([new Book(1, 'one'), new Book(2, 'two')])
    expect(chain.stats()[0]?.errors).toBe(1) // one failure of the call, not one per problem
    await chain.close()
  })
})
