#!/usr/bin/env node
// Runs before `npm start` and `npm test` (prestart/pretest): installs the npm dependencies from
// package-lock.json with `npm ci` when node_modules is missing or does not hold what the lockfile
// names, so the two documented commands work on a fresh clone. Built-ins only: it runs before any
// dependency exists. `npm ci` never rewrites package-lock.json, so no tracked file changes.
//
// "Up to date" means: npm's record of the installed tree (node_modules/.package-lock.json) has every
// package of the lockfile at the lockfile's version (optional packages for other platforms may be
// absent), and the native add-ons the project builds are built.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const started = Date.now()

/** Why node_modules does not match the lockfile, or `undefined` when it does. */
function staleness() {
  const installedFile = join(root, 'node_modules', '.package-lock.json')
  if (!existsSync(installedFile)) return 'node_modules is missing'
  const wanted = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')).packages ?? {}
  const installed = JSON.parse(readFileSync(installedFile, 'utf8')).packages ?? {}
  for (const [path, entry] of Object.entries(wanted)) {
    if (path === '' || entry.link === true) continue
    const have = installed[path]
    if (have === undefined) {
      if (entry.optional === true || entry.devOptional === true) continue // e.g. a prebuilt binary for another platform
      return `${path.replace(/^.*node_modules\//, '')} is not installed`
    }
    if (have.version !== entry.version) return `${path.replace(/^.*node_modules\//, '')} is ${have.version}, the lockfile says ${entry.version}`
  }
  // install scripts that were skipped (e.g. `npm ci --ignore-scripts`) leave the native add-on unbuilt
  if (wanted['node_modules/better-sqlite3'] !== undefined && !existsSync(join(root, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'))) {
    return 'the better-sqlite3 native add-on is not built'
  }
  return undefined
}

const why = staleness()
if (why !== undefined) {
  console.error(`ensure-deps: ${why}; installing the npm dependencies from package-lock.json (npm ci, a few minutes: native add-ons are compiled) ...`)
  const npm = process.env.npm_execpath
  const [command, args] = npm !== undefined && npm.endsWith('.js') ? [process.execPath, [npm]] : ['npm', []]
  const result = spawnSync(command, [...args, 'ci', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  if (result.error !== undefined || result.status !== 0) {
    process.stderr.write(result.stdout ?? '')
    process.stderr.write(result.stderr ?? '')
    console.error(`ensure-deps: npm ci failed (${result.error?.message ?? `exit ${result.status}`}); run \`npm ci\` in ${root} to see why`)
    process.exit(result.status || 1)
  }
  const still = staleness()
  if (still !== undefined) {
    console.error(`ensure-deps: after npm ci, ${still}`)
    process.exit(1)
  }
  console.error(`ensure-deps: npm dependencies installed in ${((Date.now() - started) / 1000).toFixed(0)} s`)
}
