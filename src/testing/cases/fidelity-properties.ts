import assert from 'node:assert/strict'
import type { Store } from '../../index.js'
import type { ConformanceCase } from '../case.js'
import { ConformanceDoc } from '../models.js'

type FastCheck = typeof import('fast-check')

/** fast-check is an optional peer of `stockpyle/testing`: the property cases need it, nothing else does. */
async function loadFastCheck(): Promise<FastCheck | undefined> {
  try {
    const mod = (await import('fast-check')) as FastCheck & { default?: FastCheck }
    return mod.default ?? mod
  } catch {
    console.info('[stockpyle conformance] property cases skipped: install fast-check (npm i -D fast-check) to run them')
    return undefined
  }
}

/** Runs per property and store; `STOCKPYLE_PROPERTY_RUNS` overrides it. */
function runs(fallback: number): number {
  const n = Number(process.env.STOCKPYLE_PROPERTY_RUNS)
  return Number.isSafeInteger(n) && n > 0 ? n : fallback
}

/**
 * Any value a model attribute may hold, with the parts that are easy to lose on the way (-0, NaN, lone
 * surrogates, also in a RegExp's source, holes, own `__proto__`/`constructor` keys, null prototypes,
 * Maps, Sets, typed arrays):
 * a fast-check arbitrary built with the given fast-check module.
 */
export function anyValue(fc: Omit<FastCheck, 'default'>) {
  const unit = fc.oneof(
    { weight: 5, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
    fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
    fc.constant('\u0000'),
  )
  const text = fc.string({ unit, maxLength: 10 })
  return fc.anything({
    key: fc.oneof(text, fc.constantFrom('__proto__', 'constructor', 'prototype', 'toJSON', '$date', '$hole')),
    values: [
      text,
      fc.double(),
      fc.constantFrom(-0, Number.NaN, Number.NEGATIVE_INFINITY, 2 ** 53 + 2),
      fc.bigInt(),
      fc.boolean(),
      fc.constant(null),
      fc.constant(undefined),
      fc.date({ noInvalidDate: true }),
      fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a)),
      // a RegExp matching `text` literally: its source may hold lone surrogates and U+0000 too
      fc
        .tuple(text, fc.constantFrom('', 'g', 'iu', 'u', 'msy'))
        .map(([source, flags]) => new RegExp(source.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&'), flags)),
    ],
    maxDepth: 3,
    maxKeys: 4,
    withMap: true,
    withSet: true,
    withNullPrototype: true,
    withTypedArray: true,
    withSparseArray: true,
  })
}

/** Documents with a key of every allowed type; key values distinct within a batch (NUL-free strings: PostgreSQL text refuses NUL). */
function documents(fc: FastCheck) {
  const doc = fc
    .record({
      id: fc.string({ unit: 'binary', maxLength: 24 }).filter((s) => !s.includes('\u0000')),
      code: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
      flag: fc.boolean(),
      num: fc.double({ noNaN: true, noDefaultInfinity: true }).filter((n) => !Object.is(n, -0)),
      data: anyValue(fc).filter((v) => v !== undefined),
    })
    .map((d) => new ConformanceDoc(d.id, d.code, d.flag, d.num, d.data))
  return fc.array(doc, { minLength: 1, maxLength: 3 }).map((docs) => {
    const seen = new Set<string>()
    return docs.filter((d) => {
      const keys = [`i${d.id}`, `c${d.code}`, `f${d.flag}:${d.num}`]
      if (keys.some((k) => seen.has(k))) return false
      for (const k of keys) seen.add(k)
      return true
    })
  })
}

async function roundTrip(store: Store, docs: readonly ConformanceDoc[]): Promise<void> {
  await store.batchPut(docs)
  for (const doc of docs) {
    for (const lookup of [{ id: doc.id }, { code: doc.code }, { flag: doc.flag, num: doc.num }]) {
      const got = await store.get(ConformanceDoc, lookup)
      assert.ok(got instanceof ConformanceDoc, `get by ${Object.keys(lookup).join('+')} missed`)
      assert.deepStrictEqual(got, doc)
      assert.notEqual(got, doc)
    }
  }
  assert.deepStrictEqual(
    await store.batchGet(
      ConformanceDoc,
      docs.map((d) => ({ id: d.id })),
    ),
    docs,
  )
  await store.batchDelete(docs)
  for (const doc of docs) assert.equal(await store.get(ConformanceDoc, { code: doc.code }), undefined)
}

/** Property-based fidelity: every value comes back exactly, by every key, from this store. */
export const fidelityPropertyCases: readonly ConformanceCase[] = [
  {
    name: 'property: any nested value (-0, NaN, lone surrogates, U+0000, holes, __proto__/constructor keys, null prototypes, typed arrays) and keys of every type come back exactly',
    async body(store) {
      const fc = await loadFastCheck()
      if (fc === undefined) return
      await fc.assert(
        fc.asyncProperty(documents(fc), (docs) => roundTrip(store, docs)),
        { numRuns: runs(store.capabilities.inProcess ? 150 : 30) },
      )
    },
  },
  {
    name: 'property: a value that cannot be stored is refused with SerializationError naming its path, and nothing is written',
    async body(store) {
      const fc = await loadFastCheck()
      if (fc === undefined) return
      class NotAModel {}
      const bad = fc.constantFrom<[unknown, RegExp]>(
        [() => 1, /`data` is a function|at `data`|attribute `data`/],
        [{ prefs: { callback: () => 1 } }, /prefs.callback/],
        [[1, Symbol('s')], /data\[1\]|\[1\]/],
        [new Map([['k', new NotAModel()]]), /NotAModel/],
      )
      await fc.assert(
        fc.asyncProperty(bad, fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 8 }), async ([data, path], id) => {
          const doc = new ConformanceDoc(`bad ${id}`, 7n, true, 0.5, data)
          await assert.rejects(store.put(doc), (err: Error) => {
            assert.equal((err as { code?: string }).code, 'E_SERIALIZATION', String(err))
            assert.match(err.message, path)
            return true
          })
          assert.equal(await store.get(ConformanceDoc, { id: doc.id }), undefined)
        }),
        { numRuns: runs(store.capabilities.inProcess ? 40 : 8) },
      )
    },
  },
]
