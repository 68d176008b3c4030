import { type Compilable, type CompiledQuery, createQueryId, type Kysely, type QueryResult } from 'kysely'

/** How many statement shapes one table keeps compiled (the oldest goes first). */
const MAX_SHAPES = 64

/**
 * The SQL of statements a store sends again and again with other values (a put of one object), compiled
 * by Kysely once per shape and then sent with each call's values. Building and compiling a Kysely query
 * costs more CPU than the rest of a one-row upsert; the SQL text of a shape never changes.
 *
 * A shape is cached only when Kysely's compiled parameters are exactly the values given, in order (each
 * value bound as one parameter, nothing inlined): otherwise, and through a Kysely that has plugins
 * (which must see every query as Kysely builds it), the statement is built and compiled on every call.
 */
export class StatementCache {
  /** Compiled statement per shape; `null`: the shape binds something else than the values as given. */
  readonly #compiled = new Map<string, CompiledQuery | null>()

  /**
   * Executes `build(db)`, a statement of `shape` whose parameters are `parameters` in order, reusing the
   * SQL compiled for that shape before. Rejects as the query does.
   */
  execute<R>(
    db: Kysely<any>,
    shape: string,
    parameters: readonly unknown[],
    build: (db: Kysely<any>) => Compilable<R>,
  ): Promise<QueryResult<R>> {
    if (db.getExecutor().plugins.length > 0) return db.executeQuery(build(db))
    const known = this.#compiled.get(shape)
    if (known != null) return db.executeQuery<R>({ query: known.query, queryId: createQueryId(), sql: known.sql, parameters })
    const compiled = build(db).compile()
    if (known === undefined) {
      // the oldest shape makes room (a Map keeps insertion order)
      if (this.#compiled.size >= MAX_SHAPES) this.#compiled.delete(this.#compiled.keys().next().value as string)
      this.#compiled.set(shape, sameValues(compiled.parameters, parameters) ? compiled : null)
    }
    return db.executeQuery(compiled)
  }
}

function sameValues(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
