import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'
import Database from 'better-sqlite3'
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import {
  ChainedStore,
  InvalidOptionError,
  isStockpyleError,
  MissingKeyAttributeError,
  type Model,
  NonUniqueKeyError,
  ProcessMemoryStore,
  SerializationError,
  StockpyleError,
  StoreClosedError,
  StoreUnavailableError,
  UnsupportedOperationError,
} from '../../src/index.js'
import { createTable, SqlStore, type SqlStoreOptions, type TransactionChange } from '../../src/stores/sql/index.js'
import { ConformanceUser, conformanceTables, makeUser } from '../../src/testing/index.js'
import { type SqlEnv as Env, sqlTestEnv } from './sql-test-env.js'

// ---------------------------------------------------------------------------------------------------
// Models of these tests

/** A model read back by the compiled row constructor. */
class Plain {
  static readonly stockpyleName = 'SqlTestPlain'
  static readonly stockpyleKeys = ['id'] as const
  declare label: string | null
  score = 0
  constructor(public id: number) {}
}

/** A model whose class has an accessor for an attribute: rows must not be read through it. */
class Guarded {
  static readonly stockpyleName = 'SqlTestGuarded'
  static readonly stockpyleKeys = ['id'] as const
  static setterRuns = 0
  declare label: string | null
  score = 0
  constructor(public id: number) {}
}
Object.defineProperty(Guarded.prototype, 'label', {
  get: () => 'from the getter',
  set: () => {
    Guarded.setterRuns++
  },
  configurable: true,
})

/** A model read from tables whose columns map to one attribute under camelCase. */
class Clash {
  static readonly stockpyleName = 'SqlTestClash'
  static readonly stockpyleKeys = ['id'] as const
  constructor(public id: number) {}
}

class Account {
  static readonly stockpyleName = 'SqlTestAccount'
  static readonly stockpyleKeys = ['id', 'email'] as const
  id?: number
  email = ''
  status?: string
  score?: number
  constructor(email: string, id?: number) {
    this.email = email
    if (id !== undefined) this.id = id
  }
}

class Everything {
  static readonly stockpyleName = 'SqlTestEverything'
  static readonly stockpyleKeys = ['key', ['big', 'flag']] as const
  key = ''
  count = 0
  big = 0n
  ratio = 0
  label = ''
  flag = false
  at: Date = new Date(0)
  doc: unknown = null
  blob: Uint8Array = Buffer.alloc(0)
  missing: string | null = null
}

const everythingColumns = {
  key: 'text',
  count: 'integer',
  big: 'bigint',
  ratio: 'real',
  label: 'text',
  flag: 'boolean',
  at: 'timestamp',
  doc: 'json',
  blob: 'bytes',
  missing: 'text',
} as const

function makeEverything(key: string): Everything {
  const e = new Everything()
  e.key = key
  e.count = -2147483648
  e.big = 9223372036854775807n
  e.ratio = 0.1 + 0.2
  e.label = `it's "quoted"; -- ü 🎉`
  e.flag = true
  e.at = new Date(Date.UTC(1999, 11, 31, 23, 59, 59, 999))
  e.doc = { list: [1, 'two', null], map: new Map([['k', new Set([1n])]]), when: new Date(5), neg: -0, $escape: { $date: 'x' } }
  e.blob = Buffer.from([0, 1, 254, 255])
  return e
}

class Membership {
  static readonly stockpyleName = 'SqlTestMembership'
  static readonly stockpyleKeys = [['orgId', 'userId']] as const
  constructor(
    public orgId: number,
    public userId: number,
    public role = 'member',
  ) {}
}

class Token {
  static readonly stockpyleName = 'SqlTestToken'
  static readonly stockpyleKeys = ['id', 'owner'] as const
  constructor(
    public id: number,
    public owner: string,
  ) {}
}

/** Column names with commas: statement shapes must not confuse `a` + `b,c` with `a,b` + `c`. */
class CommaColumns {
  static readonly stockpyleName = 'SqlTestCommaColumn'
  static readonly stockpyleKeys = ['id'] as const
  constructor(
    public id: number,
    attributes: Record<string, string>,
  ) {
    Object.assign(this, attributes)
  }
}

/** A primary key and an alternate one, with a JSON attribute. */
class Repeated {
  static readonly stockpyleName = 'SqlTestRepeated'
  static readonly stockpyleKeys = ['id', 'e'] as const
  constructor(
    public id: number,
    public e: string,
    public v: unknown,
  ) {}
}

/** A model with a single and a composite alternate key, for createTable in another schema. */
class Listed {
  static readonly stockpyleName = 'SqlTestListed'
  static readonly stockpyleKeys = ['id', 'email', ['orgId', 'slug']] as const
  constructor(
    public id: number | undefined,
    public email: string,
    public orgId: number,
    public slug: string,
  ) {}
}

// ---------------------------------------------------------------------------------------------------
// One isolated database per test: SQLite in memory, or a PostgreSQL schema of its own.

const { dialects, open: makeEnv } = sqlTestEnv('stockpyle_sql_store_tests', 'SqlTest')
const stores = new Set<string>(dialects)

const code = (c: string) => (err: unknown) => isStockpyleError(err, c as never)

/** Returns a function that resolves once it was called `n` times (each transaction holds its first row lock by then). */
function barrier(n: number): () => Promise<void> {
  let open!: () => void
  const all = new Promise<void>((resolve) => {
    open = resolve
  })
  return () => {
    if (--n === 0) open()
    return all
  }
}

/** The message of a deadlock or serialization failure: the whole transaction is rolled back, and may be run again. */
const retry =
  /the database rolled the whole transaction back \(SQLSTATE (40P01|40001)[^)]*\): nothing it wrote is kept .*, and it is safe to run the whole transaction again/

/**
 * `actual` is `original`, or (through a chain, which names a copy of a layer's error after itself) a copy
 * of it: same class, code and cause, its message within the copy's.
 */
function sameOrNamedCopy(actual: unknown, original: unknown, label: string): void {
  if (actual === original) return
  expect(actual, label).toBeInstanceOf((original as object).constructor)
  expect((actual as Error).message, label).toContain((original as Error).message)
  expect((actual as { code?: unknown }).code, label).toBe((original as { code?: unknown }).code)
  expect((actual as Error).cause, label).toBe((original as Error).cause)
}

async function rowCount(env: Env, table: string): Promise<number> {
  const { rows } = await sql<{ n: unknown }>`select count(*) as n from ${sql.table(env.table(table))}`.execute(env.db)
  return Number(rows[0]?.n)
}

/** An accounts table: generated id, unique email, defaults for status and score. */
async function accountsTable(env: Env): Promise<void> {
  const t = sql.table(env.table('accounts'))
  const id = env.dialect === 'sqlite' ? sql`integer primary key autoincrement` : sql`integer generated by default as identity primary key`
  await sql`create table ${t} (id ${id}, email text not null unique, status text not null default 'new', score integer default 10)`.execute(
    env.db,
  )
}

// ---------------------------------------------------------------------------------------------------

describe('SqlStore options', () => {
  const bad: [string, unknown, SqlStoreOptions | undefined, RegExp][] = [
    ['no connection', undefined, {}, /\{ url \} or \{ db \}/],
    ['url scheme', { url: 'mysql://x' }, {}, /`url`/],
    ['empty sqlite path', { url: 'sqlite:' }, {}, /`url`/],
    ['url and db', { url: 'sqlite::memory:', db: {} }, {}, /`url` or option `db`/],
    ['db not Kysely', { db: { query: () => 1 } }, {}, /`db`/],
    ['tables entry', { url: 'sqlite::memory:' }, { tables: { User: 'bad name; drop' } }, /`tables`/],
    ['tables map key', { url: 'sqlite::memory:' }, { tables: new Map([[{} as Model, 'users']]) }, /`tables`/],
    ['tables type', { url: 'sqlite::memory:' }, { tables: 5 as never }, /`tables`/],
    // an array was read as a record: `['users']` mapped a model named "0" to the table users
    [
      'tables array',
      { url: 'sqlite::memory:' },
      { tables: ['users'] as never },
      /option `tables` must be a Map, a record or a function, got/,
    ],
    ['tables Date', { url: 'sqlite::memory:' }, { tables: new Date(0) as never }, /option `tables` must be a Map, a record or a function/],
    // accepted for sharing options with cache stores and ignored, but checked as theirs are
    ['prefix NaN', { url: 'sqlite::memory:' }, { prefix: Number.NaN as never }, /option `prefix` must be/],
    ['prefix object', { url: 'sqlite::memory:' }, { prefix: {} as never }, /option `prefix` must be/],
    ['prefix with a space', { url: 'sqlite::memory:' }, { prefix: 'has space' }, /option `prefix` must be/],
    ['clock object', { url: 'sqlite::memory:' }, { clock: {} }, /option `clock` must have a now\(\) method/],
    ['clock function', { url: 'sqlite::memory:' }, { clock: () => 1 }, /option `clock` must have a now\(\) method/],
    ['clock number', { url: 'sqlite::memory:' }, { clock: 5 }, /option `clock` must have a now\(\) method/],
    ['camelCase', { url: 'sqlite::memory:' }, { camelCase: 'yes' as never }, /`camelCase`/],
    ['checkUniqueKeys', { url: 'sqlite::memory:' }, { checkUniqueKeys: 1 as never }, /`checkUniqueKeys`/],
    ['bytes', { url: 'sqlite::memory:' }, { bytes: 'ArrayBuffer' as never }, /`bytes`/],
    ['dialect', { url: 'sqlite::memory:' }, { dialect: 'mysql' as never }, /`dialect`/],
    ['maxConnections', { url: 'postgres://x' }, { maxConnections: 0 }, /`maxConnections`/],
    [
      'dialect with a sqlite url',
      { url: 'sqlite::memory:' },
      { dialect: 'postgres' },
      /option `dialect` applies only to a `db`: the scheme of option `url` decides the dialect \(sqlite: → SQLite/,
    ],
    [
      'dialect with a postgres url, even the same one',
      { url: 'postgres://h/db' },
      { dialect: 'postgres' },
      /option `dialect` applies only to a `db`/,
    ],
    [
      'maxConnections with a sqlite url',
      { url: 'sqlite::memory:' },
      { maxConnections: 5 },
      /option `maxConnections` is the pool size of a `postgres:\/\/` url: a SQLite database opened from a `sqlite:` url has one connection/,
    ],
    [
      'query parameters in a sqlite url',
      { url: 'sqlite:./rel.db?mode=ro' },
      {},
      /option `url` `"sqlite:\.\/rel\.db\?mode=ro"` has a query \(`\?…`\): SqlStore does not support query parameters in a SQLite url/,
    ],
    ['query parameters in a sqlite memory url', { url: 'sqlite::memory:?cache=shared' }, {}, /query parameters/],
    ['timeout 0', { url: 'postgres://x' }, { timeout: 0 }, /`timeout` must be a number of ms > 0/],
    ['timeout past 2^31', { url: 'sqlite::memory:' }, { timeout: 2 ** 31 }, /`timeout`/],
    ['timeout not a number', { url: 'sqlite::memory:' }, { timeout: '5s' as never }, /`timeout`/],
    [
      'statement_timeout in the url',
      { url: 'postgres://u@h/db?statement_timeout=100' },
      { timeout: 5000 },
      /sets statement_timeout.*option `timeout`/,
    ],
    [
      'query_timeout in the url',
      { url: 'postgresql://u@h/db?sslmode=disable&query_timeout=100' },
      {},
      /sets query_timeout.*option `timeout`/,
    ],
    ['connectionTimeoutMillis in the url', { url: 'postgres://h/db?connectionTimeoutMillis=100' }, {}, /sets connectionTimeoutMillis/],
    ['connect_timeout in the url', { url: 'postgres://h/db?connect_timeout=1' }, {}, /sets connect_timeout/],
    [
      '-c statement_timeout in the url options',
      { url: 'postgres://h/db?options=-c%20statement_timeout%3D100' },
      {},
      /statement_timeout in `options`/,
    ],
    [
      '--statement-timeout in the url options',
      { url: 'postgres://h/db?options=-c%20search_path%3Dx%20--statement-timeout%3D1s' },
      {},
      /`options`/,
    ],
    ['name', { url: 'sqlite::memory:' }, { name: '' }, /`name`/],
    ['lifetime', { url: 'sqlite::memory:' }, { lifetime: 5 } as never, /`lifetime`/],
    ['polymorphic', { url: 'sqlite::memory:' }, { polymorphic: true } as never, /`polymorphic`/],
    ['unknown', { url: 'sqlite::memory:' }, { tabels: {} } as never, /unknown option `tabels`/],
  ]
  it('refuses a postgres url pg cannot read (port out of range or not a number, a malformed host) in the constructor, naming `url` without its password', () => {
    for (const url of [
      'postgres://postgres:hunter2@db.example:99999/postgres',
      'postgres://postgres:hunter2@127.0.0.1:abc/postgres',
      'postgres://postgres:hunter2@[bad/postgres',
      'postgresql://postgres:hunter2@db.example:0/postgres',
      'postgres://postgres:hunter2@db.example/postgres?port=70000',
    ]) {
      const err = (() => {
        try {
          new SqlStore({ url })
        } catch (e) {
          return e
        }
      })() as Error
      expect(err, url).toBeInstanceOf(InvalidOptionError)
      expect(err.message, url).toMatch(/option `url`/)
      expect(inspect(err, { depth: 5 }), url).not.toContain('hunter2')
    }
  })

  it('accepts a postgres url with other parameters (sslmode, options without statement_timeout, lock_timeout)', () => {
    for (const url of [
      'postgres://h/db?sslmode=disable',
      'postgres://h/db?options=-c%20search_path%3Dx&lock_timeout=100',
      'postgres://h/db',
      'postgres://u:p@h:65535/db?port=5432',
      'postgres://u:pa%ss w@h:1/db',
      'postgres://u:pw@/db?host=/tmp',
      'postgres:///db?host=/var/run/postgresql',
      'postgres://%2Fvar%2Frun%2Fpostgresql/db',
      'postgres://[::1]:5432/db',
    ]) {
      expect(() => new SqlStore({ url }), url).not.toThrow()
    }
  })

  for (const [what, connection, options, message] of bad) {
    it(`rejects ${what} synchronously with InvalidOptionError naming it`, () => {
      expect(() => new SqlStore(connection as never, options)).toThrow(InvalidOptionError)
      expect(() => new SqlStore(connection as never, options)).toThrow(message)
    })
  }

  it('names the argument an option belongs to when it is given in the other one', () => {
    const message = (make: () => unknown): string => {
      try {
        make()
      } catch (err) {
        expect(err).toBeInstanceOf(InvalidOptionError)
        return (err as Error).message
      }
      throw new Error('the constructor accepted it')
    }
    // a store option in the connection (first argument)
    expect(message(() => new SqlStore({ url: 'sqlite::memory:', timeout: 5000 } as never))).toBe(
      'SqlStore "sql": `timeout` is an option of the second argument: new SqlStore(connection, { timeout })',
    )
    expect(message(() => new SqlStore({ url: 'sqlite::memory:', tables: {} } as never, { name: 'main' }))).toBe(
      'SqlStore "main": `tables` is an option of the second argument: new SqlStore(connection, { tables })',
    )
    expect(message(() => new SqlStore({ url: 'sqlite::memory:', timout: 5000 } as never))).toBe(
      'SqlStore "sql": unknown option `timout`: did you mean `timeout` (ms), an option of the second argument: new SqlStore(connection, { timeout })?',
    )
    // a connection setting in the options (second argument)
    expect(message(() => new SqlStore({ url: 'sqlite::memory:' }, { url: 'sqlite::memory:' } as never))).toBe(
      'SqlStore: `url` is a setting of the connection, the first argument: new SqlStore({ url }, options)',
    )
    expect(message(() => new SqlStore({ url: 'sqlite::memory:' }, { uri: 'sqlite::memory:' } as never))).toBe(
      'SqlStore: unknown option `uri`: did you mean `url`, a setting of the connection, the first argument: new SqlStore({ url }, options)?',
    )
    // a name of neither argument lists the argument's own names, as before
    expect(message(() => new SqlStore({ url: 'sqlite::memory:', zzzzzz: 1 } as never))).toBe(
      'SqlStore "sql": unknown option `zzzzzz` (known options: db, url)',
    )
    // the store's name is quoted once in every message of the constructor
    expect(message(() => new SqlStore({ url: 'postgres://x' }, { maxConnections: 0 }))).toMatch(/^SqlStore "sql": option `maxConnections`/)
  })

  it('has the capabilities of an authoritative, key-generating, non-expiring store', () => {
    const store = new SqlStore({ url: 'sqlite::memory:' })
    expect(store.capabilities).toMatchObject({ authoritative: true, generatesKeys: true, expires: false, polymorphic: false })
    expect(store.dialect).toBe('sqlite')
    expect(new SqlStore({ url: 'postgres://127.0.0.1:1/x' }).dialect).toBe('postgres')
  })

  it('derives table names: tables option, static stockpyleTable, then snake_case plural', () => {
    class Box {
      static readonly stockpyleName = 'SqlTestBoxEntry'
      static readonly stockpyleKeys = ['id'] as const
    }
    class City {
      static readonly stockpyleName = 'SqlTestCity'
      static readonly stockpyleKeys = ['id'] as const
      static readonly stockpyleTable = 'towns'
    }
    const store = new SqlStore({ url: 'sqlite::memory:' })
    expect(store.tableOf(ConformanceUser)).toBe('conformance_users')
    expect(store.tableOf(Box)).toBe('sql_test_box_entries')
    expect(store.tableOf(City)).toBe('towns')
    expect(new SqlStore({ url: 'sqlite::memory:' }, { tables: new Map([[City as Model, 'cities']]) }).tableOf(City)).toBe('cities')
    expect(new SqlStore({ url: 'sqlite::memory:' }, { tables: { SqlTestCity: 'c2' } }).tableOf(City)).toBe('c2')
    expect(new SqlStore({ url: 'sqlite::memory:' }, { tables: () => undefined }).tableOf(City)).toBe('towns')
    expect(() => new SqlStore({ url: 'sqlite::memory:' }, { tables: () => 'x"y' }).tableOf(City)).toThrow(/not a valid table name/)
  })

  it('refuses option maxConnections with a db of the application (its pool is configured by the application)', () => {
    const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(':memory:') }) })
    expect(() => new SqlStore({ db }, { maxConnections: 5 })).toThrow(InvalidOptionError)
    expect(() => new SqlStore({ db }, { maxConnections: 5 })).toThrow(/option `maxConnections` is the pool size of a `postgres:\/\/` url/)
    expect(new SqlStore({ db }, { dialect: 'sqlite' }).dialect).toBe('sqlite')
  })

  it('refuses option timeout with a db of the application (its pool is configured by the application)', () => {
    const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(':memory:') }) })
    expect(() => new SqlStore({ db }, { timeout: 1000 })).toThrow(InvalidOptionError)
    expect(() => new SqlStore({ db }, { timeout: 1000 })).toThrow(/`timeout` applies to a connection SqlStore opens from a `url`/)
  })

  it.runIf(stores.has('sqlite'))(
    'SQLite: option timeout is the busy timeout, after which a locked database is a StoreUnavailableError',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'stockpyle-busy-'))
      const file = join(dir, 'db.sqlite')
      const store = new SqlStore({ url: `sqlite:${file}` }, { timeout: 200 })
      const other = new Database(file)
      try {
        await createTable(store, Membership, { columns: { orgId: 'integer', userId: 'integer', role: 'text' } })
        other.exec('begin immediate') // holds the write lock
        const started = performance.now()
        const err = await store.put(new Membership(1, 2)).catch((e: unknown) => e)
        const ms = performance.now() - started
        expect(err).toBeInstanceOf(StoreUnavailableError)
        expect((err as Error & { cause: { code: string } }).cause.code).toMatch(/^SQLITE_BUSY/)
        expect(ms).toBeGreaterThanOrEqual(150)
        expect(ms).toBeLessThan(3000) // better-sqlite3's default would wait 5 s
        other.exec('rollback')
        await store.put(new Membership(1, 2))
      } finally {
        other.close()
        await store.close()
        rmSync(dir, { recursive: true, force: true })
      }
    },
  )

  it('a missing driver or unreachable server is a StoreUnavailableError', async () => {
    const store = new SqlStore({ url: 'postgres://postgres@127.0.0.1:1/none' })
    await expect(store.get(Account, { id: 1 })).rejects.toSatisfy(code('E_STORE_UNAVAILABLE'))
    await store.close()
  })
})

for (const dialect of dialects) {
  describe(`SqlStore on ${dialect}`, () => {
    it('upserts on the primary key: a second put replaces the row, never duplicates it', async () => {
      const env = await makeEnv(dialect)
      await accountsTable(env)
      const store = env.newStore()
      const a = new Account('a@example.com', 7)
      a.status = 'first'
      await store.put(a)
      a.status = 'second'
      a.email = 'a2@example.com'
      await store.put(a)
      expect(await rowCount(env, 'accounts')).toBe(1)
      expect(await store.get(Account, { id: 7 })).toEqual(a)
      expect(await store.get(Account, { email: 'a@example.com' })).toBeUndefined()
      await store.batchPut([a, new Account('b@example.com', 8), a])
      expect(await rowCount(env, 'accounts')).toBe(2)
    })

    it('writes generated ids and column defaults back onto the objects, in batch order', async () => {
      const env = await makeEnv(dialect)
      await accountsTable(env)
      const store = env.newStore()
      const one = new Account('one@example.com')
      await store.put(one)
      expect(one.id).toBeTypeOf('number')
      expect(one.status).toBe('new')
      expect(one.score).toBe(10)
      const batch = [new Account('b1@example.com'), new Account('b2@example.com', 100), new Account('b3@example.com')]
      batch[2]!.status = 'custom'
      await store.batchPut(batch)
      expect(batch[1]!.id).toBe(100)
      expect(batch.map((b) => b.status)).toEqual(['new', 'new', 'custom'])
      for (const b of batch) expect(await store.get(Account, { email: b.email })).toEqual(b)
      expect(new Set(batch.map((b) => b.id)).size).toBe(3)
      expect(batch[0]!.id! < batch[2]!.id!).toBe(true)
    })

    it('an undefined attribute takes the default on insert and keeps the stored value on update', async () => {
      const env = await makeEnv(dialect)
      await accountsTable(env)
      const store = env.newStore()
      const a = new Account('keep@example.com', 1)
      a.score = 42
      await store.put(a)
      const partial = new Account('keep@example.com', 1)
      await store.put(partial)
      expect(partial.score).toBe(42)
      expect(partial.status).toBe('new')
    })

    it('a collision on an alternate unique key is E_KEY_CONFLICT and nothing of the batch is written', async () => {
      const env = await makeEnv(dialect)
      await accountsTable(env)
      const store = env.newStore()
      const a = new Account('taken@example.com', 1)
      await store.put(a)
      await expect(store.put(new Account('taken@example.com', 2))).rejects.toSatisfy(code('E_KEY_CONFLICT'))
      const fresh = Array.from({ length: 5 }, (_, i) => new Account(`new${i}@example.com`, 10 + i))
      const err = await store.batchPut([...fresh, new Account('taken@example.com', 3)]).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(StockpyleError)
      expect((err as StockpyleError).code).toBe('E_KEY_CONFLICT')
      expect((err as Error).message).toMatch(/SqlTestAccount/)
      expect(await rowCount(env, 'accounts')).toBe(1)
      expect(await store.get(Account, { id: 1 })).toEqual(a)
    })

    it('E_KEY_CONFLICT also across chunks of a large batch (one transaction)', async () => {
      const env = await makeEnv(dialect)
      await accountsTable(env)
      const store = env.newStore()
      // 4 columns per row: 20000 rows take 3 statements on SQLite (32766 parameters) and 2 on PostgreSQL (65535).
      const many: Account[] = Array.from({ length: 20_000 }, (_, i) =>
        Object.assign(new Account(`m${i}@example.com`, i + 1), { score: i, status: 's' }),
      )
      many.push(new Account('m0@example.com', 999_999))
      await expect(store.batchPut(many)).rejects.toSatisfy(code('E_KEY_CONFLICT'))
      expect(await rowCount(env, 'accounts')).toBe(0)
      many.pop()
      env.queries.length = 0
      await store.batchPut(many)
      expect(await rowCount(env, 'accounts')).toBe(20_000)
      const inserts = env.queries.filter((q) => /^insert/i.test(q))
      expect(inserts.length).toBe(dialect === 'sqlite' ? 3 : 2)
    })

    it('checks at first use that every key has a unique index, naming the missing one (E_SCHEMA)', async () => {
      const env = await makeEnv(dialect)
      await sql`create table ${sql.table(env.table('tokens'))} (id integer primary key, owner text not null)`.execute(env.db)
      const store = env.newStore()
      const err = await store.get(Token, { id: 1 }).catch((e: unknown) => e)
      expect(isStockpyleError(err, 'E_SCHEMA')).toBe(true)
      expect((err as Error).message).toMatch(/SqlTestToken/)
      expect((err as Error).message).toMatch(/\(owner\)/)
      expect((err as Error).message).toMatch(/CREATE UNIQUE INDEX tokens_owner_key/)
      // Fixing the schema makes the next call succeed (the failed check is not cached).
      await sql`create unique index tokens_owner_key on ${sql.table(env.table('tokens'))} (owner)`.execute(env.db)
      expect(await store.get(Token, { id: 1 })).toBeUndefined()
    })

    it('a missing table is E_SCHEMA naming the store, operation, model and key (DESIGN §5)', async () => {
      const env = await makeEnv(dialect)
      const store = env.newStore()
      const missing = async (call: Promise<unknown>): Promise<string> => {
        const err = await call.then(
          () => undefined,
          (e: unknown) => e,
        )
        expect(isStockpyleError(err, 'E_SCHEMA')).toBe(true)
        return (err as Error).message
      }
      const accounts = 'table `[\\w.]*accounts` does not exist \\(create it with createTable\\(\\) or a migration\\)$'
      const model = 'of model `SqlTestAccount`'
      expect(await missing(store.get(Account, { id: 1 }))).toMatch(new RegExp(`^sql store get ${model} by \`\\{id:1\\}\`: ${accounts}`))
      expect(await missing(store.batchGet(Account, [{ id: 1 }, { email: 'a' }]))).toMatch(
        new RegExp(`^sql store get ${model} \\(batch of 2\\): ${accounts}`),
      )
      expect(await missing(store.put(new Account('a@example.com', 7)))).toMatch(
        new RegExp(`^sql store put ${model} with key \`\\{id:7\\}\`: ${accounts}`),
      )
      // a generated primary key is not known yet: no key to name
      expect(await missing(store.put(new Account('a@example.com')))).toMatch(new RegExp(`^sql store put ${model}: ${accounts}`))
      expect(await missing(store.delete(new Account('a@example.com', 7)))).toMatch(
        new RegExp(`^sql store delete ${model} with key \`\\{id:7\\}\`: ${accounts}`),
      )
      expect(await missing(store.delete(Account, { email: 'a@example.com' }))).toMatch(
        new RegExp(`^sql store delete ${model} by \`\\{email:"a@example.com"\\}\`: ${accounts}`),
      )
      // in a batch of two models, the one whose table is missing is named
      await accountsTable(env)
      expect(await missing(store.batchPut([new Account('b@example.com', 8), new Plain(1)]))).toMatch(
        /^sql store put of model `SqlTestPlain` with key `\{id:1\}`: table `[\w.]*plains` does not exist/,
      )
      expect(await rowCount(env, 'accounts')).toBe(0)
    })

    it('a missing table and an attribute without a column are E_SCHEMA; nothing is written', async () => {
      const env = await makeEnv(dialect)
      const store = env.newStore()
      await expect(store.get(Account, { id: 1 })).rejects.toThrow(/table `.*accounts` does not exist/)
      await accountsTable(env)
      const a = Object.assign(new Account('x@example.com', 1), { nickname: 'nope' })
      const err = await store.batchPut([new Account('ok@example.com', 2), a]).catch((e: unknown) => e)
      expect(isStockpyleError(err, 'E_SCHEMA')).toBe(true)
      expect((err as Error).message).toMatch(/attribute `nickname`/)
      expect(await rowCount(env, 'accounts')).toBe(0)
    })

    it('with checkUniqueKeys: false, a lookup matching several rows is a NonUniqueKeyError', async () => {
      const env = await makeEnv(dialect)
      await sql`create table ${sql.table(env.table('tokens'))} (id integer primary key, owner text not null)`.execute(env.db)
      const store = env.newStore({ checkUniqueKeys: false })
      await store.batchPut([new Token(1, 'shared'), new Token(2, 'shared'), new Token(3, 'alone')])
      await expect(store.get(Token, { owner: 'shared' })).rejects.toThrow(NonUniqueKeyError)
      await expect(store.batchGet(Token, [{ owner: 'alone' }, { owner: 'shared' }])).rejects.toThrow(/matched more than one row/)
      expect(await store.get(Token, { owner: 'alone' })).toEqual(new Token(3, 'alone'))
    })

    it('normalises types: every column kind reads back as the value that was put', async () => {
      const env = await makeEnv(dialect)
      const store = env.newStore()
      await createTable(store, Everything, { columns: everythingColumns })
      const e = makeEverything('k1')
      await store.put(e)
      const got = await store.get(Everything, { key: 'k1' })
      expect(got).toBeInstanceOf(Everything)
      expect(got).toStrictEqual(e)
      expect(await store.get(Everything, { big: 9223372036854775807n, flag: true })).toStrictEqual(e)
      expect(await store.get(Everything, { big: 9223372036854775807n, flag: false })).toBeUndefined()
      const { rows } = await sql<Record<string, unknown>>`select * from ${sql.table(store.tableOf(Everything))}`.execute(env.db)
      if (dialect === 'sqlite') {
        // Stored forms: 0/1 booleans, ISO-8601 text dates, JSON text.
        expect(rows[0]).toMatchObject({ flag: 1n, at: '1999-12-31T23:59:59.999Z', big: 9223372036854775807n })
        expect(typeof rows[0]?.doc).toBe('string')
      } else {
        expect(rows[0]).toMatchObject({ flag: true, big: '9223372036854775807' })
        expect(rows[0]?.at).toBeInstanceOf(Date)
      }
    })

    it('values of the wrong type for a column are a SerializationError naming attribute and column', async () => {
      const env = await makeEnv(dialect)
      const store = env.newStore()
      await createTable(store, Everything, { columns: everythingColumns })
      const cases: [keyof Everything, unknown][] = [
        ['count', 1.5],
        ['count', 1n],
        ['big', 1],
        ['label', 5],
        ['flag', 1],
        ['at', '2020-01-01'],
        ['at', new Date(Number.NaN)],
        ['ratio', Number.POSITIVE_INFINITY],
        ['blob', 'bytes'],
        ['doc', { f: () => 0 }],
      ]
      if (dialect === 'postgres') cases.push(['count', 2 ** 31], ['label', 'nul\0char'])
      for (const [attribute, value] of cases) {
        const e = Object.assign(makeEverything('bad'), { [attribute]: value })
        const err = await store.put(e).catch((x: unknown) => x)
        expect(err, `${attribute} = ${String(value)}`).toBeInstanceOf(SerializationError)
        expect((err as Error).message).toContain(`\`${attribute}\``)
      }
      expect(await store.get(Everything, { key: 'bad' })).toBeUndefined()
    })

    it('bytes come back as Buffer by default, as Uint8Array when asked (for all or per attribute)', async () => {
      const env = await makeEnv(dialect)
      const setup = env.newStore()
      await createTable(setup, Everything, { columns: everythingColumns })
      const e = makeEverything('bytes')
      e.blob = Buffer.from([9, 8, 7])
      await setup.put(e)
      const asBuffer = (await setup.get(Everything, { key: 'bytes' }))!.blob
      expect(Buffer.isBuffer(asBuffer)).toBe(true)
      const plain = (await env.newStore({ bytes: 'Uint8Array' }).get(Everything, { key: 'bytes' }))!.blob
      expect(plain.constructor).toBe(Uint8Array)
      expect([...plain]).toEqual([9, 8, 7])
      const perAttribute = env.newStore({ bytes: (_model, attribute) => (attribute === 'blob' ? 'Uint8Array' : 'Buffer') })
      const expected = Object.assign(makeEverything('bytes'), { blob: new Uint8Array([9, 8, 7]) })
      expect(await perAttribute.get(Everything, { key: 'bytes' })).toStrictEqual(expected)
      // the store that reads Uint8Array takes Uint8Array, and gives it back from a cache and from the database alike
      const chain = new ChainedStore([new ProcessMemoryStore({ max: 10 }), perAttribute])
      await chain.put(Object.assign(makeEverything('plain'), { big: 1n, blob: new Uint8Array([1, 2]) }))
      expect((await chain.get(Everything, { key: 'plain' }))!.blob.constructor).toBe(Uint8Array)
      expect((await perAttribute.get(Everything, { key: 'plain' }))!.blob.constructor).toBe(Uint8Array)
      await chain.close()
    })

    it('bytes of another class than the column reads back (option bytes) are refused at put, naming attribute, column and option; nothing is written', async () => {
      const env = await makeEnv(dialect)
      const setup = env.newStore()
      await createTable(setup, Everything, { columns: everythingColumns })
      class Bytes extends Uint8Array {}
      const cases: [SqlStoreOptions, Uint8Array, RegExp][] = [
        [
          {},
          new Uint8Array([1, 2]),
          /holds `Uint8Array\(2 bytes\)` but column `blob` of table `[^`]+` reads bytes back as Buffer \(option bytes: 'Buffer'/,
        ],
        [{}, new Bytes([1]), /column `blob` .* reads bytes back as Buffer/],
        [
          { bytes: 'Uint8Array' },
          Buffer.from([1, 2]),
          /holds `Buffer\(2 bytes\)` but column `blob` of table `[^`]+` reads bytes back as Uint8Array \(option bytes: 'Uint8Array'/,
        ],
        [{ bytes: () => 'Uint8Array' }, Buffer.from([1]), /reads bytes back as Uint8Array/],
        [{ bytes: 'Uint8Array' }, new Bytes([1]), /reads bytes back as Uint8Array/],
      ]
      let n = 0
      for (const [options, blob, message] of cases) {
        const store = env.newStore(options)
        const memory = new ProcessMemoryStore({ max: 10 })
        const chain = new ChainedStore([memory, store])
        const key = `bad${++n}`
        for (const target of [store, chain]) {
          const e = Object.assign(makeEverything(key), { blob })
          const err = await target.put(e).catch((x: unknown) => x)
          expect(err, `${key}: ${String(options.bytes)}`).toBeInstanceOf(SerializationError)
          // (a chain's caches refuse a subclass of Uint8Array themselves, as not plain data)
          if (target === store) {
            expect((err as Error).message, key).toMatch(/^sql store put of model `SqlTestEverything`: attribute `blob`/)
            expect((err as Error).message, key).toMatch(message)
          }
          expect(e.blob, key).toBe(blob)
        }
        expect(await store.get(Everything, { key }), key).toBeUndefined()
        expect(await memory.get(Everything, { key }), key).toBeUndefined()
        await chain.close()
      }
    })

    it('a lookup whose value type cannot match the column is a miss, not a database error', async () => {
      const env = await makeEnv(dialect)
      await accountsTable(env)
      const store = env.newStore()
      await store.put(new Account('t@example.com', 1))
      env.queries.length = 0
      expect(await store.batchGet(Account, [{ id: '1' as never }, { id: 1n as never }, { id: 1.5 }, { email: 5 as never }])).toEqual([
        undefined,
        undefined,
        undefined,
        undefined,
      ])
      expect(env.queries).toHaveLength(0)
      // Beyond int4 on PostgreSQL: a miss, not "out of range for type integer".
      expect(await store.get(Account, { id: 2 ** 40 })).toBeUndefined()
    })

    it('treats injection attempts in key values and attributes as plain data', async () => {
      const env = await makeEnv(dialect)
      await accountsTable(env)
      const store = env.newStore()
      const attacks = [
        "'; DROP TABLE accounts; --",
        `" OR 1=1 --`,
        "x') OR ('1'='1",
        'a\\"; delete from accounts where 1=1; --',
        "1; update accounts set status='pwned'",
        '$1',
        '?',
      ]
      const accounts = attacks.map((email, i) => Object.assign(new Account(email, i + 1), { status: email }))
      await store.batchPut(accounts)
      expect(
        await store.batchGet(
          Account,
          attacks.map((email) => ({ email })),
        ),
      ).toEqual(accounts)
      expect(await store.get(Account, { email: "' OR '1'='1" })).toBeUndefined()
      await store.delete(accounts[0]!)
      expect(await rowCount(env, 'accounts')).toBe(attacks.length - 1)
      const { rows } = await sql<{ status: string }>`select status from ${sql.table(env.table('accounts'))} order by id`.execute(env.db)
      expect(rows.map((r) => r.status)).toEqual(attacks.slice(1))
    })

    it('batchGet sends one statement per key shape, whatever the number of lookups', async () => {
      const env = await makeEnv(dialect)
      const store = env.newStore()
      const { columns } = conformanceTables.find((t) => t.model === ConformanceUser) as (typeof conformanceTables)[number]
      await createTable(store, ConformanceUser, { columns })
      const users = Array.from({ length: 1000 }, (_, i) => makeUser(i + 1))
      await store.get(ConformanceUser, { id: 0 })
      env.queries.length = 0
      await store.batchPut(users)
      expect(env.queries).toHaveLength(1)
      env.queries.length = 0
      const byId = await store.batchGet(
        ConformanceUser,
        users.map((u) => ({ id: u.id })),
      )
      expect(byId).toEqual(users)
      expect(env.queries).toHaveLength(1)
      env.queries.length = 0
      const byComposite = await store.batchGet(
        ConformanceUser,
        users.map((u) => ({ orgId: u.orgId, slug: u.slug })),
      )
      expect(byComposite).toEqual(users)
      expect(env.queries).toHaveLength(1)
      env.queries.length = 0
      const mixed = await store.batchGet(ConformanceUser, [
        { id: 5 },
        { email: users[9]!.email },
        { orgId: users[3]!.orgId, slug: users[3]!.slug },
        { id: 5 },
        { id: 5000 },
      ])
      expect(mixed).toEqual([users[4], users[9], users[3], users[4], undefined])
      expect(mixed[0]).not.toBe(mixed[3])
      expect(env.queries).toHaveLength(3)
      env.queries.length = 0
      await store.batchDelete(users.slice(0, 500))
      expect(env.queries).toHaveLength(1)
      expect(await store.get(ConformanceUser, { id: 1 })).toBeUndefined()
    })

    it('chunks a batchGet over the parameter limit, still one statement per chunk', async () => {
      const env = await makeEnv(dialect)
      await accountsTable(env)
      const store = env.newStore()
      await store.get(Account, { id: 1 })
      env.queries.length = 0
      const lookups = Array.from({ length: 70_000 }, (_, i) => ({ id: i + 1 }))
      const got = await store.batchGet(Account, lookups)
      expect(got).toHaveLength(70_000)
      expect(env.queries).toHaveLength(dialect === 'sqlite' ? 3 : 2)
    })

    it('reads rows into instances with own data properties, never through a setter of the class', async () => {
      const env = await makeEnv(dialect)
      const store = env.newStore()
      for (const model of [Plain, Guarded]) {
        await createTable(store, model, { columns: { id: 'integer', label: 'text', score: 'real' } })
        const put = Object.defineProperty(new model(1), 'label', { value: 'one', enumerable: true, writable: true, configurable: true })
        put.score = 1.5
        await store.batchPut([put, Object.assign(new model(2), { score: 2 })])
        // (what a put writes back onto the caller's own objects may go through the class's setters)
        Guarded.setterRuns = 0
        const [a, b, again] = await store.batchGet(model, [{ id: 1 }, { id: 2 }, { id: 1 }])
        expect(Object.getPrototypeOf(a)).toBe(model.prototype)
        expect(Object.getOwnPropertyDescriptor(a, 'label')).toEqual({ value: 'one', enumerable: true, writable: true, configurable: true })
        expect({ ...a }).toEqual({ id: 1, label: 'one', score: 1.5 })
        expect({ ...b }).toEqual({ id: 2, label: null, score: 2 })
        expect(again).not.toBe(a)
        expect(again).toEqual(a)
        expect(Guarded.setterRuns).toBe(0)
      }
    })

    it('createTable of a table that exists, without ifNotExists: E_SCHEMA naming the table; with it: nothing happens', async () => {
      const env = await makeEnv(dialect)
      const store = env.newStore()
      await createTable(store, Membership, { columns: { orgId: 'integer', userId: 'integer', role: 'text' } })
      const err = await createTable(store, Membership, { columns: { orgId: 'integer', userId: 'integer', role: 'text' } }).catch(
        (e: unknown) => e,
      )
      expect(isStockpyleError(err, 'E_SCHEMA'), String(err)).toBe(true)
      expect((err as Error).message).toMatch(/memberships/)
      expect((err as Error).message).toMatch(/already exists/)
      expect((err as Error).message).toMatch(/ifNotExists/)
      await createTable(store, Membership, { columns: { orgId: 'integer', userId: 'integer', role: 'text' }, ifNotExists: true })
    })

    it('composite primary keys: upsert, get and delete', async () => {
      const env = await makeEnv(dialect)
      const store = env.newStore()
      await createTable(store, Membership, { columns: { orgId: 'integer', userId: 'integer', role: 'text' } })
      await store.batchPut([new Membership(1, 1), new Membership(1, 2, 'admin'), new Membership(2, 1)])
      await store.put(new Membership(1, 1, 'owner'))
      expect(
        await store.batchGet(Membership, [
          { orgId: 1, userId: 1 },
          { userId: 2, orgId: 1 },
          { orgId: 2, userId: 2 },
        ]),
      ).toEqual([new Membership(1, 1, 'owner'), new Membership(1, 2, 'admin'), undefined])
      await store.batchDelete([new Membership(1, 1), new Membership(2, 1)])
      expect(await rowCount(env, 'memberships')).toBe(1)
    })

    it('camelCase maps attributes to snake_case columns and rejects attributes that cannot round-trip', async () => {
      const env = await makeEnv(dialect)
      const store = env.newStore({ camelCase: true })
      await createTable(store, Membership, { columns: { orgId: 'integer', userId: 'integer', role: 'text' } })
      const { rows } = await sql<{ name: string }>`select * from ${sql.table(store.tableOf(Membership))}`.execute(env.db)
      expect(rows).toEqual([])
      await store.put(new Membership(3, 4))
      const raw = await sql<Record<string, unknown>>`select org_id, user_id from ${sql.table(store.tableOf(Membership))}`.execute(env.db)
      expect(Number(raw.rows[0]?.org_id)).toBe(3)
      expect(await store.get(Membership, { orgId: 3, userId: 4 })).toEqual(new Membership(3, 4))
      await expect(store.put(Object.assign(new Membership(5, 6), { roleID: 'x' }))).rejects.toThrow(/`roleID`/)
    })

    it('camelCase: two columns that map to one attribute are E_SCHEMA at the first use of the table, naming both and the attribute', async () => {
      const env = await makeEnv(dialect)
      const table = env.table('clashs')
      for (const [a, b, attribute] of [
        ['foo_bar', 'foo__bar', 'fooBar'],
        ['"orgId"', 'org_id', 'orgId'],
      ] as const) {
        await sql`drop table if exists ${sql.table(table)}`.execute(env.db)
        await sql`create table ${sql.table(table)} (id integer primary key, ${sql.raw(a)} text, ${sql.raw(b)} text)`.execute(env.db)
        await sql`insert into ${sql.table(table)} values (1, 'one', 'two')`.execute(env.db)
        const fresh = env.newStore({ camelCase: true })
        const expected = new RegExp(
          `columns \`${a.replaceAll('"', '')}\` and \`${b}\` of table \`${table}\` both map to the attribute \`${attribute}\` \\(option camelCase\\): rename one of the columns`,
        )
        await expect(fresh.get(Clash, { id: 1 })).rejects.toSatisfy(code('E_SCHEMA'))
        await expect(fresh.get(Clash, { id: 1 })).rejects.toThrow(expected)
        const o = Object.assign(new Clash(2), { [attribute]: 'x' })
        await expect(fresh.put(o)).rejects.toThrow(expected)
        expect(await rowCount(env, 'clashs')).toBe(1)
        // without camelCase each column is its own attribute
        expect(await env.newStore().get(Clash, { id: 1 })).toMatchObject({ id: 1, [a.replaceAll('"', '')]: 'one', [b]: 'two' })
        // renamed, the table maps (a failed check is not cached)
        await sql`alter table ${sql.table(table)} rename column ${sql.raw(b)} to other_name`.execute(env.db)
        expect(await fresh.get(Clash, { id: 1 })).toMatchObject({ id: 1, [attribute]: 'one', otherName: 'two' })
      }
    })

    it('missing key attributes: MissingKeyAttributeError unless the database generates them', async () => {
      const env = await makeEnv(dialect)
      await accountsTable(env)
      const store = env.newStore()
      await expect(store.put(Object.assign(new Account('x', 1), { email: undefined }))).rejects.toThrow(MissingKeyAttributeError)
      await expect(store.put(Object.assign(new Account('x', 1), { email: null }))).rejects.toThrow(MissingKeyAttributeError)
      await expect(store.delete(new Account('x'))).rejects.toThrow(MissingKeyAttributeError)
      const generated = new Account('gen@example.com')
      await store.put(generated)
      expect(generated.id).toBeTypeOf('number')
    })

    describe('transactions', () => {
      it('a deadlock (40P01) or serialization failure (40001) rejects saying the database rolled the whole transaction back and it is safe to retry, with the code in cause', async (ctx) => {
        if (dialect !== 'postgres')
          return ctx.skip('does not apply: deadlocks and serialization failures of PostgreSQL, which SQLite never raises')
        const env = await makeEnv(dialect)
        await accountsTable(env)
        const store = env.newStore()
        await store.batchPut([new Account('d1@example.com', 1), new Account('d2@example.com', 2)])
        const bothLocked = barrier(2)
        const swap = (first: number, second: number) =>
          store.transaction(async (tx) => {
            await tx.put(new Account(`d${first}@example.com`, first))
            await bothLocked()
            await tx.put(new Account(`d${second}@example.com`, second))
            return 'committed'
          })
        const results = await Promise.allSettled([swap(1, 2), swap(2, 1)])
        const failed = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as Error)
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
        expect(failed).toHaveLength(1)
        expect(failed[0]).toSatisfy(code('E_STOCKPYLE'))
        expect(failed[0]?.message).toMatch(retry)
        expect((failed[0] as Error & { cause: { code: string } }).cause.code).toBe('40P01')

        // serialization failure: both read both rows, then each writes one (write skew)
        const bothRead = barrier(2)
        const skew = (id: number) =>
          store.transaction(async (tx) => {
            await sql`set transaction isolation level serializable`.execute(tx.kysely())
            await tx.batchGet(Account, [{ id: 1 }, { id: 2 }])
            await bothRead()
            await tx.put(new Account(`s${id}@example.com`, id))
            return 'committed'
          })
        const serial = await Promise.allSettled([skew(1), skew(2)])
        const refused = serial.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as Error)
        expect(refused).toHaveLength(1)
        expect(refused[0]).toSatisfy(code('E_STOCKPYLE'))
        expect(refused[0]?.message).toMatch(retry)
        expect((refused[0] as Error & { cause: { code: string } }).cause.code).toBe('40001')
      })

      it('a deadlock victim whose callback catches the error still rolls back whole: later calls reject with the same error, and so does transaction() (store and chain; the caches see nothing of it)', async (ctx) => {
        if (dialect !== 'postgres')
          return ctx.skip('does not apply: deadlocks and serialization failures of PostgreSQL, which SQLite never raises')
        const env = await makeEnv(dialect)
        await accountsTable(env)
        const store = env.newStore()
        const memory = new ProcessMemoryStore({})
        const chain = new ChainedStore([memory, store])
        for (const runner of [store, chain]) {
          await store.batchPut([new Account('d1@example.com', 1), new Account('d2@example.com', 2)])
          await store.batchDelete(Account, [{ id: 10 }, { id: 20 }])
          const bothLocked = barrier(2)
          const caught = new Map<number, unknown>()
          const later = new Map<number, unknown[]>()
          const swap = (first: number, second: number, marker: number) =>
            runner.transaction(async (tx) => {
              // a row only this transaction writes, then the two rows both lock in opposite orders
              await tx.put(new Account(`m${marker}@example.com`, marker))
              await tx.put(new Account(`d${first}@example.com`, first))
              await bothLocked()
              try {
                await tx.put(new Account(`d${second}@example.com`, second))
              } catch (err) {
                caught.set(marker, err)
                later.set(
                  marker,
                  await Promise.all([
                    tx.get(Account, { id: marker }).catch((e: unknown) => e),
                    tx.put(new Account(`n${marker}@example.com`, marker + 1)).catch((e: unknown) => e),
                  ]),
                )
              }
              return 'returned'
            })
          const results = await Promise.allSettled([swap(1, 2, 10), swap(2, 1, 20)])
          expect(caught.size, runner.name).toBe(1)
          const [victim, error] = [...caught][0] as [number, Error & { cause: { code: string } }]
          expect(error, runner.name).toSatisfy(code('E_STOCKPYLE'))
          expect(error.cause.code, runner.name).toBe('40P01')
          expect(later.get(victim), runner.name).toEqual([error, error])
          const [mine, theirs] = victim === 10 ? results : [results[1], results[0]]
          expect(mine?.status, runner.name).toBe('rejected')
          sameOrNamedCopy((mine as PromiseRejectedResult).reason, error, runner.name)
          expect(theirs, runner.name).toEqual({ status: 'fulfilled', value: 'returned' })
          const survivor = victim === 10 ? 20 : 10
          expect(await store.batchGet(Account, [{ id: victim }, { id: victim + 1 }]), runner.name).toEqual([undefined, undefined])
          expect(await store.get(Account, { id: survivor }), runner.name).toBeDefined()
          expect(await memory.batchGet(Account, [{ id: victim }, { id: victim + 1 }]), runner.name).toEqual([undefined, undefined])
          expect(error.message, runner.name).toMatch(retry)
        }
      })

      it("a failure SQLite answers by rolling the whole transaction back (a trigger's RAISE(ROLLBACK)), caught by the callback, dooms it: later calls reject and run nothing in autocommit, transaction() rejects (store and chain; the caches see nothing of it)", async (ctx) => {
        if (dialect !== 'sqlite')
          return ctx.skip('does not apply: a SQLite behaviour (RAISE(ROLLBACK) ends the transaction), which PostgreSQL does not have')
        const env = await makeEnv(dialect)
        await accountsTable(env)
        const t = sql.table(env.table('accounts'))
        await sql`create trigger no_negative_score before insert on ${t} when new.score < 0 begin select raise(rollback, 'negative score'); end`.execute(
          env.db,
        )
        const store = env.newStore()
        const memory = new ProcessMemoryStore({})
        const chain = new ChainedStore([memory, store])
        const negative = (email: string, id: number) => Object.assign(new Account(email, id), { score: -1 })
        for (const runner of [store, chain]) {
          let caught: (Error & { cause?: unknown }) | undefined
          let later: unknown[] = []
          const outcome = runner
            .transaction(async (tx) => {
              await tx.put(new Account('r1@example.com', 1))
              try {
                await tx.put(negative('r2@example.com', 2))
              } catch (err) {
                caught = err as Error
              }
              later = await Promise.all([
                tx.put(new Account('r3@example.com', 3)).catch((e: unknown) => e),
                tx.get(Account, { id: 1 }).catch((e: unknown) => e),
              ])
              return 'returned'
            })
            .catch((e: unknown) => e)
          const rejection = await outcome
          expect(caught, runner.name).toSatisfy(code('E_CONSTRAINT'))
          expect(caught?.message, runner.name).toMatch(
            /SQLite rolled the whole transaction back.*nothing it wrote is kept.*safe to run the whole transaction again/,
          )
          expect(caught?.message, runner.name).toMatch(/negative score/)
          expect(caught?.cause, runner.name).toSatisfy(code('E_CONSTRAINT'))
          expect(later, runner.name).toEqual([caught, caught])
          sameOrNamedCopy(rejection, caught, runner.name)
          expect(await rowCount(env, 'accounts'), runner.name).toBe(0)
          expect(await memory.batchGet(Account, [{ id: 1 }, { id: 2 }, { id: 3 }]), runner.name).toEqual([undefined, undefined, undefined])
        }
        // the store still works: a transaction after it commits
        await store.transaction(async (tx) => tx.put(new Account('ok@example.com', 9)))
        expect(await rowCount(env, 'accounts')).toBe(1)
      })

      it("a raw statement through tx.kysely() that SQLite answers by rolling the whole transaction back (a trigger's RAISE(ROLLBACK)), caught by the callback, dooms it too: later calls reject and commit nothing, transaction() rejects saying so", async (ctx) => {
        if (dialect !== 'sqlite')
          return ctx.skip('does not apply: a SQLite behaviour (RAISE(ROLLBACK) ends the transaction), which PostgreSQL does not have')
        const env = await makeEnv(dialect)
        await accountsTable(env)
        const t = sql.table(env.table('accounts'))
        await sql`create trigger no_negative_score before insert on ${t} when new.score < 0 begin select raise(rollback, 'negative score'); end`.execute(
          env.db,
        )
        const store = env.newStore()
        const memory = new ProcessMemoryStore({})
        const chain = new ChainedStore([memory, store])
        const rawInsert = (id: number) => sql`insert into ${t} (id, email, score) values (${id}, ${`raw${id}@example.com`}, -1)`
        // each way raw SQL reaches the transaction's connection
        const ways = {
          'sql`…`.execute(tx.kysely())': (db: Kysely<any>, id: number) => rawInsert(id).execute(db),
          'tx.kysely().executeQuery()': (db: Kysely<any>, id: number) => db.executeQuery(rawInsert(id).compile(db)),
          'a connection of its executor': (db: Kysely<any>, id: number) =>
            db.getExecutor().provideConnection((connection) => connection.executeQuery(rawInsert(id).compile(db))),
        }
        // the chain's handle passes kysely() on to the store's
        for (const runner of [store, chain]) {
          for (const [way, run] of Object.entries(ways)) {
            for (const writeFirst of [true, false]) {
              const label = `${runner.name}, ${way}, ${writeFirst ? 'after a write' : 'first'}`
              let caught: (Error & { cause?: unknown }) | undefined
              let later: unknown
              const rejection = await runner
                .transaction(async (tx) => {
                  if (writeFirst) await tx.put(new Account('r1@example.com', 1))
                  try {
                    await run((tx as { kysely(): Kysely<any> }).kysely(), 2)
                  } catch (err) {
                    caught = err as Error
                  }
                  later = await tx.put(new Account('r3@example.com', 3)).catch((e: unknown) => e)
                  return 'returned'
                })
                .catch((e: unknown) => e)
              expect(caught?.message, label).toMatch(
                /negative score.*SQLite rolled the whole transaction back.*nothing it wrote is kept.*safe to run the whole transaction again/,
              )
              expect(caught, label).toSatisfy(code('E_STOCKPYLE'))
              expect(later, label).toBe(caught)
              sameOrNamedCopy(rejection, caught, label)
              expect(await rowCount(env, 'accounts'), label).toBe(0)
              expect(await memory.batchGet(Account, [{ id: 1 }, { id: 3 }]), label).toEqual([undefined, undefined])
            }
          }
        }
        // a raw statement failing without ending the transaction keeps its error; the transaction commits
        await store.transaction(async (tx) => {
          await tx.put(new Account('ok1@example.com', 8))
          await expect(sql`insert into ${t} (id, email) values (8, 'ok1@example.com')`.execute(tx.kysely())).rejects.toThrow(/UNIQUE/)
          await tx.put(new Account('ok2@example.com', 9))
        })
        expect(await rowCount(env, 'accounts')).toBe(2)
      })

      it('commits every call together and reports the writes to afterCommit', async () => {
        const env = await makeEnv(dialect)
        await accountsTable(env)
        const store = env.newStore()
        const seen: TransactionChange[][] = []
        const a = new Account('tx-a@example.com')
        const result = await store.transaction(async (tx) => {
          tx.afterCommit((changes) => {
            seen.push([...changes])
          })
          await tx.put(a)
          expect(a.id).toBeTypeOf('number')
          await tx.batchPut([new Account('tx-b@example.com', 50)])
          expect(await tx.get(Account, { id: 50 })).toBeDefined()
          await tx.delete(new Account('tx-b@example.com', 50))
          return 'done'
        })
        expect(result).toBe('done')
        expect(await store.get(Account, { email: 'tx-a@example.com' })).toEqual(a)
        expect(await store.get(Account, { id: 50 })).toBeUndefined()
        expect(seen).toHaveLength(1)
        expect(seen[0]!.map((c) => [c.operation, c.objects.length])).toEqual([
          ['put', 1],
          ['put', 1],
          ['delete', 1],
        ])
        // a copy as the statement wrote it (id written back): the caller's object may change before COMMIT
        expect(seen[0]![0]!.objects[0]).toEqual(a)
        expect(seen[0]![0]!.objects[0]).not.toBe(a)
      })

      it('rolls back everything when the callback throws, rejecting with its error; afterCommit never runs', async () => {
        const env = await makeEnv(dialect)
        await accountsTable(env)
        const store = env.newStore()
        await store.put(new Account('kept@example.com', 1))
        const boom = new Error('boom')
        let ran = false
        await expect(
          store.transaction(async (tx) => {
            tx.afterCommit(() => {
              ran = true
            })
            await tx.batchPut([new Account('gone@example.com', 2), new Account('gone2@example.com', 3)])
            await tx.delete(new Account('kept@example.com', 1))
            throw boom
          }),
        ).rejects.toBe(boom)
        expect(ran).toBe(false)
        expect(await store.batchGet(Account, [{ id: 1 }, { id: 2 }, { id: 3 }])).toEqual([expect.any(Account), undefined, undefined])
      })

      it('a failed batch inside a transaction is undone alone (savepoint) and the transaction can go on', async () => {
        const env = await makeEnv(dialect)
        await accountsTable(env)
        const store = env.newStore()
        await store.transaction(async (tx) => {
          await tx.put(new Account('first@example.com', 1))
          const many = Array.from({ length: 20_000 }, (_, i) => new Account(`s${i}@example.com`, 100 + i))
          many.push(new Account('first@example.com', 2))
          await expect(tx.batchPut(many)).rejects.toSatisfy(code('E_KEY_CONFLICT'))
          await tx.put(new Account('second@example.com', 3))
        })
        expect(await rowCount(env, 'accounts')).toBe(2)
      })

      it('the tx handle is dead after the callback, and the store refuses to be used inside its own transaction', async () => {
        const env = await makeEnv(dialect)
        await accountsTable(env)
        const store = env.newStore()
        let leaked: { get: (typeof store)['get'] } | undefined
        await store.transaction(async (tx) => {
          leaked = tx
          await expect(store.get(Account, { id: 1 })).rejects.toThrow(/inside its own transaction/)
          await expect(store.transaction(async () => 1)).rejects.toThrow(/inside its own transaction/)
        })
        await expect(leaked!.get(Account, { id: 1 })).rejects.toThrow(StoreClosedError)
      })

      it('tx.kysely() refuses commit, rollback and savepoints (a write undone by a savepoint would reach the caches)', async () => {
        const env = await makeEnv(dialect)
        await accountsTable(env)
        const store = env.newStore()
        const chain = new ChainedStore([new ProcessMemoryStore({}), store])
        await chain.put(Object.assign(new Account('sp@example.com', 1), { score: 100 }))
        await chain.transaction(async (tx) => {
          const trx = (tx as unknown as { kysely(): Kysely<any> }).kysely()
          for (const control of [
            'savepoint',
            'rollbackToSavepoint',
            'releaseSavepoint',
            'commit',
            'rollback',
            'startTransaction',
            'transaction',
            'connection',
          ]) {
            const call = () => (trx as any)[control]('before_bonus')
            expect(call).toThrow(UnsupportedOperationError)
            expect(call).toThrow(new RegExp(`tx\\.kysely\\(\\)\\.${control}\\(\\) is not supported`))
            expect(() =>
              (trx.withPlugin({ transformQuery: (a) => a.node, transformResult: async (a) => a.result }) as any)[control]('x'),
            ).toThrow(UnsupportedOperationError)
          }
          // queries of one's own still join the transaction
          await tx.put(Object.assign(new Account('sp@example.com', 1), { score: 999 }))
          const rows = await trx.selectFrom(env.table('accounts')).select('score').where('id', '=', 1).execute()
          expect(rows.map((r) => Number(r.score))).toEqual([999])
          expect((await sql<{ n: unknown }>`select 1 as n`.execute(trx.withSchema('public'))).rows.map((r) => Number(r.n))).toEqual([1])
        })
        expect((await chain.get(Account, { id: 1 }))?.score).toBe(999)
        expect((await store.get(Account, { id: 1 }))?.score).toBe(999)
      })

      it('a raw COMMIT or ROLLBACK through tx.kysely() is refused, also after comments or other statements (PostgreSQL would answer the store’s COMMIT after a raw ROLLBACK with a mere warning); the caches match the database', async () => {
        const env = await makeEnv(dialect)
        await accountsTable(env)
        const store = env.newStore()
        const memory = new ProcessMemoryStore({})
        const chain = new ChainedStore([memory, store])
        await chain.put(Object.assign(new Account('raw@example.com', 1), { score: 100 }))
        const raws = [
          'commit',
          'rollback',
          'END',
          '/* undo */ rollback',
          '-- undo\nrollback',
          ' /* a */ -- b\n\t/* c */ROLLBACK',
          'select 1; rollback',
          "select ';' as x ; -- c\n commit",
          'select 1 as "a;b"; begin',
          'select 1;savepoint x',
        ]
        if (dialect === 'postgres') {
          // nested block comments, escape strings, dollar quotes, START TRANSACTION split by a comment
          raws.push(
            '/* outer /* nested */ still a comment */ rollback',
            "select E'\\';' as x; rollback",
            'select $$;$$ as x; rollback',
            'select $q$ $$; $q$ as x; abort',
            'select 1; start /* x */ transaction',
            "select 1; prepare transaction 't'",
            "prepare transaction e't'",
            "select 1; prepare /* c */ transaction U&'t'",
            'prepare transaction $t$x$t$',
          )
        } else {
          // SQLite: a string, a backquoted and a bracketed name
          raws.push("select '';''; rollback", 'select 1 as `;`; rollback', 'select 1 as [;]; release x')
        }
        for (const raw of raws) {
          const outcome = await chain
            .transaction(async (tx) => {
              await tx.put(Object.assign(new Account('raw@example.com', 1), { score: 999 }))
              await sql.raw(raw).execute((tx as unknown as { kysely(): Kysely<any> }).kysely())
            })
            .then(
              () => 'resolved',
              (e: unknown) => e,
            )
          expect(outcome, raw).toBeInstanceOf(UnsupportedOperationError)
          expect((outcome as Error).message, raw).toMatch(
            /raw (commit|rollback|end|abort|begin|savepoint|release|start transaction|prepare transaction) is not supported inside transaction\(\)/i,
          )
          const inDatabase = (await store.get(Account, { id: 1 }))?.score
          expect(inDatabase, raw).toBe(100)
          const cached = (await memory.get(Account, { id: 1 }))?.score
          // whatever the call said, no cache may hold other than the database
          expect(cached === undefined || cached === inDatabase, `${raw}: ${String(outcome)}`).toBe(true)
          expect((await chain.get(Account, { id: 1 }))?.score).toBe(inDatabase)
          await chain.put(Object.assign(new Account('raw@example.com', 1), { score: 100 }))
        }
      })

      it('a transaction ended by SQL the store cannot see (the application’s own handle on its connection, a ROLLBACK inside a query builder’s SQL) rejects with UnsupportedOperationError; afterCommit does not run and the caches drop its writes', async () => {
        const env = await makeEnv(dialect)
        // a store on a connection the test reaches around Kysely: pg's client, better-sqlite3's database
        let around!: (text: string) => Promise<unknown>
        let db: Kysely<any>
        if (dialect === 'postgres') {
          const pool = new pg.Pool({ connectionString: env.url, max: 2 })
          pool.on('acquire', (client) => {
            around = (text) => client.query(text)
          })
          db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) })
        } else {
          const file = new Database(':memory:')
          file.defaultSafeIntegers(true)
          around = async (text) => file.exec(text)
          db = new Kysely<any>({ dialect: new SqliteDialect({ database: file }) })
        }
        try {
          await accountsTable({ ...env, db })
          const store = new SqlStore({ db }, { tables: { SqlTestAccount: env.table('accounts') } })
          const memory = new ProcessMemoryStore({})
          const chain = new ChainedStore([memory, store])
          const ends: [string, (tx: { kysely(): Kysely<any> }) => Promise<unknown>, number][] = [
            ['rollback', () => around('rollback'), 100],
            ['commit', () => around('commit'), 999],
            ['rollback and begin', () => around('rollback; begin'), 100],
          ]
          if (dialect === 'postgres') {
            // the store sees a query builder's statement only as it runs: a simple query runs every statement of it
            const inBuilder = (control: string) => (tx: { kysely(): Kysely<any> }) =>
              tx
                .kysely()
                .selectNoFrom(sql.raw<number>(`1; ${control}; select 1`).as('x'))
                .execute()
            ends.push(
              ['rollback in a builder', inBuilder('rollback'), 100],
              ['rollback and begin in a builder', inBuilder('rollback; begin'), 100],
            )
          }
          for (const [label, end, expected] of ends) {
            await chain.put(Object.assign(new Account('ended@example.com', 1), { score: 100 }))
            let committed = 0
            let failed = 0
            const outcome = await chain
              .transaction(async (tx) => {
                tx.afterCommit(() => {
                  committed++
                })
                tx.afterCommitFailed?.(() => {
                  failed++
                })
                await tx.put(Object.assign(new Account('ended@example.com', 1), { score: 999 }))
                await end(tx as unknown as { kysely(): Kysely<any> })
                await tx.get(Account, { id: 1 }).catch(() => undefined)
              })
              .then(
                () => 'resolved',
                (e: unknown) => e,
              )
            expect(outcome, label).toBeInstanceOf(UnsupportedOperationError)
            expect((outcome as Error).message, label).toMatch(
              /the transaction was ended by SQL of its own .*the caches dropped what it wrote/,
            )
            expect(committed, label).toBe(0)
            expect(failed, label).toBe(1)
            const inDatabase = (await store.get(Account, { id: 1 }))?.score
            expect(inDatabase, label).toBe(expected)
            expect(await memory.get(Account, { id: 1 }), label).toBeUndefined()
            expect((await chain.get(Account, { id: 1 }))?.score, label).toBe(expected)
          }
          await store.close()
        } finally {
          await db.destroy()
        }
      })

      it('tx.kysely() runs raw SQL that only mentions transaction control (in comments, strings, names, a function or trigger body)', async () => {
        const env = await makeEnv(dialect)
        await accountsTable(env)
        const store = env.newStore()
        const t = env.table('accounts')
        const statements = [
          '-- rollback\nselect 1 as x',
          '/* commit; */ select 1 as x',
          "select 'x; rollback' as x",
          'select 1 as "rollback"',
          'select 1 as x; -- ; rollback',
        ]
        if (dialect === 'postgres') {
          statements.push(
            "select e'\\\\'; select ';rollback' as x",
            'select $$; rollback$$ as x',
            'select 1 as a$b$; select 2 as x',
            `create function ${t}_f() returns int language sql begin atomic select case when true then 1 end; select 2; end`,
            // a statement prepared under the name "transaction" (PREPARE TRANSACTION 'id' takes a string)
            'prepare transaction as select 1',
            'deallocate transaction',
            'select 1; prepare transaction as select 2',
            'deallocate transaction',
            'prepare transaction (int) as select $1::int',
            'deallocate transaction',
          )
        } else {
          statements.push(
            `create trigger ${t}_t after insert on ${t} begin update ${t} set score = case when 1 then 5 end where id = new.id; end`,
          )
        }
        await store.transaction(async (tx) => {
          for (const statement of statements) await sql.raw(statement).execute(tx.kysely())
          await tx.put(new Account('mentions@example.com', 1))
        })
        expect(await store.get(Account, { id: 1 })).toBeDefined()
      })

      it('a COMMIT the database refuses (a deferred foreign key or unique violation) is a known rollback: its error, no afterCommitFailed, the caches unchanged', async () => {
        const env = await makeEnv(dialect)
        const parents = sql.table(env.table('parents'))
        const t = sql.table(env.table('accounts'))
        await sql`create table ${parents} (id integer primary key)`.execute(env.db)
        const unique = dialect === 'postgres' ? sql`unique deferrable initially deferred` : sql`unique`
        await sql`create table ${t} (id integer primary key, email text not null unique, status text ${unique},
          score integer references ${parents} (id) deferrable initially deferred)`.execute(env.db)
        if (dialect === 'sqlite') await sql`pragma foreign_keys = on`.execute(env.db)
        await sql`insert into ${parents} (id) values (1)`.execute(env.db)
        const store = env.newStore()
        const chain = new ChainedStore([new ProcessMemoryStore({}), store])
        const kept = Object.assign(new Account('b@example.com', 2), { status: 'b', score: 1 })
        await chain.batchPut([Object.assign(new Account('a@example.com', 1), { status: 'a', score: 1 }), kept])
        const cases: [string, Account][] = [
          ['a deferred foreign key', Object.assign(new Account('b@example.com', 2), { status: 'new', score: 42 })],
        ]
        if (dialect === 'postgres')
          cases.push(['a deferred unique index', Object.assign(new Account('b@example.com', 2), { status: 'a', score: 1 })])
        for (const [label, obj] of cases) {
          let failedCallbacks = 0
          const err = await chain
            .transaction(async (tx) => {
              tx.afterCommitFailed?.(() => {
                failedCallbacks++
              })
              await tx.put(obj)
            })
            .catch((e: unknown) => e)
          expect(err, label).toBeInstanceOf(StockpyleError)
          expect((err as Error).message, label).toMatch(/which did not commit \(the database refused its COMMIT\)/)
          expect((err as Error).message, label).not.toMatch(/unknown/)
          expect(failedCallbacks, label).toBe(0)
          expect(await chain.get(Account, { id: 2 }), label).toEqual(kept)
          expect(await store.get(Account, { id: 2 }), label).toEqual(kept)
        }
      })

      it('calls outside the transaction wait for it instead of deadlocking', async () => {
        const env = await makeEnv(dialect)
        await accountsTable(env)
        const store = env.newStore()
        await store.get(Account, { id: 1 })
        let release!: () => void
        const gate = new Promise<void>((resolve) => {
          release = resolve
        })
        const tx = store.transaction(async (t) => {
          await t.put(new Account('inside@example.com', 1))
          await gate
        })
        await new Promise((r) => setTimeout(r, 20))
        // Started outside the transaction's async context, so it is a normal call.
        const outside = setTimeoutPromise(() => store.put(new Account('outside@example.com', 2)))
        await new Promise((r) => setTimeout(r, 20))
        release()
        await Promise.all([tx, outside])
        expect(await rowCount(env, 'accounts')).toBe(2)
      })
    })

    it('a backfill (batchPutEntries with backfill) inserts only absent rows and never replaces one', async () => {
      const env = await makeEnv(dialect)
      await accountsTable(env)
      const store = env.newStore()
      const stored = Object.assign(new Account('new@example.com', 1), { status: 'newer' })
      await store.put(stored)
      const stale = Object.assign(new Account('new@example.com', 1), { status: 'stale' })
      const absent = Object.assign(new Account('absent@example.com', 2), { status: 'copied' })
      await store.batchPutEntries(
        [
          { value: stale, expiresAt: undefined },
          { value: absent, expiresAt: undefined },
        ],
        { backfill: true },
      )
      expect(await store.batchGet(Account, [{ id: 1 }, { id: 2 }])).toEqual([stored, absent])
    })

    it('behind a cache: the database fills the id, the cache holds the stored object, a conflict caches nothing', async () => {
      const env = await makeEnv(dialect)
      await accountsTable(env)
      const cache = new ProcessMemoryStore()
      const chain = new ChainedStore([cache, env.newStore()])
      const a = new Account('chain@example.com')
      await chain.put(a)
      expect(a.id).toBeTypeOf('number')
      expect(await cache.get(Account, { id: a.id as number })).toEqual(
        Object.assign(new Account('chain@example.com', a.id), { status: 'new', score: 10 }),
      )
      const clash = new Account('chain@example.com', 99)
      await expect(chain.put(clash)).rejects.toSatisfy(code('E_KEY_CONFLICT'))
      expect(await cache.get(Account, { id: 99 })).toBeUndefined()
      expect(await chain.get(Account, { email: 'chain@example.com' })).toEqual(a)
      await chain.close()
    })

    it('behind two caches: each holds the object as the database stored it (filled id and defaults), not as it was before the write', async () => {
      const env = await makeEnv(dialect)
      await accountsTable(env)
      const upper = new ProcessMemoryStore()
      const lower = new ProcessMemoryStore()
      const chain = new ChainedStore([upper, lower, env.newStore()])
      const a = new Account('two@example.com')
      await chain.put(a)
      const stored = Object.assign(new Account('two@example.com', a.id), { status: 'new', score: 10 })
      expect(await upper.get(Account, { id: a.id as number })).toEqual(stored)
      expect(await lower.get(Account, { id: a.id as number })).toEqual(stored)
      await chain.close()
    })

    it('puts of one object with other column sets never mix up columns whose names hold commas', async () => {
      const env = await makeEnv(dialect)
      const t = sql.table(env.table('commacolumns'))
      await sql`create table ${t} (id integer primary key, a text, "a,b" text, "b,c" text, c text)`.execute(env.db)
      const store = env.newStore()
      await store.put(new CommaColumns(1, { 'a,b': 'AB-of-1', c: 'C-of-1' }))
      await store.put(new CommaColumns(2, { a: 'A-of-2', 'b,c': 'BC-of-2' }))
      const { rows } = await sql<Record<string, unknown>>`select a, "a,b", "b,c", c from ${t} order by id`.execute(env.db)
      expect(rows).toEqual([
        { a: null, 'a,b': 'AB-of-1', 'b,c': null, c: 'C-of-1' },
        { a: 'A-of-2', 'a,b': null, 'b,c': 'BC-of-2', c: null },
      ])
    })

    it('a batch that repeats a primary key writes the last object and the stored row back onto every one', async () => {
      const env = await makeEnv(dialect)
      await createTable(env.newStore(), Repeated, { table: env.table('repeateds'), columns: { id: 'integer', e: 'text', v: 'json' } })
      const store = env.newStore()
      const chain = new ChainedStore([new ProcessMemoryStore(), store])
      const first = new Repeated(1, 'a', { n: 1 })
      const last = new Repeated(1, 'b', { n: 2 })
      const third = new Repeated(1, 'c', [1])
      await chain.batchPut([first, last])
      expect(first).toEqual(new Repeated(1, 'b', { n: 2 }))
      expect(last).toEqual(new Repeated(1, 'b', { n: 2 }))
      expect(first.v).not.toBe(last.v) // each object keeps a value of its own
      expect(await store.get(Repeated, { id: 1 })).toEqual(last)
      expect(await chain.get(Repeated, { e: 'a' })).toBeUndefined()
      // several earlier ones, through the statement of several rows
      const others = [new Repeated(1, 'x', 'x'), third, new Repeated(2, 'y', null), new Repeated(1, 'd', { deep: [new Date(5)] })]
      await store.batchPut(others)
      for (const o of [others[0], third, others[3]]) expect(o).toEqual(new Repeated(1, 'd', { deep: [new Date(5)] }))
      expect(others[0]?.v).not.toBe(third.v)
      await chain.close()
    })

    it('createTable makes the unique indexes of alternate keys in a schema.table', async () => {
      const env = await makeEnv(dialect)
      if (dialect === 'sqlite') await sql`attach database ':memory:' as aux`.execute(env.db)
      const table = dialect === 'sqlite' ? 'aux.listed_items' : env.table('listed_items')
      const store = env.newStore({ tables: { SqlTestListed: table } })
      const columns = { id: 'integer', email: 'text', orgId: 'integer', slug: 'text' } as const
      await createTable(store, Listed, { columns, generated: true })
      await createTable(store, Listed, { columns, generated: true, ifNotExists: true })
      const o = new Listed(undefined, 'a@example.com', 5, 's')
      await store.put(o)
      expect(o.id).toBeTypeOf('number')
      expect(await store.get(Listed, { email: 'a@example.com' })).toEqual(o)
      expect(await store.get(Listed, { orgId: 5, slug: 's' })).toEqual(o)
      await expect(store.put(new Listed(undefined, 'b@example.com', 5, 's'))).rejects.toSatisfy(code('E_KEY_CONFLICT'))
    })

    it('close() leaves an application-owned Kysely open; calls after close reject', async () => {
      const env = await makeEnv(dialect)
      await accountsTable(env)
      const store = env.newStore()
      await store.put(new Account('c@example.com', 1))
      await store.close()
      await expect(store.get(Account, { id: 1 })).rejects.toThrow(StoreClosedError)
      await expect(store.transaction(async () => 1)).rejects.toThrow(StoreClosedError)
      expect(await rowCount(env, 'accounts')).toBe(1)
    })
  })
}

/** Runs `fn` from a timer, i.e. outside the caller's async context. */
function setTimeoutPromise<T>(fn: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    setTimeout(() => fn().then(resolve, reject), 0)
  })
}

describe.runIf(stores.has('sqlite') && stores.has('postgres'))('SqlStore: the same object through SQLite and PostgreSQL', () => {
  it('reads back identically from both databases (and equal to what was put)', async () => {
    const lite = await makeEnv('sqlite')
    const post = await makeEnv('postgres')
    const a = lite.newStore()
    const b = post.newStore()
    await createTable(a, Everything, { columns: everythingColumns })
    await createTable(b, Everything, { columns: everythingColumns })
    const e = makeEverything('same')
    await a.put(e)
    await b.put(e)
    const fromLite = await a.get(Everything, { key: 'same' })
    const fromPg = await b.get(Everything, { key: 'same' })
    expect(fromLite).toStrictEqual(fromPg)
    expect(fromLite).toStrictEqual(e)
  })
})

class Reading {
  static readonly stockpyleName = 'SqlTestReading'
  static readonly stockpyleKeys = ['id'] as const
  constructor(
    public id: number,
    public value: number,
  ) {}
}

describe.runIf(stores.has('postgres'))('SqlStore on postgres: what a put reads back', () => {
  const lastInsert = (env: Env) => env.queries.filter((q) => q.startsWith('insert')).at(-1) ?? ''

  it('reads nothing back when every column stores what was sent, and only what may differ otherwise', async () => {
    const env = await makeEnv('postgres')
    await sql`create table ${sql.table(env.table('tokens'))} (id integer primary key, owner varchar not null unique)`.execute(env.db)
    await sql`create table ${sql.table(env.table('readings'))} (id integer primary key, value real not null)`.execute(env.db)
    const store = env.newStore()
    const token = new Token(1, 'Ann')
    await store.put(token)
    expect(lastInsert(env)).not.toMatch(/returning/)
    expect(await store.get(Token, { id: 1 })).toStrictEqual(token)
    // real (float4) rounds: the object and the caches must hold the rounded value the database holds.
    const reading = new Reading(1, 0.1 + 0.2)
    await store.put(reading)
    expect(lastInsert(env)).toMatch(/returning "value", "id"$/)
    expect(reading.value).toBe(0.3)
    expect(await store.get(Reading, { id: 1 })).toStrictEqual(reading)
  })

  it('a table with a row trigger is read back whole, so what the trigger changed is written back', async () => {
    const env = await makeEnv('postgres')
    await accountsTable(env)
    const fn = sql.table(env.table('lower_email'))
    await sql`create function ${fn}() returns trigger language plpgsql as $$ begin new.email := lower(new.email); return new; end $$`.execute(
      env.db,
    )
    await sql`create trigger lower_email before insert or update on ${sql.table(env.table('accounts'))} for each row execute function ${fn}()`.execute(
      env.db,
    )
    const store = env.newStore()
    const a = new Account('Mixed@Example.COM', 5)
    a.status = 'set'
    a.score = 1
    await store.put(a)
    expect(lastInsert(env)).toMatch(/returning \*$/)
    expect(a.email).toBe('mixed@example.com')
    const chain = new ChainedStore([new ProcessMemoryStore(), store])
    expect(await chain.get(Account, { email: 'mixed@example.com' })).toStrictEqual(a)
  })
})

describe.runIf(stores.has('postgres'))('SqlStore on postgres: a ROLLBACK that fails', () => {
  /** A Kysely on `url` whose ROLLBACK fails as pg fails it on a client that lost its connection. */
  function failingRollback(url: string): Kysely<any> {
    const pool = new pg.Pool({ connectionString: url, max: 2 })
    const wrapped = {
      async connect() {
        const client = await pool.connect()
        return {
          query: (text: string, parameters: unknown[]) =>
            /^rollback$/i.test(text)
              ? Promise.reject(new Error('Client has encountered a connection error and is not queryable'))
              : client.query(text, parameters),
          release: (destroy?: boolean) => client.release(destroy),
        }
      },
      end: () => pool.end(),
    }
    return new Kysely<any>({ dialect: new PostgresDialect({ pool: wrapped as never }) })
  }

  it('does not replace the error of the statement (a batch of several) or of the callback (a transaction)', async () => {
    const env = await makeEnv('postgres')
    await accountsTable(env)
    const db = failingRollback(env.url)
    const store = new SqlStore({ db }, { tables: { SqlTestAccount: env.table('accounts') } })
    try {
      const first = Object.assign(new Account('same@example.com', 1), { status: 'set' }) // another column set: two statements
      await expect(store.batchPut([first, new Account('same@example.com', 2)])).rejects.toSatisfy(code('E_KEY_CONFLICT'))
      const mine = new Error('mine')
      await expect(store.transaction(async () => Promise.reject(mine))).rejects.toBe(mine)
      expect(await rowCount(env, 'accounts')).toBe(0)
    } finally {
      await store.close()
      await db.destroy()
    }
  })
})

describe.runIf(stores.has('postgres'))('SqlStore on postgres: a database that refuses writes', () => {
  it('a write to a read-only database (a hot standby, default_transaction_read_only) is E_STORE_UNAVAILABLE saying so; reads still work and the caches keep nothing', async () => {
    const env = await makeEnv('postgres')
    await accountsTable(env)
    const kept = new Account('kept@example.com', 1)
    await env.store.put(kept)
    const store = env.urlStore('?options=-c%20default_transaction_read_only%3Don')
    const memory = new ProcessMemoryStore()
    const chain = new ChainedStore([memory, store])
    const err = await chain.put(new Account('new@example.com', 2)).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(StoreUnavailableError)
    expect((err as Error).message).toMatch(/read-only/)
    expect((err as Error).message).toMatch(/nothing was written/)
    expect(((err as Error).cause as { code?: string }).code).toBe('25006')
    expect(await memory.get(Account, { email: 'new@example.com' })).toBeUndefined()
    expect(await chain.get(Account, { email: 'kept@example.com' })).toStrictEqual(kept)
    expect(await rowCount(env, 'accounts')).toBe(1)
  })
})

describe.runIf(stores.has('sqlite'))('SqlStore with a URL', () => {
  it('opens sqlite::memory:, creates tables, and destroys its own connection on close', async () => {
    const store = new SqlStore({ url: 'sqlite::memory:' })
    await createTable(store, Membership, { columns: { orgId: 'integer', userId: 'integer', role: 'text' }, ifNotExists: true })
    await createTable(store, Membership, { columns: { orgId: 'integer', userId: 'integer', role: 'text' }, ifNotExists: true })
    await store.put(new Membership(1, 2))
    expect(await store.get(Membership, { orgId: 1, userId: 2 })).toEqual(new Membership(1, 2))
    const db = await store.kysely()
    await store.close()
    await expect(sql`select 1`.execute(db)).rejects.toThrow()
  })

  it('createTable validates its options', async () => {
    const store = new SqlStore({ url: 'sqlite::memory:' })
    await expect(createTable(store, Membership, { columns: { orgId: 'integer', role: 'text' } })).rejects.toThrow(/`userId`/)
    await expect(createTable(store, Membership, { columns: { orgId: 'integer', userId: 'uuid' as never } })).rejects.toThrow(/unknown type/)
    await expect(createTable(store, Membership, { columns: { orgId: 'integer', userId: 'integer' }, generated: true })).rejects.toThrow(
      InvalidOptionError,
    )
    await store.close()
  })
})
