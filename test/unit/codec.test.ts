import fc from 'fast-check'
import { Packr } from 'msgpackr'
import { describe, expect, it } from 'vitest'
import { decodeAlias, decodeRecord, encodeAlias, encodeRecord, envelopeExpiry, HEADER_SIZE, MODEL_EXT } from '../../src/core/codec.js'
import { registerModel, SerializationError, UnknownModelError } from '../../src/index.js'

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

// Values the codec promises to keep: JSON-like trees with Dates, bigints, Maps, Sets and bytes.
const leaf = fc.oneof(
  fc.string(),
  fc.double().map((x) => (x === 0 ? 0 : x)), // msgpack has no -0: it reads back as 0 (documented)
  fc.bigInt(),
  fc.boolean(),
  fc.constant(null),
  fc.date({ noInvalidDate: true }),
  fc.uint8Array().map((a) => new Uint8Array(a)),
  fc.uint8Array().map((a) => Buffer.from(a)),
)
const { tree } = fc.letrec((tie) => ({
  tree: fc.oneof({ depthSize: 'small' }, leaf, tie('array'), tie('object'), tie('map'), tie('set')),
  array: fc.array(tie('tree'), { maxLength: 4 }),
  // `__proto__` keys are renamed `__proto_` on decode (documented: they can never reach a prototype)
  object: fc.dictionary(
    fc.string().filter((k) => k !== '__proto__'),
    tie('tree'),
    { maxKeys: 4, noNullPrototype: true },
  ),
  map: fc.array(fc.tuple(fc.string(), tie('tree')), { maxLength: 3 }).map((e) => new Map(e)),
  set: fc.array(fc.oneof(fc.string(), fc.integer()), { maxLength: 3 }).map((e) => new Set(e)),
}))

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
        expect(back).toStrictEqual(box)
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

  it('rejects functions, symbols and cycles with SerializationError', () => {
    expect(() => encodeRecord(new Box(3, () => 1), undefined, 'put')).toThrow(SerializationError)
    expect(() => encodeRecord(new Box(3, { s: Symbol('x') }), undefined, 'put')).toThrow(SerializationError)
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(() => encodeRecord(new Box(3, cyclic), undefined, 'put')).toThrow(/cycle/)
  })

  it('never pollutes prototypes from untrusted bytes', () => {
    const evil = JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"x": 1}}}')
    const back = decodeRecord(encodeRecord(new Box(4, evil), undefined)) as Box
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.getPrototypeOf(back.value)).toBe(Object.prototype)
    expect((back.value as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('refuses to construct unregistered classes', () => {
    const packr = new Packr({ moreTypes: true })
    const forged = packr.pack({ x: 1 })
    const ext = Buffer.concat([Buffer.from([0xd4, MODEL_EXT, 0]), new Packr().pack(['NoSuchModel', 0, { a: 1 }])])
    expect(decodeRecord(envelopeOf(forged))).toEqual({ x: 1 })
    expect(() => decodeRecord(envelopeOf(ext))).toThrow(UnknownModelError)
  })

  it('treats another stockpyleVersion, another format or garbage as a miss or a SerializationError, never a wrong object', () => {
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
    expect(() => decodeRecord(Buffer.from([1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x92, 0xd4]))).toThrow(SerializationError)
  })

  it('aliases carry their record key', () => {
    expect(decodeAlias(encodeAlias('p:Model|id=n1', 123))).toBe('p:Model|id=n1')
    expect(envelopeExpiry(encodeAlias('k', 123))).toBe(123)
  })
})
