import { describe, expect, it } from 'vitest'
import { SerializationError, UnknownModelError } from '../../src/core/errors.js'
import { fromTaggedJson, toTaggedJson } from '../../src/stores/sql/index.js'
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

  it('rejects functions, symbols, cycles and lone surrogates with SerializationError naming the place', () => {
    const cycle: Record<string, unknown> = {}
    cycle.self = cycle
    for (const bad of [{ f: () => 1 }, { s: Symbol('x') }, cycle, { t: '\uD800' }, new Map([['\uDC00', 1]])]) {
      expect(() => toTaggedJson(bad, 'model `X` attribute `meta`')).toThrow(SerializationError)
      expect(() => toTaggedJson(bad, 'model `X` attribute `meta`')).toThrow(/attribute `meta`/)
    }
  })

  it('reads hand-written JSON with unknown $ keys as plain objects', () => {
    expect(fromTaggedJson({ $unknown: 1 }, 't')).toStrictEqual({ $unknown: 1 })
    expect(fromTaggedJson({ $bigint: 'abc' }, 't')).toStrictEqual({ $bigint: 'abc' })
  })
})
