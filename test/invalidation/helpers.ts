import type { InvalidationListener } from '../../src/contracts/invalidation-bus.js'

/**
 * Waits until `check()` holds, checking every 2 ms; resolves with the ms it took.
 * @throws Error naming `what` after `timeoutMs`.
 */
export async function poll(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<number> {
  const start = performance.now()
  for (;;) {
    if (await check()) return performance.now() - start
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

/** Median, p99 and max of samples (ms), rounded to µs. */
export function summarize(samples: readonly number[]): { n: number; median: number; p99: number; max: number } {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN
  const round = (ms: number): number => Math.round(ms * 1000) / 1000
  return { n: sorted.length, median: round(at(0.5)), p99: round(at(0.99)), max: round(sorted.at(-1) ?? Number.NaN) }
}

/** A listener that records what a bus delivers. */
export class Recorder implements InvalidationListener {
  readonly keys: string[] = []
  ups = 0
  downs = 0
  /** Called with each delivery, after recording it. */
  onKeys: ((keys: readonly string[]) => void) | undefined

  onInvalidate(keys: readonly string[]): void {
    this.keys.push(...keys)
    this.onKeys?.(keys)
  }
  onDown(): void {
    this.downs++
  }
  onUp(): void {
    this.ups++
  }
}

/**
 * Publishes `count` single-key messages one after another through `publish` and measures, for each,
 * the ms from just before the publish until `recorder` received it.
 */
export async function measureDelay(publish: (keys: string[]) => Promise<void>, recorder: Recorder, count: number): Promise<number[]> {
  const samples: number[] = []
  for (let i = 0; i < count; i++) {
    const key = `delay|i=${i}|${Math.random()}`
    const received = new Promise<number>((resolve) => {
      recorder.onKeys = (keys) => {
        if (keys.includes(key)) resolve(performance.now())
      }
    })
    const start = performance.now()
    await publish([key])
    let timer: NodeJS.Timeout | undefined
    const lost = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`message ${i} not received within 5 s`)), 5000)
    })
    const end = await Promise.race([received, lost]).finally(() => clearTimeout(timer))
    samples.push(end - start)
  }
  recorder.onKeys = undefined
  return samples
}
