import { describe, expect, it } from 'vitest'
import { WriteClock } from '../../src/chain/write-clock.js'

describe('WriteClock', () => {
  it('tells a read which keys were written after it began, whichever reads overlap it', () => {
    const clock = new WriteClock()
    const a = clock.beginRead()
    const b = clock.beginRead() // same stamp as a
    clock.mark(['k1'])
    const c = clock.beginRead() // after the write of k1
    clock.mark(['k2'])
    expect(clock.keyWrittenSince('k1', a)).toBe(true)
    expect(clock.keyWrittenSince('k1', b)).toBe(true)
    expect(clock.keyWrittenSince('k1', c)).toBe(false)
    expect(clock.keyWrittenSince('k2', c)).toBe(true)
    expect(clock.writtenSince(['k0', 'k2'], c)).toBe(true)
    expect(clock.writtenSince(['k0', 'k1'], c)).toBe(false)
    // a and b end: c is still in flight, so the stamps stay for it
    clock.endRead(a)
    clock.endRead(b)
    expect(clock.reading).toBe(true)
    expect(clock.keyWrittenSince('k2', c)).toBe(true)
    clock.endRead(c)
    expect(clock.reading).toBe(false)
  })

  it('keeps no stamps while no read is in flight, and stamps again once one begins', () => {
    const clock = new WriteClock()
    clock.mark(['k1'])
    const started = clock.beginRead()
    expect(clock.keyWrittenSince('k1', started)).toBe(false)
    clock.mark(['k1'])
    expect(clock.keyWrittenSince('k1', started)).toBe(true)
    expect(clock.anyWrittenSince(started)).toBe(true)
    clock.endRead(started)
    expect(clock.reading).toBe(false)
    // the stamps were dropped with the last read: a new read sees nothing written since it began
    const next = clock.beginRead()
    expect(clock.keyWrittenSince('k1', next)).toBe(false)
    clock.endRead(next)
  })

  it('counts reads that began at an older stamp apart from the newest ones', () => {
    const clock = new WriteClock()
    const old = clock.beginRead()
    clock.mark(['x'])
    const newer = clock.beginRead()
    clock.endRead(newer)
    // the older read is still in flight: writes must still be stamped for it
    expect(clock.reading).toBe(true)
    clock.mark(['y'])
    expect(clock.keyWrittenSince('y', old)).toBe(true)
    clock.endRead(old)
    expect(clock.reading).toBe(false)
  })

  it('still answers right after pruning, once more than 10,000 stamps pile up', () => {
    const clock = new WriteClock()
    const old = clock.beginRead()
    for (let i = 0; i < 10_001; i++) clock.mark([`early${i}`])
    const late = clock.beginRead()
    clock.mark(['late'])
    clock.endRead(old) // prunes: `late` began after every early write
    expect(clock.keyWrittenSince('early0', late)).toBe(false)
    expect(clock.keyWrittenSince('late', late)).toBe(true)
    clock.endRead(late)
  })

  it('a clear of the caches counts as a write of every key for the reads in flight', () => {
    const clock = new WriteClock()
    const started = clock.beginRead()
    clock.markAll()
    expect(clock.keyWrittenSince('anything', started)).toBe(true)
    expect(clock.writtenSince(['a', 'b'], started)).toBe(true)
    clock.endRead(started)
  })
})
