/**
 * S7, the memory bound: fills a bounded in-process cache with a million small objects and measures
 * what the process really grew by (heap used + external, after a full GC), in a child process of its
 * own started with `--expose-gc`, so that nothing else of the run is counted. Also run by
 * `bench/peers-memory.js` for the peers, through {@link measureMemory}.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { LRUCache } from 'lru-cache'
import { Packr } from 'msgpackr'
import { ProcessMemoryStore } from '../../stores/memory/process-memory-store.js'
import { BenchAliasedItem, BenchItem } from './fixtures.js'
import type { MemoryReport } from './peer.js'

/** What a memory-bound child is asked to do. */
export interface MemoryJob {
  /** Which cache: `'stockpyle'`, `'stockpyle-aliased'`, `'lru-cache'` (the floor) or a peer's own kind. */
  readonly kind: string
  /** Objects to insert. */
  readonly count: number
  /** The bound, in bytes. */
  readonly maxSize: number
}

/** How {@link measureMemory} drives one cache. */
export interface MemorySubject {
  readonly library: string
  readonly label: string
  /** Inserts objects `from`..`to`-1 (called in chunks). */
  insert(from: number, to: number): Promise<void> | void
  /** Reads object `id` (resident); the result must not be `undefined`. */
  get(id: number): Promise<unknown> | unknown
  /** Objects held now (measured after the memory figures are taken). */
  entries(): number | Promise<number>
  /** Bytes the cache accounts against its bound, when it has such a figure. */
  accounted?(): number | undefined
}

const gc = (): void => (globalThis as { gc?: () => void }).gc?.()

async function settle(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    gc()
    await new Promise((r) => setImmediate(r))
  }
}

function used(): { heapExternal: number; rss: number } {
  const m = process.memoryUsage()
  return { heapExternal: m.heapUsed + m.external, rss: m.rss }
}

/**
 * Fills `makeSubject()`'s cache with `job.count` objects and measures the growth. A second small
 * subject is filled and dropped first, so that codec buffers and lazily compiled code exist before
 * the baseline.
 */
export async function measureMemory(job: MemoryJob, makeSubject: () => MemorySubject): Promise<MemoryReport> {
  if ((globalThis as { gc?: unknown }).gc === undefined) throw new Error('the memory-bound child needs node --expose-gc')
  const chunk = 1000
  {
    const warm = makeSubject()
    for (let from = 0; from < 20_000; from += chunk) await warm.insert(from, from + chunk)
    for (let i = 19_000; i < 20_000; i++) await warm.get(i)
  }
  await settle()
  const before = used()
  const subject = makeSubject()
  const start = performance.now()
  for (let from = 0; from < job.count; from += chunk) await subject.insert(from, Math.min(job.count, from + chunk))
  const fillSeconds = (performance.now() - start) / 1000
  await settle()
  const after = used()
  const entries = await subject.entries()
  // gets of resident objects: the most recent ones (least recently used go first)
  const resident = Math.max(1, Math.floor(entries * 0.9))
  const gets = 200_000
  let missing = 0
  const t0 = performance.now()
  for (let k = 0; k < gets; k++) {
    const value = await subject.get(job.count - 1 - (k % resident))
    if (value === undefined) missing++
  }
  const getSeconds = (performance.now() - t0) / 1000
  if (missing > 0) throw new Error(`${subject.library}: ${missing} of ${gets} gets of resident objects missed`)
  return {
    library: subject.library,
    label: subject.label,
    inserted: job.count,
    entries,
    growthBytes: after.heapExternal - before.heapExternal,
    rssGrowthBytes: after.rss - before.rss,
    maxSize: job.maxSize,
    accountedBytes: subject.accounted?.(),
    fillSeconds: Math.round(fillSeconds * 100) / 100,
    getOpsPerSec: Math.round(gets / getSeconds),
  }
}

/** The subjects this module knows: stockpyle's ProcessMemoryStore and the lru-cache floor. */
export function builtInSubject(job: MemoryJob): MemorySubject {
  switch (job.kind) {
    case 'stockpyle': {
      const store = new ProcessMemoryStore({ maxSize: job.maxSize })
      return {
        library: 'stockpyle',
        label: 'ProcessMemoryStore({maxSize}), objects with a primary key',
        insert: (from, to) => {
          const objs: BenchItem[] = []
          for (let i = from; i < to; i++) objs.push(new BenchItem(i, `item-${i}`, i * 3))
          return store.batchPut(objs)
        },
        get: (id) => store.get(BenchItem, { id }),
        entries: () => store.size,
        accounted: () => store.calculatedSize,
      }
    }
    case 'stockpyle-aliased': {
      const store = new ProcessMemoryStore({ maxSize: job.maxSize })
      return {
        library: 'stockpyle',
        label: 'ProcessMemoryStore({maxSize}), objects with a primary and an alternate key',
        insert: (from, to) => {
          const objs: BenchAliasedItem[] = []
          for (let i = from; i < to; i++) objs.push(new BenchAliasedItem(i, `c${i}`, `item-${i}`, i * 3))
          return store.batchPut(objs)
        },
        get: (id) => store.get(BenchAliasedItem, { id }),
        entries: () => store.size,
        accounted: () => store.calculatedSize,
      }
    }
    case 'lru-cache': {
      const packr = new Packr({ moreTypes: true, useRecords: true })
      const cache = new LRUCache<string, Buffer>({ maxSize: job.maxSize, sizeCalculation: (v) => v.length })
      return {
        library: 'floor',
        label: 'lru-cache maxSize over msgpackr-encoded bytes',
        insert: (from, to) => {
          for (let i = from; i < to; i++) cache.set(`item:${i}`, packr.pack({ id: i, name: `item-${i}`, n: i * 3 }))
        },
        get: (id) => {
          const bytes = cache.get(`item:${id}`)
          return bytes === undefined ? undefined : packr.unpack(bytes)
        },
        entries: () => cache.size,
        accounted: () => cache.calculatedSize,
      }
    }
    default:
      throw new Error(`unknown memory-bound kind ${JSON.stringify(job.kind)}`)
  }
}

/** Path of this module's compiled file (the child entry). */
export const MEMORY_CHILD_SCRIPT = fileURLToPath(import.meta.url)

/**
 * Runs `script` (default: this module) with `node --expose-gc` in a child process for `job`, and
 * resolves with the report it prints as its last line. When `signal` aborts, the child is killed
 * (SIGTERM) and the promise rejects.
 */
export function runMemoryChild(job: MemoryJob, script: string = MEMORY_CHILD_SCRIPT, signal?: AbortSignal): Promise<MemoryReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '--max-old-space-size=4096', script, JSON.stringify(job)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(signal === undefined ? {} : { signal }),
    })
    let out = ''
    let err = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d))
    child.once('error', reject)
    child.once('exit', (code) => {
      const last = out.trim().split('\n').pop() ?? ''
      if (code !== 0) return reject(new Error(`memory-bound child (${job.kind}) exited ${code}: ${err.trim().slice(-2000)}`))
      try {
        resolve(JSON.parse(last) as MemoryReport)
      } catch {
        reject(new Error(`memory-bound child (${job.kind}) printed no report: ${out.slice(-500)} ${err.slice(-500)}`))
      }
    })
  })
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const job = JSON.parse(process.argv[2] ?? '{}') as MemoryJob
  measureMemory(job, () => builtInSubject(job)).then(
    (report) => process.stdout.write(`${JSON.stringify(report)}\n`),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`)
      process.exitCode = 1
    },
  )
}
