import Database from 'better-sqlite3'
import { Kysely, type KyselyPlugin, type RawBuilder, type RootOperationNode, SqliteDialect, sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import type { Model } from '../../src/index.js'
import { createTable, SqlStore } from '../../src/stores/sql/index.js'
import { StatementCache } from '../../src/stores/sql/statement-cache.js'
import { ConformanceUser, conformanceTables, makeUser } from '../../src/testing/index.js'

/** A plugin that notes the kind of every query it is shown. */
class Watching implements KyselyPlugin {
  readonly seen: string[] = []
  transformQuery(args: { node: RootOperationNode }): RootOperationNode {
    this.seen.push(args.node.kind)
    return args.node
  }
  async transformResult<R>(args: { result: R }): Promise<R> {
    return args.result
  }
}

function sqlite(plugins: KyselyPlugin[] = []): Kysely<any> {
  const database = new Database(':memory:')
  database.defaultSafeIntegers(true)
  return new Kysely<any>({ dialect: new SqliteDialect({ database }), plugins })
}

/** Runs `select <expression(v)> as x` through a StatementCache for each value; returns the rows and how often the query was built. */
async function selectEach(expression: (v: number) => RawBuilder<unknown>, values: number[]): Promise<{ rows: unknown[]; built: number }> {
  const db = sqlite()
  const cache = new StatementCache()
  let built = 0
  const rows: unknown[] = []
  for (const v of values) {
    const build = (d: Kysely<any>) => {
      built++
      return d.selectNoFrom(expression(v).as('x'))
    }
    rows.push(...(await cache.execute(db, 'select', [v], build)).rows)
  }
  await db.destroy()
  return { rows, built }
}

describe('StatementCache: the SQL of a statement shape, compiled once', () => {
  it('compiles a shape once and sends it again with each call’s values', async () => {
    // (better-sqlite3 binds a number as a double, and returns it as a number)
    expect(await selectEach((v) => sql`${v}`, [1, 2, 3])).toEqual({ rows: [{ x: 1 }, { x: 2 }, { x: 3 }], built: 1 })
  })

  it('builds every time a shape whose compiled parameters are not the values given (a value inlined)', async () => {
    expect(await selectEach((v) => sql.lit(v), [1, 2])).toEqual({ rows: [{ x: 1n }, { x: 2n }], built: 2 })
  })

  it('builds every time through a Kysely with plugins, which see each query', async () => {
    const plugin = new Watching()
    const db = sqlite([plugin])
    const cache = new StatementCache()
    for (const v of [1, 2])
      expect((await cache.execute(db, 'x', [v], (d) => d.selectNoFrom(sql<number>`${v}`.as('x')))).rows).toEqual([{ x: v }])
    expect(plugin.seen).toEqual(['SelectQueryNode', 'SelectQueryNode'])
    await db.destroy()
  })
})

describe('SqlStore puts of one object through the statement cache', () => {
  async function store(db: Kysely<any>) {
    const s = new SqlStore({ db })
    for (const t of conformanceTables) await createTable(s, t.model as Model, { table: t.table, columns: t.columns })
    return s
  }

  it('keeps each row right when objects of the same model alternate between column sets', async () => {
    const s = await store(sqlite())
    const full = makeUser(1)
    const partial = makeUser(2) as unknown as Record<string, unknown>
    partial.name = undefined // left out of the statement: the column's default (none: NULL) applies
    for (let round = 0; round < 3; round++) {
      full.name = `full ${round}`
      await s.put(full)
      await s.put(partial as unknown as ConformanceUser)
      await s.put(makeUser(10 + round))
    }
    expect((await s.get(ConformanceUser, { id: 1 }))?.name).toBe('full 2')
    expect((await s.get(ConformanceUser, { id: 2 }))?.name).toBeNull() // no default on the column
    expect(await s.batchGet(ConformanceUser, [{ id: 10 }, { id: 11 }, { id: 12 }])).toEqual([makeUser(10), makeUser(11), makeUser(12)])
    await s.close()
  })

  it('lets the plugins of the Kysely it was given see every put', async () => {
    const plugin = new Watching()
    const s = await store(sqlite([plugin]))
    plugin.seen.length = 0
    for (let i = 1; i <= 3; i++) await s.put(makeUser(i))
    expect(plugin.seen.filter((k) => k === 'InsertQueryNode')).toHaveLength(3)
    await s.close()
  })
})

describe('SqlStore on a Kysely whose driver rounds 64-bit integers', () => {
  it('refuses an int8 value that came back rounded, instead of answering another value', async () => {
    const database = new Database(':memory:') // without defaultSafeIntegers: int8 comes back as a number
    const s = new SqlStore({ db: new Kysely<any>({ dialect: new SqliteDialect({ database }) }) })
    for (const t of conformanceTables) await createTable(s, t.model as Model, { table: t.table, columns: t.columns })
    const user = makeUser(10) // balance 2^53 + 11: odd, not a double
    await expect(s.put(user)).rejects.toThrow(
      /column `balance` of table `conformance_users` came back from the driver as the number 9007199254741004, past 2\^53/,
    )
    await expect(s.get(ConformanceUser, { id: 10 })).rejects.toThrow(/defaultSafeIntegers/)
    await s.close()
  })
})
