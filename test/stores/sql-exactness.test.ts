import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { ChainedStore, ProcessMemoryStore, SerializationError, StoreUnavailableError } from '../../src/index.js'
import { SqlStore } from '../../src/stores/sql/index.js'
import { selectedStores } from '../harness/servers.js'
import { sqlTestEnv } from './sql-test-env.js'

// Values SqlStore's numeric and untyped columns cannot give back exactly are refused at put, before
// anything is written; what they can hold comes back as it was sent.

class Reading {
  static readonly stockpyleName = 'ExactReading'
  static readonly stockpyleKeys = ['id'] as const
  constructor(
    public id: number,
    public value: unknown,
  ) {}
}

class Loose {
  static readonly stockpyleName = 'ExactLoose'
  static readonly stockpyleKeys = ['id'] as const
  constructor(
    public id: number,
    public value: unknown,
  ) {}
}

class Tag {
  static readonly stockpyleName = 'ExactTag'
  static readonly stockpyleKeys = ['k'] as const
  constructor(
    public k: string | number | bigint | boolean,
    public label: string,
  ) {}
}

class Moment {
  static readonly stockpyleName = 'ExactMoment'
  static readonly stockpyleKeys = ['id'] as const
  constructor(
    public id: number,
    public at: Date | null,
    public ats: (Date | null)[] | null,
  ) {}
}

class Label {
  static readonly stockpyleName = 'ExactLabel'
  static readonly stockpyleKeys = ['id'] as const
  constructor(
    public id: number,
    public short: string,
    public long: string,
  ) {}
}

class Lists {
  static readonly stockpyleName = 'ExactList'
  static readonly stockpyleKeys = ['id'] as const
  constructor(
    public id: number,
    public tags: unknown = null,
    public nums: unknown = null,
    public docs: unknown = null,
    public ints: unknown = null,
    public stamps: unknown = null,
    public locals: unknown = null,
    public floats: unknown = null,
    public days: unknown = null,
  ) {}
}

/** Arrays of types pg has no array parser for (table `oddarrays`). */
class OddArrays {
  static readonly stockpyleName = 'ExactOddArray'
  static readonly stockpyleKeys = ['id'] as const
  constructor(
    public id: number,
    values: Record<string, unknown> = {},
  ) {
    Object.assign(this, values)
  }
}

/** Columns of PostgreSQL types with ranges of their own (table `ranges`). */
class Ranged {
  static readonly stockpyleName = 'ExactRange'
  static readonly stockpyleKeys = ['id'] as const
  constructor(
    public id: number,
    values: Record<string, unknown> = {},
  ) {
    Object.assign(this, values)
  }
}

class Span {
  static readonly stockpyleName = 'ExactSpan'
  static readonly stockpyleKeys = ['id'] as const
  constructor(
    public id: number,
    public iv: unknown,
    public ivs: unknown,
    public p: unknown,
    public c: unknown,
  ) {}
}

const stores = selectedStores()
const { dialects, open } = sqlTestEnv('stockpyle_sql_exactness_tests', 'Exact')

const show = (v: unknown) => (Object.is(v, -0) ? '-0' : typeof v === 'bigint' ? `${v}n` : v)

describe.each(dialects)('SqlStore on %s: -0 in numeric columns', (dialect) => {
  // [declared type, whether -0 comes back]: PostgreSQL's float types keep the sign, SQLite stores an
  // integral REAL as an integer, and integer/numeric types have no negative zero
  const types: [string, boolean][] =
    dialect === 'sqlite'
      ? [
          ['integer', false],
          ['real', false],
          ['double', false],
          ['numeric', false],
        ]
      : [
          ['integer', false],
          ['smallint', false],
          ['numeric', false],
          ['oid', false],
          ['double precision', true],
          ['real', true],
        ]

  for (const [type, kept] of types) {
    it(`${type}: -0 ${kept ? 'comes back as -0, from the database and from a chain' : 'is refused before anything is written'}`, async () => {
      const env = await open(dialect)
      await sql`create table ${sql.table(env.table('readings'))} (id integer primary key, value ${sql.raw(type)})`.execute(env.db)
      const chain = new ChainedStore([new ProcessMemoryStore({ max: 10 }), env.store])
      const r = new Reading(1, -0)
      if (kept) {
        await chain.put(r)
        expect(show(r.value)).toBe('-0')
        expect(show((await env.store.get(Reading, { id: 1 }))?.value)).toBe('-0')
        expect(show((await chain.get(Reading, { id: 1 }))?.value)).toBe('-0')
        // several rows in one statement, and a read by another process
        await env.store.batchPut([new Reading(2, 1.5), new Reading(3, -0)])
        const fresh = new SqlStore({ db: env.db }, { tables: () => env.table('readings') })
        expect((await fresh.batchGet(Reading, [{ id: 1 }, { id: 2 }, { id: 3 }])).map((x) => show(x?.value))).toEqual(['-0', 1.5, '-0'])
      } else {
        const err = await chain.put(r).catch((e: unknown) => e)
        expect(err).toBeInstanceOf(SerializationError)
        expect((err as Error).message).toMatch(/`ExactReading`.*`value`.*-0.*column `value`/)
        expect(show(r.value)).toBe('-0')
        expect(await env.store.get(Reading, { id: 1 })).toBeUndefined()
        await expect(env.store.batchPut([new Reading(2, 5), new Reading(3, -0)])).rejects.toThrow(SerializationError)
        expect(await env.store.get(Reading, { id: 2 })).toBeUndefined()
        await env.store.put(new Reading(4, 0))
        expect(show((await env.store.get(Reading, { id: 4 }))?.value)).toBe(0)
      }
      await chain.close()
    })
  }

  it('a key -0 is the key 0, and a lookup by -0 finds the row of 0', async () => {
    const env = await open(dialect)
    await sql`create table ${sql.table(env.table('readings'))} (id integer primary key, value integer)`.execute(env.db)
    await env.store.put(new Reading(0, 7))
    expect((await env.store.get(Reading, { id: -0 }))?.value).toBe(7)
  })
})

describe.runIf(stores.has('sqlite'))('SqlStore on sqlite: columns without a known type', () => {
  // declared type → [values that come back exactly, [refused value, what the message advises]]
  const cases: [string, unknown[], [unknown, RegExp][]][] = [
    // no declared type: SQLite stores each value as it is bound (BLOB affinity)
    [
      '',
      ['text', '123', ' 12 ', 1.5, 3, -0, 2 ** 60, Number.POSITIVE_INFINITY, Buffer.from([1, 2]), null],
      [
        [true, /BOOLEAN/],
        [5n, /BIGINT/],
        [2n ** 62n, /BIGINT/],
        [new Date(0), /TIMESTAMP/],
        [new Uint8Array([1]), /BLOB/],
        [Number.NaN, /NaN/],
      ],
    ],
    // an unknown declared type has NUMERIC affinity: numeric text and integral reals become integers
    [
      'string',
      ['text', '12a', '0x10', 'Infinity', 1.5, 3, -1, 2 ** 53 - 1, ''],
      [
        ['123', /TEXT/],
        [' 12 ', /TEXT/],
        ['1e3', /TEXT/],
        ['.5', /TEXT/],
        [-0, /JSON/],
        [2 ** 60, /REAL/],
        [true, /BOOLEAN/],
        [5n, /BIGINT/],
      ],
    ],
  ]

  for (const [type, kept, refused] of cases) {
    it(`declared ${JSON.stringify(type)}: values come back exactly or are refused, naming the column and the type to declare`, async () => {
      const env = await open('sqlite')
      await sql`create table looses (id integer primary key, value ${sql.raw(type)})`.execute(env.db)
      let id = 0
      for (const value of kept) {
        const obj = new Loose(++id, value)
        await env.store.put(obj)
        expect(show(obj.value), `${String(show(value))} written back`).toStrictEqual(show(value))
        const back = await env.store.get(Loose, { id })
        expect(show(back?.value), `${String(show(value))} read back`).toStrictEqual(show(value))
      }
      for (const [value, advice] of refused) {
        const obj = new Loose(++id, value)
        const err = await env.store.put(obj).catch((e: unknown) => e)
        expect(err, String(show(value))).toBeInstanceOf(SerializationError)
        expect((err as Error).message).toMatch(/`ExactLoose`.*`value`.*column `value` of table `looses`/)
        expect((err as Error).message).toMatch(advice)
        expect(obj.value).toBe(value)
        expect(await env.store.get(Loose, { id })).toBeUndefined()
      }
    })
  }

  it('a STRICT table’s ANY column keeps text as text', async () => {
    const env = await open('sqlite')
    await sql`create table looses (id integer primary key, value any) strict`.execute(env.db)
    for (const [id, value] of [
      [1, '123'],
      [2, -0],
      [3, 2 ** 60],
    ] as const) {
      await env.store.put(new Loose(id, value))
      expect(show((await env.store.get(Loose, { id }))?.value)).toBe(show(value))
    }
    await expect(env.store.put(new Loose(4, true))).rejects.toThrow(/BOOLEAN/)
  })

  it('an untyped key column: each key type its own row, and a lookup it cannot hold is a miss without a query', async () => {
    const env = await open('sqlite')
    await sql`create table tags (k primary key, label text)`.execute(env.db)
    await env.store.put(new Tag(1, 'number one'))
    await env.store.put(new Tag('1', 'text one'))
    await expect(env.store.put(new Tag(true, 'boolean true'))).rejects.toThrow(/`k`.*BOOLEAN/)
    await expect(env.store.put(new Tag(1n, 'bigint one'))).rejects.toThrow(/`k`.*BIGINT/)
    // a row another program wrote: a 64-bit integer, read back as a bigint
    await sql`insert into tags values (1152921504606846976, 'big')`.execute(env.db)
    const { rows } = await sql<{ n: bigint }>`select count(*) as n from tags`.execute(env.db)
    expect(rows[0]?.n).toBe(3n)

    expect((await env.store.get(Tag, { k: 1 }))?.label).toBe('number one')
    expect((await env.store.get(Tag, { k: '1' }))?.label).toBe('text one')
    expect((await env.store.get(Tag, { k: 2n ** 60n }))?.label).toBe('big')
    const before = env.queries.length
    expect(await env.store.get(Tag, { k: true })).toBeUndefined()
    expect(await env.store.get(Tag, { k: 1n })).toBeUndefined()
    expect(await env.store.get(Tag, { k: 2n ** 70n })).toBeUndefined()
    expect(await env.store.batchGet(Tag, [{ k: false }, { k: -(2n ** 64n) }, { k: 1 }])).toMatchObject([
      undefined,
      undefined,
      { label: 'number one' },
    ])
    expect(env.queries.length - before).toBe(1)
  })
})

/** Runs `fn` with the process's time zone set to `zone` (Node applies a change of TZ at once). */
async function inTimeZone<T>(zone: string, fn: () => Promise<T>): Promise<T> {
  const before = process.env.TZ
  process.env.TZ = zone
  try {
    return await fn()
  } finally {
    if (before === undefined) delete process.env.TZ
    else process.env.TZ = before
  }
}

/** PostgreSQL's own spelling of a UTC instant (`make_timestamptz`: years before 1 AD are negative, 1 BC = -1). */
function makeTimestamptz(d: Date) {
  const y = d.getUTCFullYear()
  const seconds = d.getUTCSeconds() + d.getUTCMilliseconds() / 1000
  return sql`make_timestamptz(${y <= 0 ? y - 1 : y}::int, ${d.getUTCMonth() + 1}::int, ${d.getUTCDate()}::int, ${d.getUTCHours()}::int, ${d.getUTCMinutes()}::int, ${seconds}::float8, 'UTC')`
}

describe.runIf(stores.has('postgres'))('SqlStore on postgres: values pg would change', () => {
  // Local mean time before standard zones had offsets in seconds, which pg's Date → text drops.
  const dates = [
    '1900-01-01T00:00:00.000Z',
    '1800-06-01T12:34:56.789Z',
    '1916-05-01T00:00:00.000Z',
    '0099-12-31T23:59:59.999Z',
    '0001-01-01T00:00:00.000Z',
    '0000-03-01T12:00:00.000Z',
    '-000001-06-01T00:00:00.000Z',
    '-004000-01-01T00:00:00.000Z',
    '1970-01-01T00:00:00.001Z',
    '2024-03-31T01:30:00.000Z',
    '+200000-01-01T00:00:00.000Z',
  ]

  for (const zone of ['Europe/Amsterdam', 'Asia/Kolkata']) {
    it(`timestamptz: each Date is stored and read back to the millisecond with the process in ${zone}, through any pool and session time zone`, async () => {
      const env = await open('postgres')
      const table = sql.table(env.table('moments'))
      await sql`create table ${table} (id integer primary key, at timestamptz, ats timestamptz[])`.execute(env.db)
      await inTimeZone(zone, async () => {
        expect(new Date('1800-06-01T12:34:56.789Z').getTimezoneOffset(), 'the zone is in effect').not.toBe(0)
        const targets = [env.store, env.urlStore(), env.urlStore('?options=-c%20TimeZone%3DAmerica%2FNew_York')]
        let id = 0
        for (const [t, store] of targets.entries()) {
          const chain = new ChainedStore([new ProcessMemoryStore({ max: 100 }), store])
          for (const iso of dates) {
            const at = `${iso} through store ${t}`
            const d = new Date(iso)
            const obj = new Moment(++id, d, [d, null])
            await chain.put(obj)
            expect(obj.at?.toISOString(), at).toBe(iso)
            const { rows } = await sql<{ same: boolean }>`select at = ${makeTimestamptz(d)} and ats[1] = ${makeTimestamptz(d)} as same
              from ${table} where id = ${id}`.execute(env.db)
            expect(rows[0]?.same, `${at}: stored`).toBe(true)
            const back = await store.get(Moment, { id })
            expect(back?.at?.toISOString(), `${at}: read`).toBe(iso)
            expect(
              back?.ats?.map((x) => x?.toISOString() ?? null),
              `${at}: array read`,
            ).toEqual([iso, null])
            expect((await chain.get(Moment, { id }))?.at?.toISOString(), `${at}: chain`).toBe(iso)
            // a row another program wrote
            await sql`insert into ${table} (id, at) values (${id + 1000}, ${makeTimestamptz(d)})`.execute(env.db)
            expect((await store.get(Moment, { id: id + 1000 }))?.at?.toISOString(), `${at}: written by SQL`).toBe(iso)
          }
          await chain.close()
        }
      })
    })
  }

  it('array columns: elements come back exactly or the put is refused before anything is written (objects, undefined, holes, -0, NUL)', async () => {
    const env = await open('postgres')
    await sql`create table ${sql.table(env.table('lists'))} (id integer primary key, tags text[], nums float8[], docs jsonb[],
      ints int[], stamps timestamptz[], locals timestamp[], floats float4[], days date[])`.execute(env.db)
    const kept = new Lists(1, ['a', 'b', null, ''], [1.5, Number.NaN, -2], [])
    await env.store.put(kept)
    expect(await env.store.get(Lists, { id: 1 })).toEqual(kept)
    const refused: [string, Lists][] = [
      ['a function in a jsonb[]', new Lists(2, null, null, [() => 1])],
      ['a hole in a jsonb[]', new Lists(3, null, null, new Array<unknown>(2).fill(1, 1))],
      ['undefined in a text[]', new Lists(4, ['a', undefined])],
      ['a hole in a text[]', new Lists(5, new Array<unknown>(2).fill('a', 1))],
      ['-0 in an int[]', new Lists(6, null, null, null, [1, -0])],
      ['NUL in a text[]', new Lists(7, ['a\u0000b'])],
      ['a nested Map in a text[][]', new Lists(8, [['a', new Map()]])],
      ['an Invalid Date in a text[]', new Lists(9, [new Date(Number.NaN)])],
      ['a Date in a text[] (pg would send it as local time text)', new Lists(10, [new Date(0)])],
      ['a Date in an int[]', new Lists(11, null, null, null, [new Date(0)])],
      ['an Invalid Date in a timestamptz[]', new Lists(12, null, null, null, null, [new Date(0), new Date(Number.NaN)])],
      ['an Invalid Date in a timestamp[]', new Lists(13, null, null, null, null, null, [[new Date(Number.NaN)]])],
    ]
    for (const [label, obj] of refused) {
      const err = await env.store.batchPut([new Lists(100 + obj.id, ['fine']), obj]).catch((e: unknown) => e)
      expect(err, label).toBeInstanceOf(SerializationError)
      expect(await env.store.batchGet(Lists, [{ id: obj.id }, { id: 100 + obj.id }]), label).toEqual([undefined, undefined])
    }
    const intZero = (await env.store.put(new Lists(6, null, null, null, [1, -0])).catch((e: unknown) => e)) as Error
    expect(intZero.message).toMatch(/column `ints`/)
    expect(intZero.message).toMatch(/double precision\[\]/)
    // float8[] and float4[] keep the sign of -0 (PostgreSQL does; pg's own array text would drop it)
    const signed = new Lists(
      20,
      null,
      [
        [1, -0],
        [-0, 2],
      ] as never,
      null,
      null,
      null,
      null,
      [-0, 0.5],
    )
    await env.store.put(signed)
    expect(signed.nums).toEqual([
      [1, -0],
      [-0, 2],
    ])
    const back = (await env.store.get(Lists, { id: 20 })) as Lists
    expect(Object.is((back.nums as number[][])[0]?.[1], -0)).toBe(true)
    expect(Object.is((back.nums as number[][])[1]?.[0], -0)).toBe(true)
    expect(Object.is((back.floats as number[])[0], -0)).toBe(true)
    const { rows } = await sql<{ t: string }>`select nums::text as t from ${sql.table(env.table('lists'))} where id = 20`.execute(env.db)
    expect(rows[0]?.t).toBe('{{1,-0},{-0,2}}')
    // valid Dates in date and timestamp arrays are what those types hold
    const dated = new Lists(21, null, null, null, null, [new Date(0)], [new Date(0)], null, [new Date(Date.UTC(2024, 0, 2))])
    await env.store.put(dated)
    expect((await env.store.get(Lists, { id: 21 }))?.stamps).toEqual([new Date(0)])
  })

  it('varchar(n): a string PostgreSQL trims to n characters comes back trimmed, on the object and from a chain; a longer one is refused', async () => {
    const env = await open('postgres')
    await sql`create table ${sql.table(env.table('labels'))} (id integer primary key, short varchar(3), long varchar)`.execute(env.db)
    const chain = new ChainedStore([new ProcessMemoryStore({ max: 10 }), env.store])
    const obj = new Label(1, 'ab      ', 'ab      ')
    await chain.put(obj)
    expect(obj).toEqual(new Label(1, 'ab ', 'ab      '))
    expect(await chain.get(Label, { id: 1 })).toEqual(new Label(1, 'ab ', 'ab      '))
    expect(await env.store.get(Label, { id: 1 })).toEqual(new Label(1, 'ab ', 'ab      '))
    const err = await chain.put(new Label(2, 'abcd', '')).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(SerializationError)
    expect(await env.store.get(Label, { id: 2 })).toBeUndefined()
  })

  it('interval, point and circle come back as PostgreSQL’s text through the store’s own pool: a chain caches them, and what was read can be put back', async () => {
    const env = await open('postgres')
    const table = sql.table(env.table('spans'))
    await sql`create table ${table} (id integer primary key, iv interval, ivs interval[], p point, c circle)`.execute(env.db)
    const store = env.urlStore()
    const chain = new ChainedStore([new ProcessMemoryStore({ max: 10 }), store])
    const obj = new Span(1, '24 hours', ['1 day', '2 hours'], '(1.5, 2)', '<(1,2),3>')
    await chain.put(obj)
    const stored = new Span(1, '24:00:00', ['1 day', '02:00:00'], '(1.5,2)', '<(1,2),3>')
    expect(obj).toEqual(stored)
    expect(await chain.get(Span, { id: 1 })).toEqual(stored)
    expect(await store.get(Span, { id: 1 })).toEqual(stored)
    await sql`insert into ${table} values (2, '1 mon -3 days', '{"1 year"}', '(0,0)', '<(0,0),1>')`.execute(env.db)
    const row = await chain.get(Span, { id: 2 })
    expect(row).toEqual(new Span(2, '1 mon -3 days', ['1 year'], '(0,0)', '<(0,0),1>'))
    await chain.put(row as Span)
    const again = (await store.get(Span, { id: 2 })) as Span
    again.iv = '5 minutes'
    await store.put(again)
    expect(again.iv).toBe('00:05:00')
  })

  it('interval, point and circle through a pg pool the application made: PostgreSQL’s text, as through the store’s own pool, which a chain caches and a put accepts', async () => {
    const env = await open('postgres')
    const table = sql.table(env.table('spans'))
    await sql`create table ${table} (id integer primary key, iv interval, ivs interval[], p point, c circle)`.execute(env.db)
    const chain = new ChainedStore([new ProcessMemoryStore({ max: 10 }), env.store])
    const obj = new Span(1, '1 day', ['1 day', '2 hours'], '(1.5, 2)', '<(1,2),3>')
    await chain.put(obj)
    const stored = new Span(1, '1 day', ['1 day', '02:00:00'], '(1.5,2)', '<(1,2),3>')
    expect(obj).toEqual(stored)
    expect(await chain.get(Span, { id: 1 })).toEqual(stored)
    const back = (await env.store.get(Span, { id: 1 })) as Span
    expect(back).toEqual(stored)
    await chain.put(back)
    const { rows } = await sql<{
      same: boolean
    }>`select iv = '1 day' and ivs = '{"1 day","2 hours"}' and p ~= '(1.5,2)' and c ~= '<(1,2),3>' as same
      from ${table}`.execute(env.db)
    expect(rows[0]?.same).toBe(true)
  })

  for (const style of ['iso_8601', 'sql_standard', 'postgres_verbose']) {
    it(`intervals through a pg pool the application made, with IntervalStyle ${style}: PostgreSQL’s text, never pg’s misreading (0)`, async () => {
      const env = await open('postgres')
      const table = sql.table(env.table('spans'))
      await sql`create table ${table} (id integer primary key, iv interval, ivs interval[], p point, c circle)`.execute(env.db)
      await sql`insert into ${table} values (1, '1 mon 2 days 03:04:05', '{"1 day","-2 hours"}', '(1,2)', '<(1,2),3>')`.execute(env.db)
      const pool = new pg.Pool({ connectionString: env.url, max: 1, options: `-c IntervalStyle=${style}` })
      const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) })
      const store = new SqlStore({ db }, { tables: { ExactSpan: env.table('spans') } })
      try {
        const got = (await store.get(Span, { id: 1 })) as Span
        expect(got.iv).not.toMatch(/^(0|00:00:00|PT0S)$/)
        expect(Array.isArray(got.ivs)).toBe(true)
        await store.put(got)
        const copy = new Span(2, got.iv, got.ivs, got.p, got.c)
        await store.put(copy)
        expect(copy).toEqual(new Span(2, got.iv, got.ivs, got.p, got.c))
        const deleted = await store.batchDeleteByKey(Span, [{ id: 2 }])
        expect(deleted[0]).toEqual(copy)
        await store.put(copy)
        const { rows } = await sql<{ same: boolean }>`select bool_and(iv = '1 mon 2 days 03:04:05' and ivs = '{"1 day","-2 hours"}') as same
          from ${table}`.execute(env.db)
        expect(rows[0]?.same).toBe(true)
      } finally {
        await store.close()
        await db.destroy()
      }
    })
  }

  it('arrays of types pg has no array parser for (enum, citext, name, circle, domains, ranges, "char") come back as arrays, through the store’s own pool and an application’s', async () => {
    const env = await open('postgres')
    const citext = await sql`create extension if not exists citext`.execute(env.db).then(
      () => true,
      () => false,
    )
    const t = (name: string) => sql.table(env.table(name))
    await sql`create type ${t('mood')} as enum ('happy', 'sad')`.execute(env.db)
    await sql`create domain ${t('dtext')} as text`.execute(env.db)
    await sql`create domain ${t('dint')} as int4`.execute(env.db)
    await sql`create domain ${t('ddint')} as ${t('dint')}`.execute(env.db)
    await sql`create table ${t('oddarrays')} (id integer primary key, a_enum ${t('mood')}[], a_enum2 ${t('mood')}[][],
      a_name name[], a_circle circle[], a_dtext ${t('dtext')}[], a_dint ${t('dint')}[], a_ddint ${t('ddint')}[],
      a_range int4range[], a_char "char"[], a_text text[] ${sql.raw(citext ? ', a_citext citext[]' : '')})`.execute(env.db)
    const values: Record<string, unknown> = {
      a_enum: ['happy', 'sad'],
      a_enum2: [['happy'], ['sad']],
      a_name: ['n1', 'n 2'],
      a_circle: ['<(1,2),3>'],
      a_dtext: ['x', 'y z', null],
      a_dint: [1, -2],
      a_ddint: [3],
      a_range: ['[1,3)', 'empty'],
      a_char: ['a', 'b'],
      a_text: ['t'],
      ...(citext ? { a_citext: ['Ab', 'c d'] } : {}),
    }
    const own = env.urlStore()
    for (const [i, store] of [own, env.store].entries()) {
      const chain = new ChainedStore([new ProcessMemoryStore({ max: 10 }), store])
      const obj = new OddArrays(i + 1, structuredClone(values))
      await chain.put(obj)
      expect(obj, `store ${i}`).toEqual(new OddArrays(i + 1, values))
      expect(await chain.get(OddArrays, { id: i + 1 })).toEqual(new OddArrays(i + 1, values))
      const read = (await store.get(OddArrays, { id: i + 1 })) as OddArrays
      expect(read).toEqual(new OddArrays(i + 1, values))
      await store.put(read)
      expect(read).toEqual(new OddArrays(i + 1, values))
      await chain.clearCaches()
    }
    const { rows } = await sql<{ a_enum: string; a_range: string }>`select a_enum::text, a_range::text from ${t('oddarrays')}`.execute(
      env.db,
    )
    expect(rows).toEqual([
      { a_enum: '{happy,sad}', a_range: '{"[1,3)",empty}' },
      { a_enum: '{happy,sad}', a_range: '{"[1,3)",empty}' },
    ])
  })

  it('int8[] holds bigints, as an int8 column: they come back as bigints through the store’s own pool and an application’s; numbers and strings are refused before anything is written', async () => {
    const env = await open('postgres')
    const t = (name: string) => sql.table(env.table(name))
    await sql`create domain ${t('dbig')} as int8`.execute(env.db)
    await sql`create table ${t('oddarrays')} (id integer primary key, big int8[], dbig ${t('dbig')}[])`.execute(env.db)
    const values = { big: [5n, 9007199254740993n, null, -(2n ** 63n)], dbig: [[1n], [2n ** 62n]] }
    for (const [i, store] of [env.urlStore(), env.store].entries()) {
      const chain = new ChainedStore([new ProcessMemoryStore({ max: 10 }), store])
      const obj = new OddArrays(i + 1, structuredClone(values))
      await chain.put(obj)
      expect(obj, `store ${i}`).toEqual(new OddArrays(i + 1, values))
      expect(await chain.get(OddArrays, { id: i + 1 })).toEqual(new OddArrays(i + 1, values))
      expect(await store.get(OddArrays, { id: i + 1 })).toEqual(new OddArrays(i + 1, values))
      for (const [label, bad] of [
        ['a number', { big: [5] }],
        ['a string', { big: ['5'] }],
        ['a nested number', { dbig: [[1n], [2]] }],
      ] as const) {
        const err = await chain.put(new OddArrays(10 + i, bad)).catch((e: unknown) => e)
        expect(err, label).toBeInstanceOf(SerializationError)
        expect((err as Error).message, label).toMatch(/bigint/)
        expect(await store.get(OddArrays, { id: 10 + i }), label).toBeUndefined()
      }
      await chain.clearCaches()
    }
  })
})

describe.runIf(stores.has('postgres'))('SqlStore on postgres: array columns take their element type only', () => {
  const columns = sql.raw(`id integer primary key, ta text[], va varchar[], fa float8[], f4 real[], na numeric[], ba bool[],
    ia int4[], sa int2[], ya bytea[], da timestamptz[], dd date[], ja jsonb[], jj json[]`)

  it('an element of another type is refused before anything is written, naming the attribute, the element and the column type', async () => {
    const env = await open('postgres')
    await sql`create table ${sql.table(env.table('oddarrays'))} (${columns})`.execute(env.db)
    const chain = new ChainedStore([new ProcessMemoryStore({ max: 10 }), env.store])
    const refused: [string, unknown, string, RegExp][] = [
      ['ta', [7], '[0]', /text\[\]/],
      ['ta', ['a', 8n], '[1]', /text\[\]/],
      ['ta', [true], '[0]', /text\[\]/],
      ['ta', [Buffer.from('x')], '[0]', /text\[\]/],
      ['ta', [['a'], [7]], '[1][0]', /text\[\]/],
      ['va', [1], '[0]', /character varying\[\]/],
      ['fa', [2n ** 62n + 1n], '[0]', /double precision\[\]/],
      ['fa', ['1.5'], '[0]', /double precision\[\]/],
      ['fa', [true], '[0]', /double precision\[\]/],
      ['f4', ['1'], '[0]', /real\[\]/],
      ['na', ['1.5'], '[0]', /numeric\[\]/],
      ['na', [1n], '[0]', /numeric\[\]/],
      ['na', [Number.NaN], '[0]', /numeric\[\]/],
      ['ba', ['t'], '[0]', /boolean\[\]/],
      ['ba', [1], '[0]', /boolean\[\]/],
      ['ia', ['7'], '[0]', /integer\[\]/],
      ['ia', [1n], '[0]', /integer\[\]/],
      ['ia', [1.5], '[0]', /integer\[\]/],
      ['sa', [true], '[0]', /smallint\[\]/],
      ['ya', ['\\x00'], '[0]', /bytea\[\]/],
      ['ya', [new Float64Array(1)], '[0]', /bytea\[\]/],
      ['ya', [Buffer.from([1]), new Uint8Array([1])], '[1]', /bytea\[\].*back as Buffer \(option bytes: 'Buffer'/],
      ['da', ['2024-01-01T00:00:00Z'], '[0]', /timestamp with time zone\[\]/],
      ['dd', [0], '[0]', /date\[\]/],
      ['ja', [1, undefined], '[1]', /jsonb\[\]/],
      ['ta', [[]], '[0]', /text\[\]/],
      ['ia', [[1], []], '[1]', /integer\[\]/],
    ]
    let id = 0
    for (const [attribute, value, element, type] of refused) {
      const label = `${attribute} = ${String(value)}`
      const obj = new OddArrays(++id, { [attribute]: value })
      const err = await chain.put(obj).catch((e: unknown) => e)
      expect(err, label).toBeInstanceOf(SerializationError)
      const message = (err as Error).message
      expect(message, label).toContain(`attribute \`${attribute}\``)
      expect(message, label).toContain(`element ${element}`)
      expect(message, label).toMatch(type)
      expect((obj as unknown as Record<string, unknown>)[attribute], label).toBe(value)
      expect(await env.store.get(OddArrays, { id }), label).toBeUndefined()
    }
    const kept = {
      ta: ['a', null, ''],
      va: ['b'],
      fa: [1.5, -0, Number.NaN, Number.POSITIVE_INFINITY],
      f4: [0.5],
      na: [0.1, 1e-7, -2],
      ba: [true, null, false],
      ia: [[1], [-2]],
      sa: [3],
      ya: [Buffer.from([0, 255]), null],
      da: [new Date(5), null],
      dd: [new Date(Date.UTC(2024, 0, 2))],
      ja: null,
      jj: null,
    }
    // (structuredClone makes a Buffer a plain Uint8Array, which a bytea[] reading Buffers refuses)
    const obj = new OddArrays(100, { ...structuredClone(kept), ya: [Buffer.from([0, 255]), null] })
    await chain.put(obj)
    expect(obj).toEqual(new OddArrays(100, kept))
    expect(Object.is((obj as unknown as { fa: number[] }).fa[1], -0)).toBe(true)
    expect(await chain.get(OddArrays, { id: 100 })).toEqual(new OddArrays(100, kept))
    expect(await env.store.get(OddArrays, { id: 100 })).toEqual(new OddArrays(100, kept))
    // bytea[] elements follow option bytes, as a bytea column does
    const plain = (await env.newStore({ bytes: 'Uint8Array' }).get(OddArrays, { id: 100 })) as unknown as { ya: unknown[] }
    expect(plain.ya[0]?.constructor).toBe(Uint8Array)
    expect(plain.ya).toEqual([new Uint8Array([0, 255]), null])
  })

  it('an array of a domain over timestamptz takes Dates, as timestamptz[] does, and keeps their instants', async () => {
    const env = await open('postgres')
    await sql`create domain ${sql.table(env.table('stamp'))} as timestamptz`.execute(env.db)
    await sql`create table ${sql.table(env.table('oddarrays'))} (id integer primary key, ds ${sql.table(env.table('stamp'))}[])`.execute(
      env.db,
    )
    const kept = { ds: [new Date('1800-06-01T12:34:56.789Z'), null] }
    await inTimeZone('Europe/Amsterdam', async () => {
      const obj = new OddArrays(1, structuredClone(kept))
      await env.store.put(obj)
      expect(obj).toEqual(new OddArrays(1, kept))
      expect(await env.store.get(OddArrays, { id: 1 })).toEqual(new OddArrays(1, kept))
    })
    const err = await env.store.put(new OddArrays(2, { ds: ['2024-01-01'] })).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(SerializationError)
  })

  it('a json[]/jsonb[] element is any value a json column takes, and comes back exactly (strings, bigints, Dates, Maps)', async () => {
    const env = await open('postgres')
    await sql`create table ${sql.table(env.table('oddarrays'))} (id integer primary key, ja jsonb[], jj json[])`.execute(env.db)
    const values = [2n ** 60n + 3n, '"x"', 'x', '', { at: new Date(0) }, new Map([['k', 1]]), null, 1.5, true, 'a\u0000b', 2 ** 60]
    const kept = { ja: values, jj: [values.slice(0, 3), values.slice(3, 6)] }
    for (const [i, store] of [env.store, env.urlStore()].entries()) {
      const chain = new ChainedStore([new ProcessMemoryStore({ max: 10 }), store])
      const obj = new OddArrays(i + 1, structuredClone(kept))
      await chain.put(obj)
      expect(obj, `store ${i}`).toEqual(new OddArrays(i + 1, kept))
      expect(await chain.get(OddArrays, { id: i + 1 }), `store ${i}`).toEqual(new OddArrays(i + 1, kept))
      expect(await store.get(OddArrays, { id: i + 1 }), `store ${i}`).toEqual(new OddArrays(i + 1, kept))
    }
    // written by another program: plain JSON elements come back as parsed
    await sql`insert into ${sql.table(env.table('oddarrays'))} (id, ja) values (10, array['"x"'::jsonb, '{"a":[1]}', 'null'])`.execute(
      env.db,
    )
    expect(await env.store.get(OddArrays, { id: 10 })).toMatchObject({ ja: ['x', { a: [1] }, null] })
  })

  it('a value that is not an array is refused before anything is sent (a Buffer was sent as bytea and reported as the database unreachable)', async () => {
    const env = await open('postgres')
    await sql`create table ${sql.table(env.table('oddarrays'))} (${columns})`.execute(env.db)
    const chain = new ChainedStore([new ProcessMemoryStore({ max: 10 }), env.store])
    const refused: [string, unknown, RegExp][] = [
      ['ta', Buffer.from('ab'), /text\[\]/],
      ['fa', new Uint8Array([1]), /double precision\[\]/],
      ['ta', '{a,b}', /text\[\]/],
      ['ia', 5, /integer\[\]/],
      ['da', new Date(0), /timestamp with time zone\[\]/],
      ['ja', { a: 1 }, /jsonb\[\]/],
      ['ba', true, /boolean\[\]/],
    ]
    let id = 0
    for (const [attribute, value, type] of refused) {
      const label = `${attribute} = ${String(value)}`
      const err = await chain.put(new OddArrays(++id, { [attribute]: value })).catch((e: unknown) => e)
      expect(err, label).toBeInstanceOf(SerializationError)
      expect((err as Error).message, label).toContain(`attribute \`${attribute}\``)
      expect((err as Error).message, label).toMatch(type)
      expect(await env.store.get(OddArrays, { id }), label).toBeUndefined()
    }
    expect(env.queries.filter((q) => /^insert/i.test(q))).toEqual([])
  })

  it('a value the server cannot read from the wire (08P01 at Bind: a Buffer for a point) is not reported as the database unreachable', async () => {
    const env = await open('postgres')
    await sql`create table ${sql.table(env.table('spans'))} (id integer primary key, iv interval, ivs interval[], p point, c circle)`.execute(
      env.db,
    )
    for (const store of [env.store, env.urlStore()]) {
      const err = await store.put(new Span(1, null, null, Buffer.from('ab'), null)).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(SerializationError)
      expect(err).not.toBeInstanceOf(StoreUnavailableError)
      expect((err as Error).message).toMatch(/ExactSpan.*could not read/)
      // the connection is still usable
      await store.put(new Span(2, '1 day', null, '(1,2)', null))
      expect((await store.get(Span, { id: 2 }))?.p).toBe('(1,2)')
    }
  })
})

describe.runIf(stores.has('postgres'))('SqlStore on postgres: values outside a type’s range are refused before anything is sent', () => {
  /** 4714-11-24 00:00 BC (Julian day 0): the earliest timestamp, timestamptz and date PostgreSQL holds. */
  const earliest = Date.UTC(-4713, 10, 24)
  const columns =
    'id integer primary key, tz timestamptz, ts timestamp, d date, f4 real, f8 float8, n52 numeric(5,2), n numeric, vc varchar(3), ch char(3), ' +
    'i2s int2[], i4s int4[], i8s int8[], f4s real[], tzs timestamptz[], tss timestamp[], ds date[]'

  it('each value is refused naming the attribute, the column, the table and the range; nothing is written; values at the bounds come back', async () => {
    const env = await open('postgres')
    await sql`create table ${sql.table(env.table('ranges'))} (${sql.raw(columns)})`.execute(env.db)
    const chain = new ChainedStore([new ProcessMemoryStore({ max: 50 }), env.store])
    await inTimeZone('UTC', async () => {
      const refused: [string, unknown, RegExp][] = [
        ['tz', new Date(-8.64e15), /4714-11-24/],
        ['tz', new Date(earliest - 1), /4714-11-24/],
        ['ts', new Date(-8.64e15), /4714-11-24/],
        ['ts', new Date(earliest - 1), /4714-11-24/],
        ['d', new Date(-8.64e15), /4714-11-24/],
        ['d', new Date(earliest - 1), /4714-11-24/],
        ['f4', 5e-324, /3\.4028235e\+?38/],
        ['f4', 1e-46, /1\.4e-45/],
        ['f4', 1e39, /3\.4028235e\+?38/],
        ['f4', -3.5e38, /3\.4028235e\+?38/],
        ['n52', 1000, /numeric\(5,2\)/],
        ['n52', -1234.5, /numeric\(5,2\)/],
        ['n52', 999.995, /numeric\(5,2\)/],
        ['vc', 'abcd', /3 characters/],
        ['vc', 'ab😀é ', /3 characters/],
        ['ch', 'abcd', /3 characters/],
        ['i2s', [1, 40000], /element \[1\].*-32768 to 32767/],
        ['i4s', [[2 ** 31]], /element \[0\]\[0\].*-2147483648 to 2147483647/],
        ['i8s', [2n ** 63n], /element \[0\].*64-bit/],
        ['f4s', [1, 1e39], /element \[1\].*3\.4028235e\+?38/],
        ['tzs', [new Date(0), new Date(-8.64e15)], /element \[1\].*4714-11-24/],
        ['tss', [new Date(-8.64e15)], /element \[0\].*4714-11-24/],
        ['ds', [[new Date(-8.64e15)]], /element \[0\]\[0\].*4714-11-24/],
      ]
      let id = 0
      for (const [attribute, value, range] of refused) {
        const label = `${attribute} = ${String(value)}`
        const obj = new Ranged(++id, { [attribute]: value })
        for (const store of [env.store, chain]) {
          const err = await store.put(obj).catch((e: unknown) => e)
          expect(err, label).toBeInstanceOf(SerializationError)
          const message = (err as Error).message
          expect(message, label).toMatch(
            new RegExp(`model \`ExactRange\`: attribute \`${attribute}\` holds .* column \`${attribute}\` of table \`[^\`]*ranges\``),
          )
          expect(message, label).toMatch(range)
          expect(message, label).not.toMatch(/database rejected/)
        }
        expect((obj as unknown as Record<string, unknown>)[attribute], label).toBe(value)
        expect(await env.store.get(Ranged, { id }), label).toBeUndefined()
      }
      expect(env.queries.filter((q) => /^insert/i.test(q))).toEqual([])
      const kept: Record<string, unknown> = {
        tz: new Date(earliest),
        ts: new Date(earliest),
        d: new Date(earliest),
        f4: 1e-40,
        f8: 5e-324,
        n52: 999.99,
        n: 1e300,
        vc: 'abc   ',
        ch: 'ab',
        i2s: [32767, -32768],
        i4s: [[2 ** 31 - 1], [-(2 ** 31)]],
        i8s: [2n ** 63n - 1n, -(2n ** 63n)],
        f4s: [3.4e38, 1e-45, Number.NaN, Number.POSITIVE_INFINITY],
        tzs: [new Date(earliest)],
        tss: [new Date(earliest)],
        ds: [new Date(earliest)],
      }
      const obj = new Ranged(100, kept)
      await chain.put(obj)
      const back = (await env.store.get(Ranged, { id: 100 })) as unknown as Record<string, unknown>
      expect(back).toEqual(obj)
      expect((back.tz as Date).getTime()).toBe(earliest)
      expect((back.d as Date).getTime()).toBe(earliest)
      expect(back.vc).toBe('abc')
      expect(back.n52).toBe(999.99)
      expect(await chain.get(Ranged, { id: 100 })).toEqual(back)
    })
    await chain.close()
  })

  it('timestamp and date are checked in the process’s time zone, in which pg sends them', async () => {
    const env = await open('postgres')
    await sql`create table ${sql.table(env.table('ranges'))} (${sql.raw(columns)})`.execute(env.db)
    // the earliest instant seen from a zone west of UTC: its local time is the day before, out of range
    await inTimeZone('America/New_York', async () => {
      for (const attribute of ['ts', 'd']) {
        const err = await env.store.put(new Ranged(1, { [attribute]: new Date(earliest) })).catch((e: unknown) => e)
        expect(err, attribute).toBeInstanceOf(SerializationError)
        expect((err as Error).message, attribute).toMatch(/local time/)
      }
      await env.store.put(new Ranged(2, { tz: new Date(earliest) }))
      expect(((await env.store.get(Ranged, { id: 2 })) as unknown as { tz: Date }).tz.getTime()).toBe(earliest)
    })
  })
})
