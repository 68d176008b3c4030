// Part of `npm run lint`: no source file under src/ above MAX_LINES lines (an architectural wall, like
// the import rules dependency-cruiser checks). A file that grows past it is split by what it exports.
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const MAX_LINES = 400
const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'src')

function* files(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) yield* files(path)
    else if (/\.(ts|mts|js|mjs)$/.test(entry.name)) yield path
  }
}

const over = []
for (const file of files(root)) {
  const text = readFileSync(file, 'utf8')
  const lines = text.length === 0 ? 0 : text.split('\n').length - (text.endsWith('\n') ? 1 : 0)
  if (lines > MAX_LINES) over.push(`  src/${relative(root, file)}: ${lines} lines`)
}
if (over.length > 0) {
  console.error(`check-file-sizes: files under src/ above ${MAX_LINES} lines:\n${over.join('\n')}`)
  process.exit(1)
}
console.log(`check-file-sizes: every file under src/ has at most ${MAX_LINES} lines`)
