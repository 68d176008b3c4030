/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time per function and per file, and the
 * inclusive time of the functions on the hot path, as % of the profile.
 *
 *   node bench/cpuprofile-summary.js <file.cpuprofile> [top=25] [filter substring for the inclusive list]
 */
import { readFileSync } from 'node:fs'

const [file, topArg, filter] = process.argv.slice(2)
const top = Number(topArg ?? 25)
const profile = JSON.parse(readFileSync(file, 'utf8'))
const nodes = new Map(profile.nodes.map((n) => [n.id, n]))
const self = new Map()
const dt = profile.timeDeltas
for (let i = 0; i < profile.samples.length; i++) self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (dt[i] ?? 0))
const total = [...self.values()].reduce((a, b) => a + b, 0)
const parent = new Map()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const short = (url) =>
  url
    .replace(/^file:\/\//, '')
    .replace(/.*\/(node_modules\/)/, '$1')
    .replace(/.*\/(dist\/)/, '$1')
const label = (n) => {
  const f = n.callFrame
  return `${f.functionName || '(anonymous)'} ${f.url ? `${short(f.url)}:${f.lineNumber + 1}` : `(${f.url || 'native'})`}`
}
const bySelf = new Map()
const byFile = new Map()
const inclusive = new Map()
for (const [id, t] of self) {
  const n = nodes.get(id)
  bySelf.set(label(n), (bySelf.get(label(n)) ?? 0) + t)
  const f = n.callFrame.url ? short(n.callFrame.url) : `(${n.callFrame.functionName})`
  byFile.set(f, (byFile.get(f) ?? 0) + t)
  const seen = new Set()
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const l = label(nodes.get(cur))
    if (seen.has(l)) continue
    seen.add(l)
    inclusive.set(l, (inclusive.get(l) ?? 0) + t)
  }
}
const pct = (t) => `${((100 * t) / total).toFixed(1).padStart(5)}%`
const print = (title, map, n, pred = () => true) => {
  console.log(`\n${title}`)
  for (const [k, t] of [...map]
    .filter(([k]) => pred(k))
    .sort((a, b) => b[1] - a[1])
    .slice(0, n))
    console.log(`${pct(t)}  ${k}`)
}
console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled`)
print('self time by function', bySelf, top)
print('self time by file', byFile, 15)
print('inclusive time (stockpyle functions)', inclusive, top, (k) => (filter ? k.includes(filter) : k.includes('dist/')))
