import { createQueryId, DefaultQueryCompiler, type OperationNode, RawNode } from 'kysely'

/** Where each quoted token (a string, an identifier) that may hold comment-like text ends. */
const CLOSING: Readonly<Record<string, string>> = { "'": "'", '"': '"', '`': '`', '[': ']' }

/**
 * Whether SQL ending with `nodes` (a write's end modifiers, as Kysely compiles them, one space apart)
 * ends inside a block comment: `/*` left open, which SQLite reads to the end of the statement, so
 * anything appended after it — even on a line of its own — is comment. Quoted strings and identifiers,
 * and line comments, are skipped as SQLite and PostgreSQL read them (PostgreSQL's `E'\''` escapes and
 * nested block comments aside: PostgreSQL refuses a block comment left open anyway).
 * `false` when there are none.
 */
export function endsInBlockComment(nodes: readonly OperationNode[] | undefined): boolean {
  if (nodes === undefined || nodes.length === 0) return false
  const joined = RawNode.create(['', ...nodes.slice(1).map(() => ' '), ''], nodes)
  const text = new DefaultQueryCompiler().compileQuery(joined, createQueryId()).sql
  let i = 0
  while (i < text.length) {
    const c = text[i] as string
    const close = CLOSING[c]
    if (close !== undefined) {
      const end = text.indexOf(close, i + 1)
      if (end < 0) return false
      i = end + 1
    } else if (text.startsWith('--', i)) {
      const end = text.indexOf('\n', i + 2)
      if (end < 0) return false
      i = end + 1
    } else if (text.startsWith('/*', i)) {
      const end = text.indexOf('*/', i + 2)
      if (end < 0) return true
      i = end + 2
    } else {
      i++
    }
  }
  return false
}
