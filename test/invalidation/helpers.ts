import pg from 'pg'

/** Creates (or recreates) a database of its own on the harness's server and returns its URL. */
export async function freshDatabase(base: string, name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: base })
  await admin.connect()
  try {
    await admin.query(`drop database if exists ${name} with (force)`)
    await admin.query(`create database ${name}`)
  } finally {
    await admin.end()
  }
  return base.replace(/\/[^/]*$/, `/${name}`)
}

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

/** The code of the warning a bus or watcher given no `onError` emits for its first error. */
export const UNREPORTED = 'STOCKPYLE_INVALIDATION_ERROR'

/**
 * Collects the messages of the process warnings with `code` that mention `owner`, until `stop()`.
 * A warning is delivered on the next tick after it is emitted: await {@link nextTurn} before looking.
 */
export function warningsNaming(owner: string, code = UNREPORTED): { readonly messages: string[]; stop(): void } {
  const messages: string[] = []
  const listener = (warning: Error & { code?: string }): void => {
    if (warning.code === code && warning.message.includes(owner)) messages.push(warning.message)
  }
  process.on('warning', listener)
  return { messages, stop: () => process.off('warning', listener) }
}

/** Resolves after the pending ticks and microtasks (a warning emitted before it has been delivered). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

export { measureDelay, Recorder } from '../../src/testing/bus-conformance.js'
