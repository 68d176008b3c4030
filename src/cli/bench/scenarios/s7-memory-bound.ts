/**
 * S7, the memory bound: a million small objects into a 64 MiB-bounded memory layer; the bound must
 * hold as heap + external growth (see ../memory-bound.ts). The floor is lru-cache with `maxSize`
 * over the encoded bytes, the peer BentoCache's memory driver.
 */
import { type MemoryJob, runMemoryChild } from '../memory-bound.js'
import type { MemoryReport } from '../peer.js'
import type { CaseResult } from '../runner.js'
import type { RowResult, ScenarioContext } from './common.js'

/** The case (library and role) of each built-in subject. */
const MINE: Readonly<Record<string, readonly [string, CaseResult['role']]>> = {
  'lru-cache': ['floor', 'floor'],
  stockpyle: ['stockpyle', 'stockpyle'],
  'stockpyle-aliased': ['stockpyle (with alias)', 'reference'],
}

/** Runs S7 (child processes with --expose-gc). */
export async function s7MemoryBound(o: ScenarioContext): Promise<{ row: RowResult; reports: MemoryReport[] }> {
  const count = o.s7Count ?? 1_000_000
  const maxSize = o.s7MaxSize ?? 64 * 1024 * 1024
  const reports: MemoryReport[] = []
  const jobs: { job: MemoryJob; script?: string; library: string }[] = [
    { job: { kind: 'lru-cache', count, maxSize }, library: 'floor' },
    { job: { kind: 'stockpyle', count, maxSize }, library: 'stockpyle' },
    { job: { kind: 'stockpyle-aliased', count, maxSize }, library: 'stockpyle' },
    ...(o.memoryChildren ?? []).map((c) => ({ job: { kind: c.library, count, maxSize }, script: c.script, library: c.library })),
  ]
  const cases: CaseResult[] = []
  for (const { job, script } of jobs) {
    o.signal?.throwIfAborted()
    try {
      const r = await runMemoryChild(job, script, o.signal)
      reports.push(r)
      o.log(
        `    ${r.library} (${job.kind}): grew ${(r.growthBytes / 2 ** 20).toFixed(1)} MiB for ${r.entries} entries held (${(r.growthBytes / Math.max(1, r.entries)).toFixed(0)} B/entry); ${r.getOpsPerSec} gets/s`,
      )
      cases.push({
        row: 'S7 memory bound',
        library: job.kind === 'stockpyle-aliased' ? 'stockpyle (with alias)' : r.library,
        role: r.library === 'floor' ? 'floor' : r.library === 'stockpyle' ? (job.kind === 'stockpyle' ? 'stockpyle' : 'reference') : 'peer',
        label: r.label,
        opsPerSec: r.getOpsPerSec,
        rounds: [],
        calls: r.inserted,
        extra: {
          growthMiB: Math.round((r.growthBytes / 2 ** 20) * 10) / 10,
          entries: r.entries,
          bytesPerEntry: Math.round(r.growthBytes / Math.max(1, r.entries)),
          held: r.growthBytes <= r.maxSize,
          fillSeconds: r.fillSeconds,
          ...(r.accountedBytes === undefined ? {} : { accountedMiB: Math.round((r.accountedBytes / 2 ** 20) * 10) / 10 }),
        },
      })
    } catch (err) {
      o.log(`    ${job.kind}: FAILED ${(err as Error).message}`)
      // named as its figures would have been: a failed floor or stockpyle case fails the run
      const [library, role] = MINE[job.kind] ?? [job.kind, 'peer']
      cases.push({
        row: 'S7 memory bound',
        library,
        role,
        label: job.kind,
        opsPerSec: undefined,
        rounds: [],
        calls: 0,
        extra: {},
        error: (err as Error).message,
      })
    }
  }
  const mine = reports.filter((r) => r.library === 'stockpyle')
  const held = mine.length === 2 && mine.every((r) => r.growthBytes <= r.maxSize)
  return {
    reports,
    row: {
      scenario: 'S7',
      row: 'S7 memory bound',
      title: `${count.toLocaleString('en-US')} small objects into a ${Math.round(maxSize / 2 ** 20)} MiB-bounded memory layer`,
      unit: 'gets/s',
      cases,
      floor: 'floor',
      headline: 'stockpyle',
      withPeers: true,
      layerAlone: false,
      target: {
        text: 'bound held: heap + external growth <= maxSize',
        met: held,
        detail: mine
          .map((r) => `${r.label.includes('alternate') ? 'with alias' : 'primary only'}: grew ${(r.growthBytes / 2 ** 20).toFixed(1)} MiB`)
          .join('; '),
      },
      notes: [
        'Each subject runs in its own child process (node --expose-gc); growth = heapUsed + external after a full GC, minus the same before filling. ops/s = gets of resident objects.',
        'cache-manager and cacheable bound their memory tier by entry count only (no byte bound), so they are not measured here.',
      ],
    },
  }
}
