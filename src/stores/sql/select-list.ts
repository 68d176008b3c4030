import { type AliasedRawBuilder, type RawBuilder, sql } from 'kysely'
import type { ModelMapping } from './row-mapper.js'

/**
 * PostgreSQL types pg's default parsers turn into objects of their own, and what SqlStore reads them
 * as: PostgreSQL's text (arrays of them as arrays of text). pg's interval parser understands only the
 * `postgres` IntervalStyle (another style read as 0), and its spellings differ from PostgreSQL's
 * (`1 days`), so every read casts: any pool, whatever its parsers or the session's style, gives the
 * database's own text, which a cache keeps and a put sends back as it is.
 */
const AS_TEXT: Readonly<Record<string, string>> = {
  interval: 'text',
  point: 'text',
  circle: 'text',
  _interval: 'text[]',
  _point: 'text[]',
}

/** Per mapping: the cast of each column read as text; `undefined` when there is none (SQLite, or no such column). */
const casts = new WeakMap<ModelMapping, ReadonlyMap<string, string> | undefined>()

function castsOf(m: ModelMapping): ReadonlyMap<string, string> | undefined {
  if (casts.has(m)) return casts.get(m)
  let found: Map<string, string> | undefined
  if (m.dialect === 'postgres') {
    for (const column of m.schema.columns.values()) {
      const cast = column.kind === 'other' ? (column.readCast ?? AS_TEXT[column.dataType]) : undefined
      if (cast !== undefined) (found ??= new Map()).set(column.name, cast)
    }
  }
  casts.set(m, found)
  return found
}

/** Whether reading `m`'s rows needs an explicit column list (see {@link AS_TEXT}); `select *` does otherwise. */
export function readsAsText(m: ModelMapping): boolean {
  return castsOf(m) !== undefined
}

/** The selections of the columns `names` for `returning(…)`, each cast to text where {@link AS_TEXT} says, under its own name. */
export function selections(m: ModelMapping, names: readonly string[]): (string | AliasedRawBuilder<unknown, string>)[] {
  const cast = castsOf(m)
  return names.map((name) => {
    const type = cast?.get(name)
    return type === undefined ? name : sql`${sql.id(name)}::${sql.raw(type)}`.as(name)
  })
}

/** `*`, or every column of the table in order with the casts of {@link selections}, for `select …` and `returning …`. */
export function selectList(m: ModelMapping): RawBuilder<unknown> {
  const cast = castsOf(m)
  if (cast === undefined) return sql`*`
  return sql.join(
    [...m.schema.columns.keys()].map((name) => {
      const type = cast.get(name)
      return type === undefined ? sql.id(name) : sql`${sql.id(name)}::${sql.raw(type)} as ${sql.id(name)}`
    }),
  )
}
