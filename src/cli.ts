#!/usr/bin/env node
/**
 * The `stockpyle` executable (`npx stockpyle bench --help`). See `./cli/main.ts`.
 * @module
 */
import { main } from './cli/main.js'

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exitCode = 1
  },
)
