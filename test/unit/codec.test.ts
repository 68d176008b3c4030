import assert from 'node:assert/strict'
import fc from 'fast-check'
import { Packr } from 'msgpackr'
import { describe, expect, it } from 'vitest'
import {
  decodeAlias,
  decodeRecord,
  encodeAlias,
  encodeRecord,
  encodeTombstone,
  envelopeExpiry,
  envelopeProblem,
  HEADER_SIZE,
  MODEL_EXT,
} from '../../src/core/codec.js'
import { CorruptEntryError, isStockpyleError, registerModel, SerializationError, UnknownModelError } from '../../src/index.js'
import { anyValue } from '../../src/testing/cases/fidelity-properties.js'

class Box {
  static readonly stockpyleName = 'CodecBox'
  static readonly stockpyleKeys = ['id'] as const
  constructor(
    public id: number,
    public value: unknown,
  ) {}
}
class Inner {
  static readonly stockpyleName = 'CodecInner'
  static readonly stockpyleKeys = ['n'] as const
  constructor(public n: number) {}
  double() {
    return this.n * 2
  }
}
registerModel(Box, Inner)

// Values the codec promises to keep exactly: any tree of them, with the awkward parts msgpack alone
// would change (-0, lone surrogates, holes, own __proto__/constructor keys, null prototypes) — the same
// values the conformance suite's fidelity properties store.
const tree = anyValue(fc)

/**
 * An array of `length` holding only `elements`, behind a proxy that counts the indices read (`in`,
 * `[i]`) and throws past 100,000 of them (so a loop over every index fails at once rather than running
 * for minutes).
 */
function countingIndices(length: number, elements: Record<number, unknown>): { array: unknown[]; count: () => number } {
  const target: unknown[] = []
  target.length = length
  for (const [i, v] of Object.entries(elements)) target[Number(i)] = v
  let count = 0
  const touch = (key: string | symbol) => {
    if (typeof key === 'string' && /^\d+$/.test(key) && ++count > 100_000)
      throw new Error(`read ${count} indices of an array of length ${length}`)
  }
  const array = new Proxy(target, {
    has(t, key) {
      touch(key)
      return Reflect.has(t, key)
    },
    get(t, key, receiver) {
      touch(key)
      return Reflect.get(t, key, receiver)
    },
  })
  return { array, count: () => count }
}

function envelopeOf(body: Buffer): Buffer {
  const out = Buffer.alloc(HEADER_SIZE + body.length)
  out[0] = 1
  out[1] = 1
  body.copy(out, HEADER_SIZE)
  return out
}

describe('codec', () => {
  it('round-trips any supported value tree inside a model instance, as a distinct copy', () => {
    fc.assert(
      fc.property(tree, fc.option(fc.integer({ min: 1, max: 2 ** 40 }), { nil: undefined }), (value, expiresAt) => {
        const box = new Box(1, value)
        const bytes = encodeRecord(box, expiresAt)
        expect(envelopeExpiry(bytes)).toBe(expiresAt)
        const back = decodeRecord(bytes) as Box
        expect(back).toBeInstanceOf(Box)
        // node:assert: -0, holes and null prototypes count; vitest compares own `constructor` keys as classes
        assert.deepStrictEqual(back, box)
        expect(back).not.toBe(box)
      }),
      { numRuns: 300 },
    )
  })

  it('restores nested model instances with their prototype and no constructor call', () => {
    const back = decodeRecord(encodeRecord(new Box(2, { inner: new Inner(21), list: [new Inner(1)] }), undefined)) as Box
    const inner = (back.value as { inner: Inner }).inner
    expect(inner).toBeInstanceOf(Inner)
    expect(inner.double()).toBe(42)
  })

  it('restores attributes as own data properties even where the class has a setter or a read-only property of that name', () => {
    let setterCalls = 0
    class Guarded {
      static readonly stockpyleName = 'CodecGuarded'
      static readonly stockpyleKeys = ['id'] as const
      id = 1
      label = 'own label'
      kind = 'own kind'
    }
    Object.defineProperty(Guarded.prototype, 'label', {
      get: () => 'from the prototype',
      set: () => {
        setterCalls++
      },
    })
    Object.defineProperty(Guarded.prototype, 'kind', { value: 'read-only', writable: false })
    registerModel(Guarded)
    const bytes = encodeRecord(new Guarded(), undefined)
    for (let i = 0; i < 3; i++) {
      const back = decodeRecord(bytes) as Guarded
      expect(back).toBeInstanceOf(Guarded)
      expect(Object.getPrototypeOf(back)).toBe(Guarded.prototype)
      expect(Object.getOwnPropertyDescriptor(back, 'label')).toEqual({
        value: 'own label',
        writable: true,
        enumerable: true,
        configurable: true,
      })
      expect(Object.getOwnPropertyDescriptor(back, 'kind')?.value).toBe('own kind')
      expect(Object.keys(back)).toEqual(['id', 'label', 'kind'])
    }
    expect(setterCalls).toBe(0)
    // an instance the codec rewrites before encoding (here for its -0) is copied without the setter
    // or the read-only property either
    const rewritten = Object.assign(new Guarded(), { score: -0 })
    const back = decodeRecord(encodeRecord(rewritten, undefined)) as Guarded & { score: number }
    expect(Object.getOwnPropertyDescriptor(back, 'label')?.value).toBe('own label')
    expect(Object.getOwnPropertyDescriptor(back, 'kind')?.value).toBe('own kind')
    expect(Object.is(back.score, -0)).toBe(true)
    expect(setterCalls).toBe(0)
    // the same shape on a class without such properties is built by its compiled constructor: same result
    const plain = decodeRecord(encodeRecord(new Box(3, [new Inner(4)]), undefined)) as Box
    expect(Object.getPrototypeOf(plain)).toBe(Box.prototype)
    expect(Object.keys(plain)).toEqual(['id', 'value'])
    expect(plain.constructor).toBe(Box)
  })

  it('past 1,000 distinct shapes, instances still decode exactly, without compiling code per decode', () => {
    const shaped = (n: number): Box => Object.assign(new Box(n, n), { [`extra${n}`]: n })
    for (let n = 0; n < 1_005; n++) expect(decodeRecord(encodeRecord(shaped(n), undefined))).toStrictEqual(shaped(n))
    const late = encodeRecord(shaped(5_000), undefined)
    const global = globalThis as unknown as { Function: FunctionConstructor }
    const original = global.Function
    let compiled = 0
    global.Function = new Proxy(original, {
      construct(target, args) {
        compiled++
        return Reflect.construct(target, args)
      },
    })
    try {
      for (let i = 0; i < 3; i++) {
        const back = decodeRecord(late) as Box
        expect(back).toStrictEqual(shaped(5_000))
        expect(Object.getPrototypeOf(back)).toBe(Box.prototype)
      }
    } finally {
      global.Function = original
    }
    expect(compiled).toBe(0)
  })

  it('rejects functions, symbols, cycles and instances of other classes with SerializationError naming the path', () => {
    class Widget {}
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    const cases: [unknown, RegExp][] = [
      [() => 1, /put of model `CodecBox`: `value` is a function/],
      [{ prefs: { callback: () => 1 } }, /`value.prefs.callback` is a function/],
      [{ s: [1, Symbol('x')] }, /`value.s\[1\]` is a symbol/],
      [cyclic, /`value.self` refers back to an object that contains it \(a cycle\)/],
      [new Map([['k', new Widget()]]), /`value.get\("k"\)` is an instance of class `Widget`, which is not a model/],
      [new Number(1), /`value` is an instance of class `Number`/],
      // what msgpack would drop from a Date, Map, Set or RegExp: refused, not silently lost
      [Object.assign(new Date(0), { zone: 'UTC' }), /`value` is a Date with own properties `\["zone"\]`, which would not be stored/],
      [{ m: Object.assign(new Map(), { label: 1 }) }, /`value.m` is a Map with own properties `\["label"\]`/],
      [[Object.assign(new Set([1]), { x: 1 })], /`value\[0\]` is a Set with own properties/],
      [Object.assign(/a/g, { lastIndex: 2 }), /`value` is a RegExp with lastIndex 2/],
    ]
    for (const [bad, message] of cases) {
      expect(() => encodeRecord(new Box(3, bad), undefined, 'put')).toThrow(SerializationError)
      expect(() => encodeRecord(new Box(3, bad), undefined, 'put')).toThrow(message)
    }
  })

  it('a getter (or a Proxy trap) that throws is refused with SerializationError naming the path it was read at, keeping the error as cause', () => {
    const boom = new Error('boom')
    const getter = {
      ok: 1,
      get bad(): number {
        throw boom
      },
    }
    const trap = new Proxy(
      {},
      {
        ownKeys: () => {
          throw boom
        },
      },
    )
    const element = Object.defineProperty([1, 2], 1, {
      get: () => {
        throw boom
      },
      enumerable: true,
    })
    const cases: [unknown, RegExp][] = [
      [{ inner: getter }, /put of model `CodecBox`: `value.inner.bad` could not be read: its getter threw \(boom\)/],
      [new Map([['k', [getter]]]), /`value.get\("k"\)\[0\].bad` could not be read: its getter threw \(boom\)/],
      [{ p: trap }, /`value.p` could not be read: reading it threw \(boom\)/],
      [element, /`value\[1\]` could not be read: its getter threw \(boom\)/],
    ]
    for (const [bad, message] of cases) {
      const err = (() => {
        try {
          encodeRecord(new Box(3, bad), undefined, 'put')
        } catch (e) {
          return e
        }
      })()
      expect(err).toBeInstanceOf(SerializationError)
      expect((err as Error).message).toMatch(message)
      expect((err as Error).cause).toBe(boom)
    }
    // an attribute of the instance itself
    const top = Object.defineProperty(new Box(4, 1), 'value', {
      get: () => {
        throw boom
      },
      enumerable: true,
    })
    expect(() => encodeRecord(top, undefined, 'put')).toThrow(/`value` could not be read: its getter threw \(boom\)/)
  })
  it('keeps a Date, Map, Set and RegExp without own properties exactly (a used RegExp back at lastIndex 0)', () => {
    const g = /b/g
    g.test('abc')
    g.lastIndex = 0
    const value = { d: new Date(5), m: new Map([[1, 2]]), s: new Set(['x']), r: /a+/giu, g }
    const back = (decodeRecord(encodeRecord(new Box(9, value), undefined)) as Box).value
    expect(back).toEqual(value)
  })

  it('keeps an own __proto__ key, a lone surrogate and -0 exactly (the cases msgpack alone changes)', () => {
    const value = { data: JSON.parse('{"__proto__": 0}'), s: ['\udc00'], z: -0 }
    Object.defineProperty(value.data, '__proto__', { value: 0n, enumerable: true, writable: true, configurable: true })
    const back = decodeRecord(encodeRecord(new Box(5, value), undefined)) as Box
    assert.deepStrictEqual(back.value, value)
    expect(Object.getPrototypeOf((back.value as typeof value).data)).toBe(Object.prototype)
  })

  it('keeps a RegExp whose source holds a lone surrogate or U+0000 exactly (msgpack alone writes its source as UTF-8)', () => {
    const nul = '\0'
    // sources in variables: a literal would be rewritten by the linter into /[\uD800-\uDBFF]/, whose source is well-formed
    const [highs, low] = ['[\uD800-\uDBFF]', 'a\uDC00']
    const patterns = [new RegExp(highs, 'g'), new RegExp(low, 'u'), new RegExp(`x${nul}y`), /plain/i]
    const value = { patterns, inMap: new Map([[patterns[0], patterns[1]]]), inSet: new Set([patterns[1]]) }
    const back = (decodeRecord(encodeRecord(new Box(6, value), undefined)) as Box).value as typeof value
    assert.deepStrictEqual(back, value)
    for (const [i, pattern] of patterns.entries()) {
      expect(back.patterns[i]).toBeInstanceOf(RegExp)
      expect(back.patterns[i]?.source).toBe(pattern.source)
      expect(back.patterns[i]?.flags).toBe(pattern.flags)
    }
    expect(back.patterns[0]?.test('\uD83D')).toBe(true)
  })

  it('a shared object comes back as equal copies, and a value expanding past the bound is refused before encoding, fast', () => {
    const shared = { n: 1, list: [1, 2] }
    const back = (decodeRecord(encodeRecord(new Box(7, { a: shared, b: shared }), undefined)) as Box).value as Record<string, unknown>
    expect(back.a).toStrictEqual(shared)
    expect(back.b).toStrictEqual(shared)
    expect(back.a).not.toBe(back.b)
    // each level holds the level below twice: 2^n objects once expanded, from 2n in memory
    const dag = (n: number): unknown => {
      let v: unknown = { leaf: 1 }
      for (let i = 0; i < n; i++) v = { a: v, b: v }
      return v
    }
    for (const n of [21, 60]) {
      const started = performance.now()
      expect(() => encodeRecord(new Box(8, dag(n)), undefined, 'put')).toThrow(
        /put of model `CodecBox`: `value` holds more than 1,000,000 objects, arrays, Maps and Sets/,
      )
      expect(performance.now() - started).toBeLessThan(3000)
    }
    // a wide array shared many times: few objects, but every element is visited each time
    const wide = new Array(1_000_000).fill(0)
    expect(() => encodeRecord(new Box(8, Array(20).fill(wide)), undefined, 'put')).toThrow(/more than 10,000,000 elements/)
    // what a legitimate large value holds passes
    const big = {
      rows: Array.from({ length: 100_000 }, (_, i) => ({ i, s: 'x' })),
      index: Object.fromEntries(Array.from({ length: 70_000 }, (_, i) => [`k${i}`, i])),
    }
    expect((decodeRecord(encodeRecord(new Box(9, big), undefined)) as Box).value).toStrictEqual(big)
  })

  it('a read that throws, next to a value past the bounds, is refused fast: the walk naming the path is linear and bounded', () => {
    const boom = new Error('boom')
    // each level holds the level below twice: 2 * 22 arrays in memory, 2^23 once expanded
    let twice: unknown = [1]
    for (let i = 0; i < 22; i++) twice = [twice, twice]
    const refusal = (value: object): Error => {
      const started = performance.now()
      try {
        encodeRecord(value, undefined, 'put')
      } catch (err) {
        expect(performance.now() - started).toBeLessThan(500)
        expect(err).toBeInstanceOf(SerializationError)
        return err as Error
      }
      throw new Error('not refused')
    }
    // a getter throwing only on its first read: the scan stops there, the walk then reads the rest
    const flaky = (value: unknown): Box => {
      let reads = 0
      return Object.defineProperty(new Box(12, value), 'flaky', {
        enumerable: true,
        get: () => {
          if (++reads === 1) throw boom
          return 1
        },
      })
    }
    const once = refusal(flaky(twice))
    expect(once.message).toMatch(/put of model `CodecBox`: the object cannot be encoded \(boom\)/)
    expect(once.cause).toBe(boom)
    // a getter that always throws, after the shared value: found and named
    const after = Object.defineProperty(new Box(13, twice), 'bad', {
      enumerable: true,
      get: () => {
        throw boom
      },
    })
    expect(refusal(after).message).toMatch(/`bad` could not be read: its getter threw \(boom\)/)
    // an object reached twice deeper than the bound allows where it is reached the second time
    let deep: unknown = { leaf: 1 }
    for (let i = 0; i < 250; i++) deep = { d: deep }
    let around: unknown = deep
    for (let i = 0; i < 10; i++) around = [around]
    expect(refusal(new Box(14, { a: deep, b: around, c: () => 1 })).message).toMatch(
      /`value.b(\[0\]){10}(\.d){244}` is nested more than 256 levels deep/,
    )
    // more elements than the bound in one array: not walked element by element
    expect(refusal(flaky(new Array(11_000_000).fill(0))).message).toMatch(/the object cannot be encoded \(boom\)/)
  })

  it('a sparse array with a huge length is scanned and encoded by its elements, not its length', () => {
    // every index the codec reads is counted: far fewer than the length
    const touched = countingIndices(1e9, { 5: { x: 1 }, 999999999: 'z' })
    expect(() => encodeRecord(new Box(11, touched.array), undefined)).not.toThrow()
    expect(touched.count()).toBeLessThan(10_000)
    for (const length of [2 ** 32 - 1, 5000, 1025]) {
      const a: unknown[] = []
      a.length = length
      a[3] = -0
      a[length - 1] = 'last'
      a[length - 2] = '\uDC00'
      const back = (decodeRecord(encodeRecord(new Box(10, { a }), undefined)) as Box).value as { a: unknown[] }
      assert.deepStrictEqual(back.a, a)
      expect(Object.keys(back.a)).toEqual(['3', String(length - 2), String(length - 1)])
    }
  })

  it('never pollutes prototypes from untrusted bytes', () => {
    const evil = JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"x": 1}}}')
    const back = decodeRecord(encodeRecord(new Box(4, evil), undefined)) as Box
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.getPrototypeOf(back.value)).toBe(Object.prototype)
    expect((back.value as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('refuses to construct unregistered classes, and calls a record holding no model instance corrupt', () => {
    const packr = new Packr({ moreTypes: true })
    const forged = packr.pack({ x: 1 })
    const ext = Buffer.concat([Buffer.from([0xd4, MODEL_EXT, 0]), new Packr().pack(['NoSuchModel', 0, { a: 1 }])])
    expect(() => decodeRecord(envelopeOf(forged))).toThrow(CorruptEntryError)
    expect(() => decodeRecord(envelopeOf(ext))).toThrow(UnknownModelError)
  })

  it('treats another stockpyleVersion, another format or garbage as a miss or a CorruptEntryError, never a wrong object', () => {
    class Versioned {
      static readonly stockpyleName = 'CodecVersioned'
      static readonly stockpyleKeys = ['id'] as const
      static readonly stockpyleVersion = 2
      id = 1
    }
    registerModel(Versioned)
    const written = (version: number) =>
      envelopeOf(Buffer.concat([Buffer.from([0xd4, MODEL_EXT, 0]), new Packr().pack(['CodecVersioned', version, { id: 1 }])]))
    expect(decodeRecord(written(2))).toBeInstanceOf(Versioned)
    expect(decodeRecord(written(1))).toBeUndefined()
    expect(decodeRecord(Buffer.from([9, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xc0]))).toBeUndefined()
    expect(() => decodeRecord(Buffer.from([1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x92, 0xd4]))).toThrow(CorruptEntryError)
  })

  it('random, truncated and bit-flipped envelopes give a miss, a model instance or a typed error, never anything else', () => {
    const valid = [
      encodeRecord(new Box(1, { a: [1, 'x', new Date(0)], m: new Map([[1, 2]]) }), 123),
      // biome-ignore lint/suspicious/noSparseArray: a hole is the point
      encodeRecord(new Box(2, { s: '\ud800', z: -0, h: [1, , 2] }), undefined),
      encodeAlias('p:CodecBox|id=n1', undefined),
      encodeTombstone(5),
    ]
    const mutated = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.tuple(fc.constantFrom(...valid), fc.nat()).map(([b, n]) => b.subarray(0, n % (b.length + 1))),
      fc
        .tuple(fc.constantFrom(...valid), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 4 }))
        .map(([b, flips]) => {
          const copy = Buffer.from(b)
          for (const [at, bit] of flips) copy[at % copy.length] = (copy[at % copy.length] as number) ^ (1 << bit)
          return copy
        }),
      fc.uint8Array({ maxLength: 48 }).map((tail) => Buffer.concat([Buffer.from([1, 1, 0, 0, 0, 0, 0, 0, 0, 0]), tail])),
    )
    fc.assert(
      fc.property(mutated, (bytes) => {
        const problem = envelopeProblem(bytes)
        expect(problem === undefined || typeof problem === 'string').toBe(true)
        envelopeExpiry(bytes)
        try {
          const value = decodeRecord(bytes)
          expect(value === undefined || value instanceof Box || value instanceof Inner).toBe(true)
        } catch (err) {
          expect(isStockpyleError(err)).toBe(true)
        }
      }),
      { numRuns: 3000 },
    )
  })

  it('aliases carry their record key', () => {
    expect(decodeAlias(encodeAlias('p:Model|id=n1', 123))).toBe('p:Model|id=n1')
    expect(envelopeExpiry(encodeAlias('k', 123))).toBe(123)
  })
})
