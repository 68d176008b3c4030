/**
 * The chart of a run (`results.svg`): for each scenario's like-for-like row, stockpyle ÷ floor and
 * best peer ÷ floor on a linear axis, with the floor at 1.0 and the row's target marked. Hand-written
 * SVG, no dependency.
 */
import type { BenchResults } from './bench-results.js'
import { type CaseResult, pairedRatio } from './runner.js'
import type { RowResult } from './scenarios/common.js'
import { bestPeer, byLibrary } from './scenarios/common.js'

const GREEN = '#1a7f5a'
const ORANGE = '#e8710a'

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

const fmt = (v: number): string => `${v >= 10 ? v.toFixed(1) : v.toFixed(2)}×`

interface Bar {
  readonly label: string
  readonly value: number
  readonly color: string
}

/** The bars of one row: stockpyle ÷ floor, then best peer ÷ floor when a peer ran. */
function barsOf(row: RowResult): Bar[] {
  const floor = byLibrary(row.cases, row.floor)
  const mine = byLibrary(row.cases, row.headline)
  const bars: Bar[] = []
  const s = pairedRatio(mine, floor)
  if (s !== undefined) bars.push({ label: 'stockpyle', value: s, color: GREEN })
  const peer: CaseResult | undefined = row.withPeers ? bestPeer(row.cases) : undefined
  const p = pairedRatio(peer, floor)
  if (peer !== undefined && p !== undefined) bars.push({ label: peer.library, value: p, color: ORANGE })
  return bars
}

/** The SVG chart of `results` (see the module comment). */
export function toSvg(results: BenchResults): string {
  const rows = results.rows.filter((r) => !r.layerAlone).map((row) => ({ row, bars: barsOf(row) }))
  const shown = rows.filter((r) => r.bars.length > 0)
  const labelW = 190
  const chartW = 560
  const valueW = 150
  const barH = 13
  const gap = 3
  const groupGap = 14
  const top = 84
  const max = Math.max(1.2, ...shown.flatMap((r) => [...r.bars.map((b) => b.value), r.row.minVsFloor ?? 0]))
  const hi = Math.ceil(max * 1.05 * 4) / 4
  const step = hi <= 2 ? 0.25 : hi <= 5 ? 0.5 : hi <= 20 ? 2 : 10
  const xOf = (v: number): number => labelW + (chartW * Math.min(v, hi)) / hi
  const parts: string[] = []
  let y = top
  for (const { row, bars } of shown) {
    const h = bars.length * (barH + gap) - gap
    parts.push(`<text x="${labelW - 8}" y="${y + h / 2 - 2}" text-anchor="end" class="row">${esc(row.row)}</text>`)
    parts.push(`<text x="${labelW - 8}" y="${y + h / 2 + 11}" text-anchor="end" class="unit">${esc(row.unit)}</text>`)
    for (const bar of bars) {
      const w = Math.max(1, xOf(bar.value) - labelW)
      const text = `${bar.label} ÷ floor = ${fmt(bar.value)}`
      parts.push(
        `<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${bar.color}"><title>${esc(`${row.row} · ${text}`)}</title></rect>`,
      )
      parts.push(`<text x="${(labelW + w + 4).toFixed(1)}" y="${y + barH - 3}" class="val">${esc(text)}</text>`)
      y += barH + gap
    }
    if (row.minVsFloor !== undefined) {
      const tx = xOf(row.minVsFloor).toFixed(1)
      parts.push(
        `<line x1="${tx}" y1="${y - h - gap - 3}" x2="${tx}" y2="${y - gap + 3}" class="target"><title>${esc(`${row.row}: target ${fmt(row.minVsFloor)} of the floor`)}</title></line>`,
      )
    }
    y += groupGap - gap
  }
  const bottom = y - groupGap + gap
  const grid: string[] = []
  for (let v = 0; v <= hi + 1e-9; v += step) {
    const gx = xOf(v).toFixed(1)
    grid.push(`<line x1="${gx}" y1="${top - 6}" x2="${gx}" y2="${bottom + 4}" class="${Math.abs(v - 1) < 1e-9 ? 'one' : 'grid'}"/>`)
    grid.push(`<text x="${gx}" y="${bottom + 17}" text-anchor="middle" class="axis">${esc(fmt(v))}</text>`)
  }
  const height = bottom + 44
  const width = labelW + chartW + valueW
  const m = results.machine
  const legend = [
    `<rect x="${labelW}" y="54" width="12" height="12" fill="${GREEN}"/><text x="${labelW + 17}" y="64" class="legend">stockpyle ÷ floor</text>`,
    `<rect x="${labelW + 150}" y="54" width="12" height="12" fill="${ORANGE}"/><text x="${labelW + 167}" y="64" class="legend">best peer ÷ floor (named)</text>`,
    `<line x1="${labelW + 350}" y1="53" x2="${labelW + 350}" y2="67" class="target"/><text x="${labelW + 357}" y="64" class="legend">target</text>`,
    `<line x1="${labelW + 420}" y1="53" x2="${labelW + 420}" y2="67" class="one"/><text x="${labelW + 427}" y="64" class="legend">floor = 1.0</text>`,
  ]
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif">`,
    '<style>.row{font-size:12px;font-weight:600;fill:#222}.unit{font-size:10px;fill:#777}.val{font-size:10px;fill:#333}.axis{font-size:10px;fill:#777}.legend{font-size:11px;fill:#222}.grid{stroke:#e3e3e3;stroke-width:1}.one{stroke:#444;stroke-width:1.5;stroke-dasharray:4 3}.target{stroke:#c5221f;stroke-width:2.5}.title{font-size:14px;font-weight:700;fill:#111}.sub{font-size:11px;fill:#555}</style>',
    `<title>${esc(`stockpyle benchmark (${results.date}): throughput of stockpyle and of the best peer as a fraction of the raw client doing the same work`)}</title>`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="10" y="20" class="title">${esc('Throughput as a fraction of the raw client doing the same work (floor = 1.0; higher is better)')}</text>`,
    `<text x="10" y="38" class="sub">${esc(`stockpyle chain and the fastest peer per scenario, median of per-round ratios of one \`${results.command}\` run · ${m.cpus} CPUs (${m.cpuModel}), Node ${m.node} · ${results.date.slice(0, 10)}`)}</text>`,
    ...legend,
    ...grid,
    ...parts,
    '</svg>',
    '',
  ].join('\n')
}
