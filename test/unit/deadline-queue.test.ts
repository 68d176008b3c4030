/**
 * DeadlineQueue / withTimeout: deadlines of one duration share one timer. Each deadline fires at its
 * own time (never early, never with a neighbour's), a cancelled one never fires, and the shared timer
 * keeps the process alive exactly while a referenced deadline is pending (child processes: a pending
 * LoaderStore load with a `timeout` still rejects; a script whose calls all settled exits at once).
 */
import { execFile } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { DeadlineQueue } from '../../src/core/deadline-queue.js'
import { withTimeout } from '../../src/core/with-timeout.js'

const never = (): Promise<never> => new Promise<never>(() => {})

describe('DeadlineQueue', () => {
  it('fires each deadline at its own time, in order, and never a cancelled one', async () => {
    const queue = new DeadlineQueue(40)
    const fired: [string, number][] = []
    const start = performance.now()
    const at = (name: string) => () => fired.push([name, performance.now() - start])
    queue.add(at('a'), true)
    const b = queue.add(at('b'), true)
    await new Promise((resolve) => setTimeout(resolve, 25))
    queue.add(at('c'), true)
    queue.cancel(b)
    await new Promise((resolve) => setTimeout(resolve, 80))
    expect(fired.map(([name]) => name)).toEqual(['a', 'c'])
    const [[, a], [, c]] = fired as [[string, number], [string, number]]
    expect(a).toBeGreaterThanOrEqual(39)
    // c was set 25 ms after a: it falls due then, not with a
    expect(c).toBeGreaterThanOrEqual(64)
    expect(c - a).toBeGreaterThanOrEqual(20)
  })

  it('keeps working after thousands of deadlines set and cancelled in turn', async () => {
    const queue = new DeadlineQueue(30)
    let fired = 0
    for (let i = 0; i < 5000; i++) queue.cancel(queue.add(() => fired++, true))
    const last = queue.add(() => fired++, true)
    expect(last.fire).toBeDefined()
    await new Promise((resolve) => setTimeout(resolve, 70))
    expect(fired).toBe(1)
    expect(last.fire).toBeUndefined()
  })

  it('keeps nothing of settled calls while an earlier one is still pending', () => {
    const queue = new DeadlineQueue(60_000)
    const hung = queue.add(() => {}, false)
    for (let i = 0; i < 10_000; i++) queue.cancel(queue.add(() => {}, false))
    const later = queue.add(() => {}, false)
    expect(queue.size).toBe(2)
    queue.cancel(hung)
    queue.cancel(later)
    expect(queue.size).toBe(0)
  })

  it('a deadline set while others fire falls due at its own time, and those still pending at theirs', async () => {
    const queue = new DeadlineQueue(40)
    const fired: string[] = []
    queue.add(() => {
      fired.push('a')
      queue.add(() => fired.push('c'), true)
    }, true)
    await new Promise((resolve) => setTimeout(resolve, 20))
    queue.add(() => fired.push('b'), true)
    await new Promise((resolve) => setTimeout(resolve, 35))
    expect(fired).toEqual(['a'])
    await new Promise((resolve) => setTimeout(resolve, 15))
    expect(fired).toEqual(['a', 'b'])
    await new Promise((resolve) => setTimeout(resolve, 40))
    expect(fired).toEqual(['a', 'b', 'c'])
  })
})

describe('withTimeout on the shared deadlines', () => {
  it('rejects with the given error once the time passed, and settles like the promise before', async () => {
    const started = performance.now()
    await expect(withTimeout(never(), 30, () => new Error('late'))).rejects.toThrow('late')
    expect(performance.now() - started).toBeGreaterThanOrEqual(29)
    await expect(withTimeout(Promise.resolve(7), 30, () => new Error('late'))).resolves.toBe(7)
    await expect(withTimeout(Promise.reject(new Error('own')), 30, () => new Error('late'))).rejects.toThrow('own')
  })

  it('times out each of many concurrent calls of one duration, those that settle in time excepted', async () => {
    const calls = Array.from({ length: 50 }, (_, i) =>
      withTimeout(i % 2 === 0 ? never() : Promise.resolve(i), 25, () => new Error(`late ${i}`)).then(
        (v) => `ok ${v}`,
        (e: Error) => e.message,
      ),
    )
    const results = await Promise.all(calls)
    expect(results).toEqual(Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? `late ${i}` : `ok ${i}`)))
  })
})

function runChild(source: string): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = performance.now()
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', source],
      { env: { ...process.env, NODE_OPTIONS: '' }, timeout: 30_000 },
      (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : ((error as { code?: number }).code ?? null), stdout, stderr, ms: performance.now() - started })
      },
    )
  })
}

const PRELUDE = `
import { LoaderStore, keys, registerModel } from 'stockpyle'
class Item { static stockpyleName = 'DeadlineItem'; static stockpyleKeys = keys('id'); constructor(id) { this.id = id } }
registerModel(Item)
`

describe('the shared timer and the process', () => {
  it('keeps the process alive while a referenced deadline is pending: a load that never settles still times out', async () => {
    const child = await runChild(`${PRELUDE}
const store = new LoaderStore({ model: Item, load: () => new Promise(() => {}), timeout: 300 })
try { await store.get(Item, { id: 1 }); console.log('resolved') } catch (e) { console.log(e.code) }
`)
    expect(child.stderr).toBe('')
    expect(child.code).toBe(0)
    expect(child.stdout.trim()).toBe('E_STORE_UNAVAILABLE')
  })

  it('lets the process exit once every call settled, without waiting for the timer', async () => {
    const child = await runChild(`${PRELUDE}
const store = new LoaderStore({ model: Item, load: (lookups) => lookups.map((l) => new Item(l.id)), timeout: 20000 })
for (let i = 0; i < 200; i++) await store.get(Item, { id: i })
console.log('done')
`)
    expect(child.stderr).toBe('')
    expect(child.code).toBe(0)
    expect(child.stdout.trim()).toBe('done')
    expect(child.ms).toBeLessThan(15_000)
  })
})
