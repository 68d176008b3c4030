import {
  type CompiledQuery,
  DeleteQueryNode,
  InsertQueryNode,
  MergeQueryNode,
  type OperationNode,
  OperationNodeTransformer,
  type QueryCompiler,
  type QueryId,
  RawNode,
  type RootOperationNode,
  UpdateQueryNode,
} from 'kysely'

/** The words every mark names itself by, in the database's syntax error. */
const NAME = 'stockpyle CacheSyncPlugin: dialect not wrapped'
let made = 0

type Write = InsertQueryNode | UpdateQueryNode | DeleteQueryNode | MergeQueryNode

/** Whether `node` is an INSERT, UPDATE, DELETE or MERGE. */
export function isWrite(node: OperationNode): node is Write {
  return InsertQueryNode.is(node) || UpdateQueryNode.is(node) || DeleteQueryNode.is(node) || MergeQueryNode.is(node)
}

/**
 * One plugin's mark on the writes it sees: how it refuses writes through a Kysely whose dialect it did
 * not wrap. It compiles to a line break and two quoted identifiers naming it (`"stockpyle
 * CacheSyncPlugin: dialect not wrapped (n)"`, n counting the plugins of the process; on a line of its
 * own, so that a line comment ending the statement does not hide it): wherever it ends an INSERT, UPDATE, DELETE or
 * MERGE, the database refuses the statement as a syntax error naming it before running anything (the
 * first may be read as the alias of a last RETURNING column; the second never fits). Only the query
 * compiler of a dialect this plugin wrapped ({@link WriteMark.compiler}) takes it out.
 */
export class WriteMark {
  readonly #sql: string

  constructor() {
    const name = `${NAME} (${++made})`
    this.#sql = `\n"${name}" "${name}"`
  }

  /** `node` with the mark ending it when it is an INSERT, UPDATE, DELETE or MERGE (others are returned as they are). */
  mark(node: RootOperationNode): RootOperationNode {
    if (!isWrite(node)) return node
    return { ...node, endModifiers: [...(node.endModifiers ?? []), RawNode.createWithSql(this.#sql)] } as RootOperationNode
  }

  /**
   * The query compiler of a dialect the plugin wrapped: `compiler`, with this mark taken out of each
   * statement first (nested writes — a CTE, a builder inside raw SQL — are looked for only when the
   * compiled SQL shows it), so the SQL, and the node the driver is given, are the statement as built.
   * Another plugin's mark stays: the database refuses that statement.
   */
  compiler(compiler: QueryCompiler): QueryCompiler {
    return {
      compileQuery: (node: RootOperationNode, queryId: QueryId): CompiledQuery => {
        const unmarked = this.#unmarkRoot(node)
        const compiled = compiler.compileQuery(unmarked, queryId)
        if (!compiled.sql.includes(this.#sql)) return compiled
        return compiler.compileQuery(new Unmarker((n) => this.#is(n)).transformNode(unmarked, queryId), queryId)
      },
    }
  }

  #is(node: OperationNode): boolean {
    return RawNode.is(node) && node.sqlFragments.length === 1 && node.sqlFragments[0] === this.#sql && node.parameters.length === 0
  }

  /** `node` without this mark ending it (the same node when it has none). */
  #unmarkRoot(node: RootOperationNode): RootOperationNode {
    if (!isWrite(node) || node.endModifiers?.some((m) => this.#is(m)) !== true) return node
    const rest = node.endModifiers.filter((m) => !this.#is(m))
    return { ...node, endModifiers: rest.length === 0 ? undefined : rest } as RootOperationNode
  }
}

/** Replaces a mark on writes nested in a statement by empty SQL. */
class Unmarker extends OperationNodeTransformer {
  readonly #isMark: (node: OperationNode) => boolean

  constructor(isMark: (node: OperationNode) => boolean) {
    super()
    this.#isMark = isMark
  }

  protected override transformRaw(node: RawNode, queryId?: QueryId): RawNode {
    return this.#isMark(node) ? RawNode.createWithSql('') : super.transformRaw(node, queryId)
  }
}
