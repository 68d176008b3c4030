/**
 * WriteOverlaps: which database writes of one object in this process overlapped (their replies may
 * come in another order than the database applied them, so their cache updates tell nothing).
 */
import { describe, expect, it } from 'vitest'
import { WriteOverlaps } from '../../src/chain/write-overlaps.js'

describe('WriteOverlaps', () => {
  it('writes one after another, or of other objects, do not overlap', () => {
    const o = new WriteOverlaps()
    const a = o.begin(['k1', 'k2'])
    expect(o.end(a)).toBeUndefined()
    const b = o.begin(['k1'])
    const c = o.begin(['k3', undefined])
    expect(o.end(b)).toBeUndefined()
    expect(o.end(c)).toBeUndefined()
  })

  it('two writes of a key in flight together both overlap, whichever ends first; their other keys do not', () => {
    for (const firstEnds of [true, false]) {
      const o = new WriteOverlaps()
      const a = o.begin(['k1', 'k2'])
      const b = o.begin(['k3', 'k1'])
      const [x, y] = firstEnds ? [a, b] : [b, a]
      const first = o.end(x)
      const second = o.end(y)
      expect([...(first ?? [])]).toEqual([x === a ? 0 : 1])
      expect([...(second ?? [])]).toEqual([y === a ? 0 : 1])
      // and afterwards the key is forgotten: a new write overlaps nothing
      expect(o.end(o.begin(['k1']))).toBeUndefined()
    }
  })

  it('a write that names no object (a delete by an alternate key) overlaps every write in flight with it', () => {
    const o = new WriteOverlaps()
    const a = o.begin(['k1'])
    const unnamed = o.begin([], true)
    expect(o.end(unnamed)).toBeUndefined() // it has no keys to tell of
    expect([...(o.end(a) ?? [])]).toEqual([0])
    expect(o.end(o.begin(['k1']))).toBeUndefined()
  })

  it('a transaction overlaps a write of its keys that ended during it or is in flight at its commit, which then sees the commit', () => {
    const o = new WriteOverlaps()
    const started = o.openTransaction()
    o.end(o.begin(['ended-during'])) // ended while the transaction ran
    const inFlight = o.begin(['in-flight'])
    expect([...(o.committed(started, ['ended-during', 'in-flight', 'untouched', undefined]) ?? [])]).toEqual([0, 1])
    expect([...(o.end(inFlight) ?? [])]).toEqual([0])
    o.closeTransaction(started)
    // once no transaction runs, ended writes are forgotten
    expect(o.end(o.begin(['ended-during']))).toBeUndefined()
    const later = o.openTransaction()
    expect(o.committed(later, ['ended-during'])).toBeUndefined()
    o.closeTransaction(later)
  })

  it('a batch naming one object twice does not overlap itself', () => {
    const o = new WriteOverlaps()
    expect(o.end(o.begin(['k1', 'k2', 'k1']))).toBeUndefined()
    const a = o.begin(['k1', 'k1'])
    const b = o.begin(['k1'])
    expect([...(o.end(a) ?? [])]).toEqual([0, 1])
    expect([...(o.end(b) ?? [])]).toEqual([0])
  })

  it('an invalidation while a write of the object is in flight, or while a transaction runs, makes it drop its copies', () => {
    const o = new WriteOverlaps()
    const a = o.begin(['k1', 'k2'])
    o.invalidated(['k1'], false)
    expect([...(o.end(a) ?? [])]).toEqual([0])
    const b = o.begin(['k3'])
    o.invalidated([], true) // by an alternate key: any object
    expect([...(o.end(b) ?? [])]).toEqual([0])
    const started = o.openTransaction()
    o.invalidated(['k4'], false)
    expect([...(o.committed(started, ['k4', 'k5']) ?? [])]).toEqual([0])
    o.closeTransaction(started)
    // with nothing in flight and no transaction, an invalidation leaves nothing behind
    o.invalidated(['k6'], false)
    expect(o.end(o.begin(['k6']))).toBeUndefined()
  })

  it('two transactions committing one object: the second to commit sees the first', () => {
    const o = new WriteOverlaps()
    const t1 = o.openTransaction()
    const t2 = o.openTransaction()
    expect(o.committed(t2, ['k1'])).toBeUndefined()
    expect([...(o.committed(t1, ['k1']) ?? [])]).toEqual([0])
    o.closeTransaction(t2)
    o.closeTransaction(t1)
  })

  it('keys are forgotten once no running transaction began before their last write, even while transactions always run', () => {
    const o = new WriteOverlaps()
    let open = o.openTransaction()
    for (let i = 0; i < 1000; i++) {
      o.end(o.begin([`k${i}`]))
      // transactions overlap one another: one always runs
      const next = o.openTransaction()
      o.closeTransaction(open)
      open = next
    }
    // only what the one running transaction may still commit against is kept: the keys written since it began
    const kept = o.committed(
      open,
      Array.from({ length: 1000 }, (_, i) => `k${i}`),
    )
    expect(kept).toBeUndefined()
    o.closeTransaction(open)
  })
})
