import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ValueTooLargeError } from '../../src/index.js'
import { decodeMessage, encodeMessages } from '../../src/invalidation/bus-message.js'
import { parseRowChange } from '../../src/invalidation/row-change.js'

describe('bus messages', () => {
  it('split keys into messages of at most maxBytes (UTF-8) that decode to the same keys, in order', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'grapheme', maxLength: 60 })), fc.integer({ min: 300, max: 2000 }), (keys, maxBytes) => {
        const messages = encodeMessages('test', 'origin', keys, maxBytes)
        for (const m of messages) expect(Buffer.byteLength(m)).toBeLessThanOrEqual(maxBytes)
        const decoded = messages.map((m) => decodeMessage(m))
        expect(decoded.every((d) => d?.o === 'origin' && d.k.length > 0)).toBe(true)
        expect(decoded.flatMap((d) => d?.k ?? [])).toEqual(keys)
      }),
    )
  })

  it('a key that cannot fit into one message is a ValueTooLargeError; no keys, no messages', () => {
    expect(() => encodeMessages('test', 'origin', ['x'.repeat(100)], 60)).toThrow(ValueTooLargeError)
    expect(encodeMessages('test', 'origin', [], 7999)).toEqual([])
  })

  it('decodes only {o: string, k: string[]}', () => {
    expect(decodeMessage('{"o":"a","k":["x"]}')).toEqual({ o: 'a', k: ['x'] })
    for (const bad of ['', 'null', '[]', '{"o":1,"k":[]}', '{"o":"a","k":"x"}', '{"o":"a","k":[1]}', '{"o":"a"}']) {
      expect(decodeMessage(bad)).toBeUndefined()
    }
  })
})

describe('row changes', () => {
  it('parses what the triggers send and rejects anything else', () => {
    expect(parseRowChange('{"table":"public.t","op":"UPDATE","pk":{"id":"1"}}')).toEqual({
      table: 'public.t',
      op: 'UPDATE',
      pk: { id: '1' },
    })
    expect(parseRowChange('{"table":"public.t","op":"UPDATE","pk":{"id":"2"},"old_pk":{"id":"1"}}')).toEqual({
      table: 'public.t',
      op: 'UPDATE',
      pk: { id: '2' },
      old_pk: { id: '1' },
    })
    expect(parseRowChange('{"table":"public.t","op":"TRUNCATE"}')).toEqual({ table: 'public.t', op: 'TRUNCATE' })
    expect(parseRowChange('{"table":"public.t","op":"INSERT","overflow":true}')).toEqual({
      table: 'public.t',
      op: 'INSERT',
      overflow: true,
    })
    expect(parseRowChange('{"table":"public.t","op":"DELETE","overflow":true,"error":"record \\"old\\" has no field \\"id\\""}')).toEqual({
      table: 'public.t',
      op: 'DELETE',
      overflow: true,
      error: 'record "old" has no field "id"',
    })
    for (const bad of [
      'x',
      '{}',
      '{"table":"t","op":"MERGE","pk":{}}',
      '{"table":"t","op":"DELETE"}',
      '{"table":"t","op":"DELETE","pk":{"id":1}}',
    ]) {
      expect(parseRowChange(bad)).toBeUndefined()
    }
  })
})
