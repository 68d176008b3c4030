/**
 * Self time per function (or per file with --by-file) of two V8 .cpuprofile files, in ms, sorted by
 * how much more the second spent: where a change or a second contender costs its extra time.
 *
 *   node bench/profile-diff.js <a.cpuprofile> <b.cpuprofile> [rows=40] [--by-file]
 */
import { readFileSync } from 'node:fs'

const args = process.argv.slice(2)
const byFile = args.includes('--by-file')
const [a, b, rowsArg] = args.filter((x) => x !== '--by-file')
if (a === undefined || b === undefined) throw new Error('usage: node bench/profile-diff.js a.cpuprofile b.cpuprofile [rows] [--by-file]')
const short = (url) => url.replace(/^file:\/\//, '').replace(/.*\/(node_modules|dist)\//, '$1/')
function selfTimes(file) {
  const profile = JSON.parse(readFileSync(file, 'utf8'))
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map()
  for (let i = 0; i < profile.samples.length; i++) {
    const f = nodes.get(profile.samples[i]).callFrame
    const key = byFile ? short(f.url) || f.functionName : `${f.functionName || '(anonymous)'} ${short(f.url)}:${f.lineNumber + 1}`
    self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000)
  }
  return self
}
const [x, y] = [selfTimes(a), selfTimes(b)]
const total = (m) => [...m.values()].reduce((s, v) => s + v, 0)
console.log(`total ms: ${total(x).toFixed(0)} → ${total(y).toFixed(0)}   (columns: difference, first, second)`)
const rows = [...new Set([...x.keys(), ...y.keys()])]
  .map((k) => [k, x.get(k) ?? 0, y.get(k) ?? 0])
  .sort((p, q) => q[2] - q[1] - (p[2] - p[1]))
for (const [k, p, q] of rows.slice(0, Number(rowsArg ?? 40))) {
  console.log(`${(q - p).toFixed(0).padStart(7)} ${p.toFixed(0).padStart(7)} ${q.toFixed(0).padStart(7)}  ${k}`)
}
