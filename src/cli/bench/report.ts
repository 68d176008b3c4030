/**
 * Output of a benchmark run: `results.json`, a Markdown ratio table (`results.md`) and a hand-written
 * SVG chart of ops/s per scenario and library (`results.svg`).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import type { MemoryReport } from './peer.js'
import { type CaseResult, formatOps, pairedRatio } from './runner.js'
import type { RowResult } from './scenarios.js'

/** The machine and software a run measured. */
export interface MachineInfo {
  readonly cpus: number
  readonly cpuModel: string
  readonly memoryGiB: number
  readonly node: string
  readonly platform: string
  /** Server versions, e.g. `Redis 7.0.15`. */
  readonly servers: string[]
  /** Extra lines (e.g. CPU pinning). */
  readonly notes: string[]
}

/** Everything a run produced. */
export interface BenchResults {
  readonly date: string
  readonly command: string
  readonly machine: MachineInfo
  /** Peer libraries measured, with versions and configurations. */
  readonly peers: { name: string; version: string; config: string }[]
  readonly timing: { rounds: number; roundMs: number; warmupMs: number }
  readonly rows: RowResult[]
  readonly memory: MemoryReport[]
  readonly seconds: number
}

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

const MAIN_ROLES = new Set(['floor', 'stockpyle', 'peer'])

function columns(results: BenchResults): string[] {
  return ['floor', 'stockpyle', ...results.peers.map((p) => p.name)]
}

function cell(c: CaseResult | undefined): string {
  if (c === undefined) return '—'
  if (c.error !== undefined) return 'failed'
  return c.opsPerSec === undefined ? '—' : formatOps(c.opsPerSec)
}

function find(row: RowResult, library: string): CaseResult | undefined {
  return row.cases.find((c) => c.library === library)
}

/** `a` ÷ `b` as a paired ratio (see {@link pairedRatio}), formatted. */
function ratio(a: CaseResult | undefined, b: CaseResult | undefined): string {
  const v = pairedRatio(a, b)
  if (v === undefined) return '—'
  return `${v >= 10 ? v.toFixed(1) : v.toFixed(2)}x`
}

function bestPeer(row: RowResult): CaseResult | undefined {
  let best: CaseResult | undefined
  for (const c of row.cases) if (c.role === 'peer' && c.opsPerSec !== undefined && (best?.opsPerSec ?? 0) < c.opsPerSec) best = c
  return best
}

const verdict = (met: boolean | undefined): string => (met === undefined ? 'n/a' : met ? '**met**' : '**not met**')

const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1)

/** The Markdown report: ratio table, reference rows, storm loads, memory bound, what each case times. */
export function toMarkdown(results: BenchResults, svgFile?: string): string {
  const cols = columns(results)
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
    `Median ops/s of ${results.timing.rounds} interleaved rounds of ~${results.timing.roundMs} ms per contender, all in one process run. `,
    "Ratios compare figures of the same run, paired by round (the median over rounds of the two contenders' ops/s in that round, so load that changes during the run cancels out): **floor ÷ stockpyle** is how much slower stockpyle is than the raw client (lower is better, 1.00x = as fast); **stockpyle ÷ best peer** is how much faster stockpyle is than the fastest peer (higher is better).",
    '',
  )
  if (svgFile !== undefined) lines.push(`![ops/s per scenario and library](${svgFile})`, '')
  lines.push(`| row | unit | ${cols.join(' | ')} | floor ÷ stockpyle | stockpyle ÷ best peer | target | verdict |`)
  lines.push(`|---|---|${cols.map(() => '---:').join('|')}|---:|---:|---|---|`)
  for (const row of results.rows) {
    const s = find(row, row.headline)
    const cells = cols.map((c) => cell(find(row, c)))
    lines.push(
      `| ${row.row} | ${row.unit} | ${cells.join(' | ')} | ${ratio(find(row, 'floor'), s)} | ${ratio(s, bestPeer(row))} | ${row.target.text} | ${verdict(row.target.met)} |`,
    )
  }
  lines.push('', '## Targets', '')
  for (const row of results.rows) lines.push(`- **${row.row}** (${row.target.text}): ${verdict(row.target.met)} — ${row.target.detail}`)
  const references = results.rows.flatMap((row) => row.cases.filter((c) => !MAIN_ROLES.has(c.role)).map((c) => ({ row, c })))
  if (references.length > 0) {
    lines.push(
      '',
      '## Other stockpyle and floor variants',
      '',
      '| row | variant | ops/s | vs stockpyle headline | what is timed |',
      '|---|---|---:|---:|---|',
    )
    for (const { row, c } of references) {
      lines.push(`| ${row.row} | ${c.library} | ${cell(c)} | ${ratio(c, find(row, row.headline))} | ${c.label} |`)
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
  lines.push('', '## What each contender does', '')
  for (const row of results.rows) {
    lines.push(`**${row.row}** — ${row.title}.`, '')
    for (const c of row.cases) lines.push(`- ${c.library}: ${c.label}${c.error === undefined ? '' : ` (**failed**: ${c.error})`}`)
    for (const n of row.notes) lines.push(`- _Note:_ ${n}`)
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
  const cols = columns(results)
  const header = ['row', ...cols, 'floor/stockpyle', 'stockpyle/best peer', 'target']
  const body = results.rows.map((row) => {
    const s = find(row, row.headline)
    return [
      row.row,
      ...cols.map((c) => cell(find(row, c))),
      ratio(find(row, 'floor'), s),
      ratio(s, bestPeer(row)),
      row.target.met === undefined ? 'n/a' : row.target.met ? 'MET' : 'NOT MET',
    ]
  })
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)))
  const fmt = (r: string[]): string => r.map((v, i) => (i === 0 ? v.padEnd(widths[i] ?? 0) : v.padStart(widths[i] ?? 0))).join('  ')
  return [fmt(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(fmt)].join('\n')
}

const COLORS: Record<string, string> = { floor: '#9aa0a6', stockpyle: '#1a7f5a' }
const PEER_COLORS = ['#e8710a', '#7b3fbf', '#c5221f', '#1967d2', '#a8720c']

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

/**
 * A horizontal bar chart (log scale) of ops/s: one group per row of the table, one bar per library
 * (floor, stockpyle, each peer). Hand-written SVG, no dependency.
 */
export function toSvg(results: BenchResults): string {
  const cols = columns(results)
  const color = (lib: string): string => COLORS[lib] ?? PEER_COLORS[(cols.indexOf(lib) - 2) % PEER_COLORS.length] ?? '#555'
  const rows = results.rows.filter((r) => r.cases.some((c) => MAIN_ROLES.has(c.role) && c.opsPerSec !== undefined))
  const labelW = 150
  const chartW = 620
  const valueW = 70
  const barH = 11
  const gap = 3
  const groupGap = 12
  const top = 58
  const all = rows.flatMap((r) => r.cases.map((c) => c.opsPerSec ?? 0)).filter((v) => v > 0)
  const lo = 10 ** Math.floor(Math.log10(Math.max(0.1, Math.min(...all, 1))))
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...all, 10)))
  const xOf = (v: number): number => labelW + (chartW * (Math.log10(Math.max(v, lo)) - Math.log10(lo))) / (Math.log10(hi) - Math.log10(lo))
  const parts: string[] = []
  let y = top
  for (const row of rows) {
    const bars = cols.map((lib) => ({ lib, c: find(row, lib) })).filter((b) => b.c?.opsPerSec !== undefined)
    const h = bars.length * (barH + gap)
    parts.push(`<text x="${labelW - 8}" y="${y + h / 2}" text-anchor="end" dominant-baseline="middle" class="row">${esc(row.row)}</text>`)
    parts.push(
      `<text x="${labelW - 8}" y="${y + h / 2 + 12}" text-anchor="end" dominant-baseline="middle" class="unit">${esc(row.unit)}</text>`,
    )
    for (const { lib, c } of bars) {
      const v = c?.opsPerSec as number
      const w = Math.max(1, xOf(v) - labelW)
      parts.push(
        `<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${color(lib)}"><title>${esc(`${row.row} · ${lib}: ${formatOps(v)} ${row.unit}`)}</title></rect>`,
      )
      parts.push(`<text x="${(labelW + w + 4).toFixed(1)}" y="${y + barH - 2}" class="val">${esc(formatOps(v))}</text>`)
      y += barH + gap
    }
    y += groupGap
  }
  const height = y + 24
  const width = labelW + chartW + valueW + 10
  const grid: string[] = []
  for (let v = lo; v <= hi; v *= 10) {
    const gx = xOf(v).toFixed(1)
    grid.push(`<line x1="${gx}" y1="${top - 6}" x2="${gx}" y2="${y - groupGap}" class="grid"/>`)
    grid.push(`<text x="${gx}" y="${y - groupGap + 14}" text-anchor="middle" class="axis">${esc(formatOps(v))}</text>`)
  }
  const legend = cols
    .map((lib, i) => {
      const lx = labelW + i * 130
      return `<rect x="${lx}" y="30" width="12" height="12" fill="${color(lib)}"/><text x="${lx + 17}" y="40" class="legend">${esc(lib)}</text>`
    })
    .join('')
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif">`,
    '<style>.row{font-size:12px;font-weight:600;fill:#222}.unit{font-size:10px;fill:#777}.val{font-size:10px;fill:#333}.axis{font-size:10px;fill:#777}.legend{font-size:12px;fill:#222}.grid{stroke:#e3e3e3;stroke-width:1}.title{font-size:14px;font-weight:700;fill:#111}</style>',
    `<title>${esc(`stockpyle benchmark: ops/s per scenario and library (${results.date})`)}</title>`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="10" y="18" class="title">${esc(`stockpyle vs raw floor and peers: ops/s (log scale), ${results.machine.cpus} CPUs, Node ${results.machine.node}`)}</text>`,
    legend,
    ...grid,
    ...parts,
    '</svg>',
    '',
  ].join('\n')
}

/** Writes `results.json`, `results.md` and `results.svg` into `dir`; returns their paths. */
export function writeResults(results: BenchResults, dir: string): { json: string; markdown: string; svg: string } {
  mkdirSync(dir, { recursive: true })
  const json = join(dir, 'results.json')
  const markdown = join(dir, 'results.md')
  const svg = join(dir, 'results.svg')
  writeFileSync(json, `${JSON.stringify(results, null, 2)}\n`)
  writeFileSync(svg, toSvg(results))
  writeFileSync(markdown, toMarkdown(results, 'results.svg'))
  return { json, markdown, svg }
}
