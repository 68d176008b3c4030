import type { Kysely } from 'kysely'
import { keys } from '../../core/model.js'

/**
 * The object every scenario reads and writes: ten fields, among them a `Date` and a nested array —
 * the shape of a typical user row. Primary key `id`, alternate key `email`.
 */
export class BenchUser {
  static readonly stockpyleName = 'StockpyleBenchUser'
  static readonly stockpyleKeys = keys('id', 'email')
  constructor(
    public id: number,
    public email: string,
    public name: string,
    public org: number,
    public role: string,
    public active: boolean,
    public score: number,
    public created: Date,
    public tags: string[],
    public points: number[][],
  ) {}
}

/** The plain-object form of {@link BenchUser} (what the raw floors and the peers store). */
export interface PlainUser {
  id: number
  email: string
  name: string
  org: number
  role: string
  active: boolean
  score: number
  created: Date
  tags: string[]
  points: number[][]
}

const ROLES = ['admin', 'editor', 'viewer', 'owner']

/** The fields of user `id`, deterministic. */
export function userFields(id: number): PlainUser {
  return {
    id,
    email: `user${id}@example.com`,
    name: `User Number ${id}`,
    org: id % 97,
    role: ROLES[id % ROLES.length] as string,
    active: id % 3 !== 0,
    score: ((id * 7919) % 10_000) / 8,
    created: new Date(1_700_000_000_000 + id * 60_000),
    tags: ['alpha', 'beta', `t${id % 10}`],
    points: [
      [id % 7, 2, 3],
      [4, 5, id % 11],
    ],
  }
}

/** User `id` as a model instance. */
export function makeUser(id: number): BenchUser {
  const f = userFields(id)
  return new BenchUser(f.id, f.email, f.name, f.org, f.role, f.active, f.score, f.created, f.tags, f.points)
}

/**
 * Columns of the run's table of {@link BenchUser} (`SqlEnv.table`, for `createTable`): the same table serves the floors and SqlStore —
 * JSON columns (jsonb on PostgreSQL) for the nested arrays, timestamptz, boolean, double precision.
 */
export const USER_COLUMNS = {
  id: 'integer',
  email: 'text',
  name: 'text',
  org: 'integer',
  role: 'text',
  active: 'boolean',
  score: 'real',
  created: 'timestamp',
  tags: 'json',
  points: 'json',
} as const

/** The row of user `id` as a hand-written query writes it: JSON columns as text; on SQLite booleans as 0/1 and the Date as ISO text. */
export function userRow(id: number, dialect: 'sqlite' | 'postgres'): Record<string, unknown> {
  const f = userFields(id)
  const row: Record<string, unknown> = { ...f, tags: JSON.stringify(f.tags), points: JSON.stringify(f.points) }
  if (dialect === 'sqlite') {
    row.active = f.active ? 1 : 0
    row.created = f.created.toISOString()
  }
  return row
}

/** The floor's write of user `id` (S5) into `table`: one Kysely `insert … on conflict (id) do update` of {@link userRow}. */
export function upsertUser(db: Kysely<any>, table: string, dialect: 'sqlite' | 'postgres', id: number): Promise<unknown> {
  const values = userRow(id, dialect)
  const { id: _id, ...rest } = values
  return db
    .insertInto(table)
    .values(values)
    .onConflict((oc) => oc.column('id').doUpdateSet(rest))
    .execute()
}

/** A small object for the memory-bound scenario (S7): primary key only. */
export class BenchItem {
  static readonly stockpyleName = 'StockpyleBenchItem'
  static readonly stockpyleKeys = keys('id')
  constructor(
    public id: number,
    public name: string,
    public n: number,
  ) {}
}

/** A small object for the memory-bound scenario (S7) with one alternate key, to calibrate per-alias overhead. */
export class BenchAliasedItem {
  static readonly stockpyleName = 'StockpyleBenchAliasedItem'
  static readonly stockpyleKeys = keys('id', 'code')
  constructor(
    public id: number,
    public code: string,
    public name: string,
    public n: number,
  ) {}
}
