/** Type-checking the code blocks of the docs against the package's own types, as a user's strict project would. */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import ts from 'typescript'

/** The code block that follows `<!-- example: NAME -->` in a doc. */
export function example(doc: string, name: string): string {
  const text = readFileSync(new URL(`../../docs/${doc}`, import.meta.url), 'utf8')
  const match = new RegExp(`<!-- example: ${name} -->\\n\`\`\`ts\\n([\\s\\S]*?)\`\`\``).exec(text)
  if (match === null) throw new Error(`docs/${doc} has no example ${name}`)
  return match[1] as string
}

/** Each entry point of the package, mapped to its source. */
const ENTRY_POINTS: Record<string, string[]> = {
  stockpyle: ['./src/index.ts'],
  'stockpyle/testing': ['./src/testing/index.ts'],
  'stockpyle/memcache': ['./src/stores/memcache/index.ts'],
  'stockpyle/redis': ['./src/stores/redis/index.ts'],
  'stockpyle/keyv': ['./src/stores/keyv/index.ts'],
  'stockpyle/sql': ['./src/stores/sql/index.ts'],
  'stockpyle/invalidation': ['./src/invalidation/index.ts'],
}

/**
 * The diagnostics of `source` type-checked as a module of this repository (its tsconfig.json: strict,
 * `exactOptionalPropertyTypes`), the package's entry points mapped to src/.
 */
export function typeErrors(source: string): string[] {
  const root = process.cwd()
  const config = ts.readConfigFile(join(root, 'tsconfig.json'), ts.sys.readFile)
  const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, root)
  options.noEmit = true
  options.paths = ENTRY_POINTS
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
