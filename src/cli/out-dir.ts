/**
 * The output directory of `stockpyle bench` (and `npm run bench`): checked before anything connects,
 * so that a run is not measured for nothing, and a write that still fails at the end keeps the results.
 */
import { lstatSync, mkdtempSync, readlinkSync, rmdirSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { BenchOutputError, type BenchResults, writeResults } from './bench/suite.js'
import { UsageError } from './bench-args.js'

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err))

/**
 * Checks that files can be written into `dir` (resolved against the current directory): it is a
 * directory, or the nearest part of its path that exists is one (not a symbolic link to nothing, which
 * a directory cannot be created through), so that `dir` can be created, and
 * this process can create an entry there (tried with a temporary directory, removed at once: the
 * permission bits do not tell for root, a read-only file system or an ACL). Creates nothing else.
 * @param dir where the files go: `--out`, or a directory under it (`<out>/profiles`)
 * @param option the option that names it, as the message shows it (default `--out <dir>`)
 * @throws UsageError with one line naming `option` and what is in the way
 */
export function checkOutDir(dir: string, option = `--out ${dir}`): void {
  const target = resolve(dir)
  let path = target
  for (;;) {
    let isDirectory: boolean
    try {
      isDirectory = statSync(path).isDirectory()
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      const parent = dirname(path)
      // a symbolic link to nothing (a volume not mounted): creating the directory would fail through it
      if (code === 'ENOENT') danglingLink(path, option)
      // ENOTDIR: a part of the path above is a file, found when the walk gets there
      if ((code === 'ENOENT' || code === 'ENOTDIR') && parent !== path) {
        path = parent
        continue
      }
      throw new UsageError(`${option}: cannot read ${path}: ${message(err)}`)
    }
    if (!isDirectory)
      throw new UsageError(
        path === target ? `${option}: ${path} is not a directory` : `${option}: ${path} is not a directory, so ${target} cannot be created`,
      )
    try {
      rmdirSync(mkdtempSync(join(path, '.stockpyle-bench-')))
    } catch (err) {
      throw new UsageError(`${option}: cannot write into ${path}: ${message(err)}`)
    }
    return
  }
}

/** Throws the UsageError of {@link checkOutDir} when `path` is a symbolic link whose target does not exist. */
function danglingLink(path: string, option: string): void {
  let target: string
  try {
    if (!lstatSync(path).isSymbolicLink()) return
    target = readlinkSync(path)
  } catch {
    return // nothing there (the walk goes on), or it changed meanwhile
  }
  throw new UsageError(`${option}: ${path} is a symbolic link to ${resolve(dirname(path), target)}, which does not exist`)
}

/** Where {@link saveResults} wrote the results. */
export interface SavedResults {
  readonly json: string
  readonly markdown: string
  readonly svg: string
  /**
   * Set when `dir` could not be written: the one-line reason (the files are then in a new temporary
   * directory); undefined when they are in `dir`.
   */
  readonly failed?: string
}

/**
 * Writes `results.json`, `results.md` and `results.svg` into `dir` (created if missing); when that
 * fails (the directory was removed, replaced by a file or filled up during the run), into a new
 * directory under the system's temporary directory instead, so that a run is never lost to its output.
 * @throws BenchOutputError (one line) naming both directories when neither can be written
 */
export function saveResults(results: BenchResults, dir: string): SavedResults {
  try {
    return writeResults(results, dir)
  } catch (err) {
    const failed = `cannot write the results to ${dir}: ${message(err)}`
    let fallback: string | undefined
    try {
      fallback = mkdtempSync(join(tmpdir(), 'stockpyle-bench-results-'))
      return { ...writeResults(results, fallback), failed }
    } catch (again) {
      throw new BenchOutputError(`${failed}; nor to ${fallback ?? `a new directory in ${tmpdir()}`}: ${message(again)}`)
    }
  }
}
