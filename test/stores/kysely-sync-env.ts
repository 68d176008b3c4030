import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll } from 'vitest'
import { isStockpyleError } from '../../src/index.js'
import { selectedStores } from '../harness/servers.js'

/** The databases a kysely-sync test file runs on. */
export type Kind = 'sqlite' | 'postgres'

/** The databases STOCKPYLE_STORES selects, each with its name for test titles. */
export function selectedKinds(): [string, Kind][] {
  const stores = selectedStores()
  return [
    ...(stores.has('sqlite') ? [['SQLite', 'sqlite'] as [string, Kind]] : []),
    ...(stores.has('postgres') ? [['PostgreSQL', 'postgres'] as [string, Kind]] : []),
  ]
}

/** A directory for a test file's SQLite databases (`stockpyle-<name>-…` in the system's temp dir), removed after the file. */
export function scratchDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `stockpyle-${name}-`))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Whether `e` is a refusal with E_UNSUPPORTED. */
export const unsupported = (e: unknown): boolean => isStockpyleError(e, 'E_UNSUPPORTED')
