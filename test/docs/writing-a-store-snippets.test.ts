/**
 * The TypeScript snippets of docs/writing-a-store.md type-check against the package's own types (the
 * conformance snippet passed options `ConformanceOptions` does not have, so it failed to compile in
 * a user's strict project).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

/** The code block that follows `<!-- example: NAME -->` in a doc. */
function example(doc: string, name: string): string {
  const text = readFileSync(new URL(`../../docs/${doc}`, import.meta.url), 'utf8')
  const match = new RegExp(`<!-- example: ${name} -->\\n\`\`\`ts\\n([\\s\\S]*?)\`\`\``).exec(text)
  if (match === null) throw new Error(`docs/${doc} has no example ${name}`)
  return match[1] as string
}

/** The diagnostics of `source` type-checked as a module of this repository, `stockpyle` mapped to src/. */
function typeErrors(source: string): string[] {
  const root = process.cwd()
  const config = ts.readConfigFile(join(root, 'tsconfig.json'), ts.sys.readFile)
  const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, root)
  options.noEmit = true
  options.paths = { stockpyle: ['./src/index.ts'], 'stockpyle/testing': ['./src/testing/index.ts'] }
  const file = join(root, 'test', 'docs', '__snippet__.ts')
  const host = ts.createCompilerHost(options)
  const read = host.getSourceFile.bind(host)
  host.getSourceFile = (name, language, ...rest) =>
    name === file ? ts.createSourceFile(name, source, language, true) : read(name, language, ...rest)
  host.fileExists = (
    (exists) => (name: string) =>
      name === file || exists(name)
  )(host.fileExists.bind(host))
  const program = ts.createProgram([file], options, host)
  const sourceFile = program.getSourceFile(file)
  return [...program.getSyntacticDiagnostics(sourceFile), ...program.getSemanticDiagnostics(sourceFile)].map(
    (d) => `TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`,
  )
}

describe('docs/writing-a-store.md snippets', () => {
  it('the MapBackend and its conformance run compile (strict, as this repository is)', () => {
    const source = `${example('writing-a-store.md', 'map-backend')}\n${example('writing-a-store.md', 'conformance')}`
    expect(typeErrors(source)).toEqual([])
  }, 60_000)
})
