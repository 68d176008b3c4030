import assert from 'node:assert/strict'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { SerializationError, UnknownModelError } from '../../src/core/errors.js'
import { fromTaggedJson, toTaggedJson } from '../../src/stores/sql/index.js'
import { fromParsedJson } from '../../src/stores/sql/json-codec.js'
import { ConformanceUser, makeUser } from '../../src/testing/index.js'

/** Encodes, goes through JSON text (as a column does), and decodes. */
const roundTrip = (value: unknown): unknown => fromTaggedJson(JSON.parse(JSON.stringify(toTaggedJson(value, 'test'))), 'test')

describe('tagged JSON (SqlStore JSON columns)', () => {
  it('keeps plain JSON as itself', () => {
    const plain = { a: [1, 'x', true, null, { b: 2.5 }], s: 'text' }
    expect(toTaggedJson(plain, 'test')).toEqual(plain)
    expect(roundTrip(plain)).toEqual(plain)
  })

  it('round-trips Date, bigint, Map, Set, bytes, typed arrays, undefined and special numbers with their types', () => {
    const value = {
      when: new Date(Date.UTC(2024, 1, 29, 23, 59, 59, 999)),
      invalid: new Date(Number.NaN),
      big: -123456789012345678901234567890n,
      map: new Map<unknown, unknown>([
        [1, 'one'],
        ['k', new Set([1n, 'x'])],
        [{ obj: true }, [new Date(0)]],
      ]),
      set: new Set([1, 'a', null]),
      bytes: new Uint8Array([0, 255, 7]),
      buffer: Buffer.from('héllo'),
      floats: new Float64Array([1.5, -0, Number.NaN]),
      bigs: new BigInt64Array([-1n, 2n ** 62n]),
      nothing: undefined,
      holes: [1, undefined, 3],
      nums: [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 0],
    }
    const back = roundTrip(value) as typeof value
    expect(back).toStrictEqual(value)
    expect(back.bytes.constructor).toBe(Uint8Array)
    expect(Buffer.isBuffer(back.buffer)).toBe(true)
    expect(Object.is(back.nums[3], -0)).toBe(true)
    expect(Object.hasOwn(back, 'nothing')).toBe(true)
  })

  it('escapes user objects that look like tags, so data is never read as a tag', () => {
    const tricky = { $date: 'not a date' }
    const nested = { a: { $map: 5 }, b: { $object: { $set: [] } }, c: { $x: 1, $y: 2 } }
    expect(roundTrip(tricky)).toStrictEqual(tricky)
    expect(roundTrip(nested)).toStrictEqual(nested)
    expect(JSON.stringify(toTaggedJson(tricky, 't'))).toBe('{"$object":{"$date":"not a date"}}')
  })

  it('keeps __proto__ as data and never changes a prototype', () => {
    const value = JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}')
    const back = roundTrip(value) as Record<string, unknown>
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype)
    expect(Object.hasOwn(back, '__proto__')).toBe(true)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('restores nested model instances with their prototype', () => {
    const user = makeUser(7)
    const back = roundTrip({ owner: user }) as { owner: ConformanceUser }
    expect(back.owner).toBeInstanceOf(ConformanceUser)
    expect(back.owner).toStrictEqual(user)
  })

  it('rejects an unregistered model tag with UnknownModelError', () => {
    expect(() => fromTaggedJson({ $model: ['NoSuchModelAnywhere', {}] }, 'test')).toThrow(UnknownModelError)
  })

  it('rejects functions, symbols, cycles and instances of other classes with SerializationError naming the path', () => {
    const cycle: Record<string, unknown> = {}
    cycle.self = cycle
    class NotAModel {}
    const cases: [unknown, RegExp][] = [
      [{ f: () => 1 }, /attribute `meta` at `f` holds `\[function f\]`/],
      [{ a: [0, { s: Symbol('x') }] }, /at `a\[1\].s` holds `Symbol\(x\)`/],
      [cycle, /at `self` holds a cycle/],
      [{ m: new Map([['k', new NotAModel()]]) }, /at `m.get\("k"\)` holds an instance of class `NotAModel`/],
      [{ n: new Number(1) }, /at `n` holds an instance of class `Number`/],
    ]
    for (const [bad, message] of cases) {
      expect(() => toTaggedJson(bad, 'model `X` attribute `meta`')).toThrow(SerializationError)
      expect(() => toTaggedJson(bad, 'model `X` attribute `meta`')).toThrow(message)
    }
  })

  it('round-trips lone surrogates, U+0000, holes, null prototypes, own __proto__/constructor keys, RegExp and ArrayBuffer', () => {
    const nullProto = Object.assign(Object.create(null), { a: 1, '\uDC00': 2 })
    const value = {
      lone: ['\uD800', 'a\uDC00b', 'nul\u0000'],
      map: new Map([['\uDC00', '\u0000']]),
      keys: { '\uD800': 1, 'x\u0000': 2 },
      // biome-ignore lint/suspicious/noSparseArray: a hole is the point
      holes: [1, , 3],
      nullProto,
      own: JSON.parse('{"__proto__": 1, "constructor": {"prototype": 2}}'),
      re: /a.b/gi,
      ab: new Uint8Array([1, 2]).buffer,
      dv: new DataView(new Uint8Array([3]).buffer),
    }
    const back = roundTrip(value) as typeof value
    // node:assert, because vitest's toStrictEqual compares `constructor` properties as classes
    assert.deepStrictEqual(back, value)
    expect(JSON.stringify(toTaggedJson(value, 't'))).not.toMatch(/\\u0000|\\ud8/i)
    expect(Object.getPrototypeOf(back.nullProto)).toBe(null)
    expect(1 in back.holes).toBe(false)
  })

  it('tags a RegExp source holding a lone surrogate or U+0000 like any such string, and still reads the untagged form', () => {
    const nul = '\0'
    // sources in variables: a literal would be rewritten by the linter into /[\uD800-\uDBFF]/, whose source is well-formed
    const [highs, low] = ['[\uD800-\uDBFF]', 'a\uDC00']
    const value = { high: new RegExp(highs, 'g'), low: new RegExp(low, 'u'), nul: new RegExp(`x${nul}y`), plain: /a.b/i }
    const text = JSON.stringify(toTaggedJson(value, 't'))
    expect(text).not.toMatch(/\\u0000|\\ud[89a-f]/i)
    const back = roundTrip(value) as typeof value
    assert.deepStrictEqual(back, value)
    expect(back.high.test('\uD83D')).toBe(true)
    expect(JSON.stringify(toTaggedJson(/a.b/i, 't'))).toBe('{"$regexp":["a.b","i"]}')
    expect(fromTaggedJson({ $regexp: ['x+', 'g'] }, 't')).toStrictEqual(/x+/g)
  })

  it('writes a long sparse array by its elements ($sparse), and still reads arrays with $hole', () => {
    const a: unknown[] = []
    a.length = 1e8
    a[2] = 'two'
    a[1e8 - 1] = new Date(0)
    const tagged = toTaggedJson({ a }, 't')
    expect(JSON.stringify(tagged)).toBe('{"a":{"$sparse":[100000000,[[2,"two"],[99999999,{"$date":"1970-01-01T00:00:00.000Z"}]]]}}')
    for (const decode of [fromTaggedJson, fromParsedJson]) {
      const back = (decode(JSON.parse(JSON.stringify(tagged)), 't') as { a: unknown[] }).a
      expect(back.length).toBe(1e8)
      expect(Object.keys(back)).toEqual(['2', '99999999'])
      expect(back[1e8 - 1]).toStrictEqual(new Date(0))
    }
    // a short array with holes keeps the inline form, which stored rows hold
    // biome-ignore lint/suspicious/noSparseArray: a hole is the point
    const short = [1, , 3]
    expect(JSON.stringify(toTaggedJson(short, 't'))).toBe('[1,{"$hole":0},3]')
    expect(fromParsedJson(JSON.parse('[1,{"$hole":0},3]'), 't')).toStrictEqual(short)
    // a malformed $sparse is refused, not read as something else; one of another shape is hand-written JSON
    for (const bad of [
      [-1, []],
      [3, [[3, 'x']]],
      [2 ** 32, []],
      [3, [['1', 'x']]],
      [3, [[0]]],
    ]) {
      expect(() => fromTaggedJson({ $sparse: bad }, 't')).toThrow(SerializationError)
    }
    expect(fromTaggedJson({ $sparse: [3, 'x'] }, 't')).toStrictEqual({ $sparse: [3, 'x'] })
  })

  it('refuses a value expanding past the bound (a shared object counts each time) before writing JSON, fast', () => {
    let dag: unknown = { leaf: 1 }
    for (let i = 0; i < 60; i++) dag = { a: dag, b: dag }
    const started = performance.now()
    expect(() => toTaggedJson({ dag }, 'model `X` attribute `meta`')).toThrow(
      /model `X` attribute `meta` holds more than 1,000,000 objects, arrays, Maps and Sets/,
    )
    expect(performance.now() - started).toBeLessThan(3000)
    const wide = new Array(1_000_000).fill(0)
    expect(() => toTaggedJson(Array(20).fill(wide), 'model `X` attribute `meta`')).toThrow(/more than 10,000,000 elements/)
    const shared = { n: 1 }
    const back = roundTrip({ a: shared, b: shared }) as Record<string, unknown>
    expect(back.a).toStrictEqual(shared)
    expect(back.a).not.toBe(back.b)
  })

  it('a read that throws twice, before a value past the bounds, is refused fast (the walk naming the path is bounded)', () => {
    const boom = new Error('boom')
    let twice: unknown = [1]
    for (let i = 0; i < 22; i++) twice = [twice, twice]
    let reads = 0
    // throws when the encoder reads it and when the scan of the bounds does; the walk naming the path then reads the rest
    const value = Object.defineProperty({}, 'flaky', {
      enumerable: true,
      get: () => {
        if (++reads <= 2) throw boom
        return 1
      },
    })
    Object.assign(value, { twice })
    const started = performance.now()
    expect(() => toTaggedJson(value, 'model `X` attribute `meta`')).toThrow(
      /model `X` attribute `meta` could not be encoded: reading it threw \(boom\)/,
    )
    expect(performance.now() - started).toBeLessThan(500)
    expect(reads).toBe(3)
  })

  it('reads hand-written JSON with unknown $ keys as plain objects', () => {
    expect(fromTaggedJson({ $unknown: 1 }, 't')).toStrictEqual({ $unknown: 1 })
    expect(fromTaggedJson({ $bigint: 'abc' }, 't')).toStrictEqual({ $bigint: 'abc' })
  })

  it('decodes a freshly parsed value in place exactly as fromTaggedJson decodes a copy', () => {
    const leaf = fc.oneof(
      fc.string(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.constant(undefined),
      fc.bigInt(),
      fc.date(),
      fc.uint8Array({ maxLength: 4 }),
    )
    const sparse = fc.sparseArray(fc.oneof(fc.integer(), fc.string()), { maxLength: 4 })
    const tree = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        leaf,
        sparse,
        fc.array(tie('node'), { maxLength: 4 }),
        fc.dictionary(fc.string(), tie('node'), { maxKeys: 4 }),
      ),
    })).node
    fc.assert(
      fc.property(tree, (value) => {
        const text = JSON.stringify(toTaggedJson(value, 'test'))
        expect(fromParsedJson(JSON.parse(text), 'test')).toStrictEqual(fromTaggedJson(JSON.parse(text), 'test'))
      }),
    )
    const parsed = JSON.parse('{"__proto__": [{"$date": "2024-01-01T00:00:00.000Z"}], "$x": 1}')
    const decoded = fromParsedJson(parsed, 'test') as Record<string, unknown>
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype)
    expect(Object.hasOwn(decoded, '__proto__')).toBe(true)
    expect(Object.getOwnPropertyDescriptor(decoded, '__proto__')?.value).toStrictEqual([new Date('2024-01-01T00:00:00.000Z')])
  })
})
