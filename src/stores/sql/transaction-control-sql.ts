import type { SqlDialect } from './column-kind.js'

/** First words of the statements that begin, end or mark a transaction (`start`, `prepare`: see {@link controlAt}). */
const CONTROL = new Set(['abort', 'begin', 'commit', 'end', 'release', 'rollback', 'savepoint', 'start'])
/** An unquoted name or keyword (PostgreSQL also allows `$` after the first character). */
const WORD = /[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*/y
/** The opening of a PostgreSQL dollar-quoted string: `$$` or `$tag$`. */
const DOLLAR_TAG = /\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y
/** Words between CREATE and what it creates. */
const CREATE_MODIFIERS = new Set(['or', 'replace', 'temp', 'temporary', 'constraint'])
/** What a CREATE statement with a `BEGIN … END` body creates. */
const BODIED = new Set(['function', 'procedure', 'trigger'])
const IDENTIFIER_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/

/**
 * The transaction control one of the statements of `text` begins with — `rollback`, `commit`, `end`,
 * `abort`, `begin`, `start transaction`, `savepoint`, `release` or `prepare transaction` followed by a
 * string (not `PREPARE transaction AS …`, a statement named "transaction"; lowercase) —
 * or `undefined` when none does. It reads `text` as the database's lexer does, without parsing it: a
 * statement begins at the start and after each `;` outside quotes (`'…'`, PostgreSQL's `E'…'` with
 * backslash escapes and `$tag$…$tag$`, `"…"`, SQLite's `` `…` `` and `[…]`), comments (`--`, and
 * `/* … *\/`, nested on PostgreSQL) and the `BEGIN … END` body of a `CREATE FUNCTION`, `PROCEDURE` or
 * `TRIGGER` (PostgreSQL's `BEGIN ATOMIC`, a SQLite trigger's), whose inner `;` ends no statement; blanks
 * and comments before its first word are skipped.
 *
 * Not read as the database would: strings under PostgreSQL's `standard_conforming_strings = off` (a
 * backslash then escapes a quote in every string), and an unquoted `begin`, `case` or `end` used as a
 * name in such a `CREATE` statement. (SqlTransaction checks before COMMIT that its transaction was not ended.)
 */
export function transactionControlIn(text: string, dialect: SqlDialect): string | undefined {
  const scanner = new Scanner(text, dialect)
  while (scanner.at < text.length) {
    const control = scanner.controlAt()
    if (control !== undefined) return control
    scanner.toNextStatement()
  }
  return undefined
}

class Scanner {
  readonly #text: string
  readonly #postgres: boolean
  at = 0
  /** The first word of the statement {@link controlAt} looked at, lowercase. */
  #first: string | undefined

  constructor(text: string, dialect: SqlDialect) {
    this.#text = text
    this.#postgres = dialect === 'postgres'
  }

  /** Skips blanks and comments from here; then returns the control the statement begins with, if any. */
  controlAt(): string | undefined {
    this.#skipBlanks()
    const word = this.#word()?.toLowerCase()
    this.#first = word
    if (word === undefined || (!CONTROL.has(word) && word !== 'prepare')) return undefined
    if (word === 'start') return 'start transaction'
    if (word !== 'prepare') return word
    // PREPARE name [(types)] AS … prepares a statement (also one named "transaction"); PREPARE
    // TRANSACTION 'id' ends the transaction: its id is a string
    this.#skipBlanks()
    if (this.#word()?.toLowerCase() !== 'transaction') return undefined
    this.#skipBlanks()
    return this.#stringStarts() ? 'prepare transaction' : undefined
  }

  /** Whether a string literal starts here: `'…'`, `E'…'`, `U&'…'`, `$tag$…$tag$`. */
  #stringStarts(): boolean {
    const text = this.#text
    const c = text[this.at]
    if (c === "'") return true
    if (c === 'e' || c === 'E') return text[this.at + 1] === "'"
    if (c === 'u' || c === 'U') return text.startsWith("&'", this.at + 1)
    if (c !== '$') return false
    DOLLAR_TAG.lastIndex = this.at
    return DOLLAR_TAG.test(text)
  }

  /** Moves past the `;` that ends the statement begun here (or to the end of the text). */
  toNextStatement(): void {
    const text = this.#text
    let parens = 0
    let body = 0
    // CREATE [OR REPLACE | TEMP] FUNCTION | PROCEDURE | TRIGGER may hold a BEGIN … END body
    let header = this.#first === 'create'
    let bodied = false
    while (this.at < text.length) {
      const c = text[this.at] as string
      if (c === ';' && parens === 0 && body === 0) {
        this.at++
        return
      }
      if (this.#skipComment() || this.#skipQuoted(c)) continue
      const word = this.#word()
      if (word === undefined) {
        if (c === '(') parens++
        else if (c === ')' && parens > 0) parens--
        this.at++
        continue
      }
      const lower = word.toLowerCase()
      if (header && !CREATE_MODIFIERS.has(lower)) {
        header = false
        bodied = BODIED.has(lower)
      }
      // a body's BEGIN … END holds statements; CASE … END inside it closes a CASE, not the body
      if (!bodied || parens > 0) continue
      if (lower === 'begin' || (lower === 'case' && body > 0)) body++
      else if (lower === 'end' && body > 0) body--
    }
  }

  /** The word starting here (moving past it), or `undefined`. */
  #word(): string | undefined {
    WORD.lastIndex = this.at
    const match = WORD.exec(this.#text)
    if (match === null) return undefined
    this.at = WORD.lastIndex
    return match[0]
  }

  #skipBlanks(): void {
    while (this.at < this.#text.length) {
      if (/\s/.test(this.#text[this.at] as string)) this.at++
      else if (!this.#skipComment()) return
    }
  }

  /** Moves past a comment starting here. @returns whether there was one. */
  #skipComment(): boolean {
    const text = this.#text
    if (text.startsWith('--', this.at)) {
      const end = text.indexOf('\n', this.at)
      this.at = end < 0 ? text.length : end + 1
      return true
    }
    if (!text.startsWith('/*', this.at)) return false
    let depth = 0
    while (this.at < text.length) {
      if (text.startsWith('/*', this.at)) {
        // SQLite's comments do not nest: its first `*/` ends it
        depth = this.#postgres ? depth + 1 : 1
        this.at += 2
      } else if (text.startsWith('*/', this.at)) {
        this.at += 2
        if (--depth === 0) return true
      } else this.at++
    }
    return true
  }

  /** Moves past a quoted string or name starting here (with `c`). @returns whether there was one. */
  #skipQuoted(c: string): boolean {
    const text = this.#text
    const before = this.at > 0 ? (text[this.at - 1] as string) : ' '
    if (c === "'") {
      // PostgreSQL's E'…' takes backslash escapes (E preceded by no other letter of a name)
      const escapes =
        this.#postgres && (before === 'e' || before === 'E') && (this.at < 2 || !IDENTIFIER_CHAR.test(text[this.at - 2] as string))
      this.at = closing(text, this.at + 1, "'", escapes)
      return true
    }
    if (c === '"' || (!this.#postgres && c === '`')) {
      this.at = closing(text, this.at + 1, c, false)
      return true
    }
    if (!this.#postgres && c === '[') {
      const end = text.indexOf(']', this.at + 1)
      this.at = end < 0 ? text.length : end + 1
      return true
    }
    if (!this.#postgres || c !== '$' || IDENTIFIER_CHAR.test(before)) return false
    DOLLAR_TAG.lastIndex = this.at
    const tag = DOLLAR_TAG.exec(text)?.[0]
    if (tag === undefined) return false
    const end = text.indexOf(tag, this.at + tag.length)
    this.at = end < 0 ? text.length : end + tag.length
    return true
  }
}

/** The position after the `quote` that closes a string whose text starts at `from` (a doubled quote is one quote). */
function closing(text: string, from: number, quote: string, escapes: boolean): number {
  let at = from
  while (at < text.length) {
    const c = text[at] as string
    if (escapes && c === '\\') at += 2
    else if (c !== quote) at++
    else if (text[at + 1] === quote) at += 2
    else return at + 1
  }
  return text.length
}
