/**
 * Output of a benchmark run: `results.json`, a Markdown ratio table (`results.md`) and the chart of
 * stockpyle ÷ floor and best peer ÷ floor (`results.svg`, see ./chart.ts).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import type { BenchResults, MachineInfo } from './bench-results.js'
import { toSvg } from './chart.js'
import type { MemoryReport } from './peer.js'
import { type CaseResult, formatOps, pairedRatio } from './runner.js'
import { bestPeer, byLibrary, type RowResult } from './scenarios/common.js'

export type { BenchResults, MachineInfo } from './bench-results.js'
export { toSvg } from './chart.js'

/** Describes this machine. */
export function machineInfo(servers: string[], notes: string[] = []): MachineInfo {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    servers,
    notes,
  }
}

const pct = (v: number | undefined): string => (v === undefined ? '—' : `${v >= 10 ? v.toFixed(1) : v.toFixed(2)}x`)

function cell(c: CaseResult | undefined): string {
  if (c === undefined) return '—'
  if (c.error !== undefined) return 'failed'
  return c.opsPerSec === undefined ? '—' : formatOps(c.opsPerSec)
}

const verdict = (met: boolean | undefined): string => (met === undefined ? 'n/a' : met ? '**met**' : '**not met**')

const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1)

/** The figures of one row: floor, best peer and stockpyle with their paired ratios. */
export function rowFigures(row: RowResult): {
  floor: CaseResult | undefined
  peer: CaseResult | undefined
  mine: CaseResult | undefined
  vsFloor: number | undefined
  vsPeer: number | undefined
} {
  const floor = byLibrary(row.cases, row.floor)
  const mine = byLibrary(row.cases, row.headline)
  const peer = row.withPeers ? bestPeer(row.cases) : undefined
  return { floor, peer, mine, vsFloor: pairedRatio(mine, floor), vsPeer: pairedRatio(mine, peer) }
}

function tableLines(rows: readonly RowResult[]): string[] {
  const lines = [
    '| row | unit | floor | best peer | stockpyle | stockpyle ÷ floor | stockpyle ÷ best peer | target | verdict |',
    '|---|---|---:|---:|---:|---:|---:|---|---|',
  ]
  for (const row of rows) {
    const f = rowFigures(row)
    const peer = f.peer === undefined ? '—' : `${cell(f.peer)} ${f.peer.library}`
    lines.push(
      `| ${row.row} | ${row.unit} | ${cell(f.floor)} | ${peer} | ${cell(f.mine)} | ${pct(f.vsFloor)} | ${pct(f.vsPeer)} | ${row.target.text} | ${verdict(row.target.met)} |`,
    )
  }
  return lines
}

/** The Markdown report: ratio tables, every contender, storm loads, memory bound, what each case times. */
export function toMarkdown(results: BenchResults, svgFile?: string): string {
  const lines: string[] = []
  lines.push(`# stockpyle benchmark results`, '')
  lines.push(
    `${results.date} · ${results.machine.cpus} CPUs (${results.machine.cpuModel}) · ${results.machine.memoryGiB} GiB · Node ${results.machine.node} · ${results.machine.servers.join(' · ')}`,
    '',
  )
  lines.push(`Command: \`${results.command}\` (${Math.round(results.seconds)} s).`, '')
  for (const note of results.machine.notes) lines.push(`- ${note}`)
  if (results.machine.notes.length > 0) lines.push('')
  lines.push(
    `Median ops/s of ${results.timing.rounds} interleaved rounds of ~${results.timing.roundMs} ms per contender, all in one process run, each contender warmed up for at least ${results.timing.warmupMs} ms${results.timing.warmupCalls === undefined ? '' : ` and ${results.timing.warmupCalls.toLocaleString('en-US')} calls (at most ${results.timing.warmupMaxMs ?? results.timing.warmupMs} ms)`} first, then a full garbage collection and one untimed round of every contender. `,
    "Ratios compare figures of the same run, paired by round (the median over rounds of the two contenders' ops/s in that round, so load that changes during the run cancels out): **stockpyle ÷ floor** is the fraction of the raw client's speed doing the same necessary work (1.00x = as fast, higher is better); **stockpyle ÷ best peer** is how much faster stockpyle is than the fastest peer.",
    '',
  )
  if (svgFile !== undefined) lines.push(`![stockpyle ÷ floor and best peer ÷ floor per scenario](${svgFile})`, '')
  const main = results.rows.filter((r) => !r.layerAlone)
  const alone = results.rows.filter((r) => r.layerAlone)
  lines.push('## Like-for-like rows (the targets)', '', ...tableLines(main))
  if (alone.length > 0) {
    lines.push(
      '',
      '## Layer-alone references',
      '',
      'One layer measured on its own, without a chain, against the same floor — extra references, not the like-for-like comparison (the peers always run with a memory tier).',
      '',
      ...tableLines(alone),
    )
  }
  lines.push('', '## Targets', '')
  for (const row of results.rows) lines.push(`- **${row.row}** (${row.target.text}): ${verdict(row.target.met)} — ${row.target.detail}`)
  lines.push('', '## Every contender', '', '| row | contender | role | ops/s | ÷ floor | what is timed |', '|---|---|---|---:|---:|---|')
  const listed = new Set<readonly CaseResult[]>()
  for (const row of results.rows) {
    // rows of one group share their cases: list them once, under the first row
    if (listed.has(row.cases)) continue
    listed.add(row.cases)
    const floor = byLibrary(row.cases, row.floor)
    for (const c of row.cases) {
      lines.push(
        `| ${row.row} | ${c.library} | ${c.role} | ${cell(c)} | ${pct(pairedRatio(c, floor))} | ${c.label}${c.error === undefined ? '' : ` (**failed**: ${c.error})`} |`,
      )
    }
  }
  const storms = results.rows.filter((r) => r.scenario === 'S6')
  for (const row of storms) {
    lines.push(
      '',
      `## ${row.row}: database reads per storm`,
      '',
      '| library | ms per storm | reads per storm (min–max) | storms |',
      '|---|---:|---:|---:|',
    )
    for (const c of row.cases) {
      const ms = c.opsPerSec === undefined ? '—' : (1000 / c.opsPerSec).toFixed(1)
      lines.push(`| ${c.library} | ${ms} | ${c.extra.minLoads ?? '?'}–${c.extra.maxLoads ?? '?'} | ${c.extra.storms ?? '?'} |`)
    }
  }
  if (results.memory.length > 0) {
    const first = results.memory[0] as MemoryReport
    lines.push(
      '',
      `## S7: ${first.inserted.toLocaleString('en-US')} small objects into a ${mib(first.maxSize)} MiB bound`,
      '',
      '| library | what | entries held | heap+external growth (MiB) | bytes/entry | accounted (MiB) | bound held | RSS growth (MiB) | fill (s) | gets/s |',
      '|---|---|---:|---:|---:|---:|---|---:|---:|---:|',
    )
    for (const r of results.memory) {
      lines.push(
        `| ${r.library} | ${r.label} | ${r.entries.toLocaleString('en-US')} | ${mib(r.growthBytes)} | ${Math.round(r.growthBytes / Math.max(1, r.entries))} | ${r.accountedBytes === undefined ? '—' : mib(r.accountedBytes)} | ${r.growthBytes <= r.maxSize ? 'yes' : '**no**'} | ${mib(r.rssGrowthBytes)} | ${r.fillSeconds} | ${formatOps(r.getOpsPerSec)} |`,
      )
    }
  }
  lines.push('', '## Notes per row', '')
  for (const row of results.rows) {
    if (row.notes.length === 0) continue
    lines.push(`**${row.row}** — ${row.title}.`, '')
    for (const n of row.notes) lines.push(`- ${n}`)
    lines.push('')
  }
  if (results.peers.length > 0) {
    lines.push('## Peers', '')
    for (const p of results.peers) lines.push(`- ${p.name} ${p.version}: ${p.config}`)
    lines.push('')
  }
  return `${lines.join('\n')}\n`
}

/** The ratio table as plain text for the console. */
export function toConsole(results: BenchResults): string {
  const header = ['row', 'floor', 'best peer', 'stockpyle', 'stockpyle/floor', 'stockpyle/best peer', 'target']
  const body = results.rows.map((row) => {
    const f = rowFigures(row)
    return [
      row.row,
      cell(f.floor),
      f.peer === undefined ? '—' : `${cell(f.peer)} ${f.peer.library}`,
      cell(f.mine),
      pct(f.vsFloor),
      pct(f.vsPeer),
      row.target.met === undefined ? (row.layerAlone ? 'reference' : 'n/a') : row.target.met ? 'MET' : 'NOT MET',
    ]
  })
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)))
  const fmt = (r: string[]): string => r.map((v, i) => (i === 0 ? v.padEnd(widths[i] ?? 0) : v.padStart(widths[i] ?? 0))).join('  ')
  return [fmt(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(fmt)].join('\n')
}

/** Writes `results.json`, `results.md` and `results.svg` into `dir`; returns their paths. */
export function writeResults(results: BenchResults, dir: string): { json: string; markdown: string; svg: string } {
  mkdirSync(dir, { recursive: true })
  const json = join(dir, 'results.json')
  const markdown = join(dir, 'results.md')
  const svg = join(dir, 'results.svg')
  // a target without a verdict is `"met": null`, not a key left out
  writeFileSync(json, `${JSON.stringify(results, (key, value) => (key === 'met' && value === undefined ? null : value), 2)}\n`)
  writeFileSync(svg, toSvg(results))
  writeFileSync(markdown, toMarkdown(results, 'results.svg'))
  return { json, markdown, svg }
}
