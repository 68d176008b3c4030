import type { BenchResults } from './bench-results.js'
import { byLibrary } from './scenarios/common.js'

/**
 * The cases that make the run a failure: the floor or the headline (stockpyle) case of a row that
 * threw or was not measured, so that the row has no verdict. Each once (rows of one group share
 * their cases), as `<row> / <case>: <error>`, e.g. `S2 redis / floor: Error: floor: unexpected miss`.
 * Empty when every row has its figures.
 */
export function failedCases(results: BenchResults): string[] {
  const failed = new Map<string, string>()
  for (const row of results.rows) {
    for (const library of [row.floor, row.headline]) {
      if (library === undefined) continue
      const found = byLibrary(row.cases, library)
      const name = `${found?.row ?? row.row} / ${library}`
      if (found === undefined) failed.set(name, `${name}: not measured`)
      else if (found.error !== undefined) failed.set(name, `${name}: ${found.error}`)
    }
  }
  return [...failed.values()]
}
