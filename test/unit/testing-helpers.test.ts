import { describe, expect, it } from 'vitest'
import { InvalidArgumentError, InvalidOptionError, KeyValueStore, ProcessMemoryStore } from '../../src/index.js'
import { ConformanceUser, ManualClock, MapBackend, makeUser } from '../../src/testing/index.js'

// The stockpyle/testing helpers refuse bad input with stockpyle's typed errors, as the stores do:
// InvalidOptionError from a constructor, InvalidArgumentError from a method.
describe('ManualClock', () => {
  it('refuses a start that is not a finite number of ms (new ManualClock("abc").now() returned "abc")', () => {
    for (const bad of ['abc', Number.NaN, Number.POSITIVE_INFINITY, null, 10n, new Date(0)]) {
      expect(() => new ManualClock(bad as never), String(bad)).toThrow(InvalidOptionError)
    }
    expect(() => new ManualClock('abc' as never)).toThrow('ManualClock: start must be a finite number of ms since the epoch, got "abc"')
    expect(new ManualClock(5).now()).toBe(5)
    expect(new ManualClock(-5).now()).toBe(-5)
    expect(Math.abs(new ManualClock().now() - Date.now())).toBeLessThan(1000)
  })

  it('advance refuses what is not a finite number of ms, leaving the time as it was (advance(NaN) made every expiry never come)', async () => {
    const clock = new ManualClock(1000)
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, '5', undefined, 5n]) {
      expect(() => clock.advance(bad as never), String(bad)).toThrow(InvalidArgumentError)
    }
    expect(() => clock.advance(Number.NaN)).toThrow('ManualClock.advance: ms must be a finite number, got NaN')
    expect(clock.now()).toBe(1000)
    // nor a step that would take the time past what a number holds
    expect(() => new ManualClock(Number.MAX_VALUE).advance(Number.MAX_VALUE)).toThrow(InvalidArgumentError)
    const store = new ProcessMemoryStore({ clock, lifetime: 5 })
    await store.put(makeUser(1))
    clock.advance(5000)
    expect(await store.get(ConformanceUser, { id: 1 })).toBeUndefined()
    clock.advance(-2000) // (a system clock may be set back too)
    expect(clock.now()).toBe(4000)
  })
})

describe('MapBackend', () => {
  it('refuses a time source that is not a function (a clock object is named as such)', async () => {
    for (const bad of ['x', 5, null, {}]) expect(() => new MapBackend(bad as never), String(bad)).toThrow(InvalidOptionError)
    expect(() => new MapBackend('x' as never)).toThrow('MapBackend: now must be a function returning ms since the epoch, got "x"')
    expect(() => new MapBackend(new ManualClock(0) as never)).toThrow(
      /MapBackend: now must be a function .*for a clock, pass \(\) => clock\.now\(\)/,
    )
    const clock = new ManualClock(0)
    const store = new KeyValueStore(new MapBackend(() => clock.now()), { clock, lifetime: 1 })
    await store.put(makeUser(1))
    expect((await store.get(ConformanceUser, { id: 1 }))?.id).toBe(1)
    clock.advance(1000)
    expect(await store.get(ConformanceUser, { id: 1 })).toBeUndefined()
  })
})
