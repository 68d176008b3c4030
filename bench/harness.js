// The test harness (test/harness/servers.ts: TypeScript, Node built-ins only) for the bench scripts:
// transpiled once to bench/.harness/servers.js (again when the source changes), then imported.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')

/** Imports the test harness's server helpers (startRedis, startPostgres, …). */
export async function loadHarness() {
  const source = join(root, 'test', 'harness', 'servers.ts')
  const target = join(here, '.harness', 'servers.js')
  const text = readFileSync(source, 'utf8')
  if (!existsSync(target) || readFileSync(target, 'utf8').indexOf(`// source-length ${text.length}\n`) !== 0) {
    const { default: ts } = await import('typescript')
    const out = ts.transpileModule(text, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false },
      fileName: source,
    })
    mkdirSync(dirname(target), { recursive: true })
    writeFileSync(target, `// source-length ${text.length}\n${out.outputText}`)
  }
  return import(pathToFileURL(target).href)
}

/**
 * Starts the harness's redis-server pinned to CPU 1 and pins this process to CPU 0, as `npm run bench`
 * runs them (pinning is skipped where `taskset` is missing). Resolves to the harness's server handle.
 */
export async function startPinnedRedis() {
  const redis = await (await loadHarness()).startRedis()
  try {
    execFileSync('taskset', ['-apc', '1', String(redis.pid)], { stdio: 'ignore' })
    execFileSync('taskset', ['-apc', '0', String(process.pid)], { stdio: 'ignore' })
  } catch {}
  return redis
}
