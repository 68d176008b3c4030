import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { encodeLookup, isPrimaryKeyText, keysOfObject, MAX_KEY_LENGTH } from '../../src/core/key-encoding.js'
import { describeModel, escapeKeyText } from '../../src/core/registry.js'
import { InvalidKeyError, keys, MissingKeyAttributeError, UnknownKeyError } from '../../src/index.js'

class Doc {
  static readonly stockpyleName = 'KeyTestDoc'
  static readonly stockpyleKeys = keys('id', ['tenant', 'path'])
  constructor(
    public id: string | number | bigint | boolean,
    public tenant: unknown,
    public path: unknown,
  ) {}
}
const info = describeModel(Doc)
const keyValue = fc.oneof(fc.string({ unit: 'binary' }), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.bigInt(), fc.boolean())
const memcacheSafe = /^[\x21-\x7e]+$/

describe('key encoding', () => {
  it("escapes text exactly as encodeURIComponent with ! ' ( ) * escaped too (keys already stored stay valid)", () => {
    const reference = (text: string): string =>
      encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    const text = fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), fc.emailAddress())
    fc.assert(
      fc.property(
        text.filter((t) => t.isWellFormed()),
        (t) => {
          expect(escapeKeyText(t)).toBe(reference(t))
        },
      ),
    )
    expect(escapeKeyText('user7@example.com')).toBe('user7%40example.com')
    expect(escapeKeyText("a b|c=d!'()*é😀")).toBe(reference("a b|c=d!'()*é😀"))
  })

  it('is safe for memcached: printable ASCII, no spaces, at most MAX_KEY_LENGTH', () => {
    fc.assert(
      fc.property(keyValue, keyValue, (tenant, path) => {
        const key = encodeLookup(info, { tenant, path }, 'test')
        expect(key).toMatch(memcacheSafe)
        expect(key.length).toBeLessThanOrEqual(MAX_KEY_LENGTH)
      }),
    )
  })

  it('does not depend on field order and is what keysOfObject gives for the object', () => {
    fc.assert(
      fc.property(keyValue, keyValue, keyValue, (id, tenant, path) => {
        const a = encodeLookup(info, { tenant, path }, 'test')
        expect(encodeLookup(info, { path, tenant }, 'test')).toBe(a)
        const objKeys = keysOfObject(info, new Doc(id as string, tenant, path), false, 'test')
        expect(objKeys.aliases).toEqual([a])
        expect(objKeys.record).toBe(encodeLookup(info, { id }, 'test'))
      }),
    )
  })

  it('is injective over type-tagged values: different values or types give different keys', () => {
    fc.assert(
      fc.property(keyValue, keyValue, (x, y) => {
        const same = typeof x === typeof y && (x === y || (typeof x === 'number' && Object.is(x + 0, (y as number) + 0)))
        const kx = encodeLookup(info, { id: x }, 'test')
        const ky = encodeLookup(info, { id: y }, 'test')
        expect(kx === ky).toBe(same)
      }),
    )
  })

  it('tags types: 1, "1", 1n and true are four keys; -0 is 0', () => {
    const k = (id: unknown) => encodeLookup(info, { id }, 'test')
    expect(new Set([k(1), k('1'), k(1n), k(true)]).size).toBe(4)
    expect(k(-0)).toBe(k(0))
    expect(k('a b')).toBe('KeyTestDoc|id=sa%20b')
  })

  it('hashes long keys deterministically and keeps a readable head', () => {
    const long = 'x'.repeat(5000)
    const key = encodeLookup(info, { id: long }, 'test')
    expect(key.length).toBeLessThanOrEqual(MAX_KEY_LENGTH)
    expect(key.startsWith('KeyTestDoc|id=sxxx')).toBe(true)
    expect(encodeLookup(info, { id: long }, 'test')).toBe(key)
    expect(encodeLookup(info, { id: `${long}y` }, 'test')).not.toBe(key)
    // the same text in every version and process: the head, `#` and the digest of the whole key
    const whole = `KeyTestDoc|id=s${long}`
    expect(key).toBe(`${whole.slice(0, MAX_KEY_LENGTH - 44)}#${createHash('sha256').update(whole).digest('base64url')}`)
    expect(key).toHaveLength(MAX_KEY_LENGTH)
  })

  it('tells a primary key by its text, and never calls an alternate key one', () => {
    class Pair {
      static readonly stockpyleName = 'Key Test Pair'
      static readonly stockpyleKeys = keys(['a', 'b'], 'c', ['a', 'd'])
    }
    const pair = describeModel(Pair)
    fc.assert(
      fc.property(keyValue, keyValue, (x, y) => {
        fc.pre([x, y].every((v) => typeof v !== 'string' || v.isWellFormed()))
        const id = encodeLookup(info, { id: x }, 'test')
        // a key over MAX_KEY_LENGTH is cut to a head, `#` and a digest that no longer tell which key it was
        expect(isPrimaryKeyText(id)).toBe(!id.includes('#'))
        expect(isPrimaryKeyText(encodeLookup(info, { tenant: x, path: y }, 'test'))).toBe(false)
        const ab = encodeLookup(pair, { a: x, b: y }, 'test')
        expect(isPrimaryKeyText(ab)).toBe(!ab.includes('#'))
        expect(isPrimaryKeyText(encodeLookup(pair, { c: x }, 'test'))).toBe(false)
        expect(isPrimaryKeyText(encodeLookup(pair, { a: x, d: y }, 'test'))).toBe(false)
      }),
    )
    // a model not registered in this process, and text that is no key
    for (const text of ['Unknown|id=n1', 'KeyTestDoc', '', 'KeyTestDoc|tenant=n1']) expect(isPrimaryKeyText(text)).toBe(false)
  })

  it('rejects bad lookups and values with typed errors naming the model', () => {
    expect(() => encodeLookup(info, { id: 1, tenant: 2 }, 'get')).toThrow(UnknownKeyError)
    expect(() => encodeLookup(info, { tenant: 1 }, 'get')).toThrow(/KeyTestDoc/)
    expect(() => encodeLookup(info, null, 'get')).toThrow(UnknownKeyError)
    for (const bad of [Number.NaN, Number.NEGATIVE_INFINITY, null, undefined, {}, [], Symbol('s'), '\uDC00x'])
      expect(() => encodeLookup(info, { id: bad }, 'get')).toThrow(InvalidKeyError)
    expect(() => keysOfObject(info, new Doc(1, undefined, 'p'), false, 'put')).toThrow(MissingKeyAttributeError)
    expect(() => keysOfObject(info, new Doc(1, {}, 'p'), false, 'put')).toThrow(InvalidKeyError)
  })
})
