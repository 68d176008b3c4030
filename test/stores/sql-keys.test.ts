import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import { ChainedStore, InvalidKeyError, isStockpyleError, ProcessMemoryStore, SerializationError } from '../../src/index.js'
import { selectedStores } from '../harness/servers.js'
import { type SqlEnv, sqlTestEnv } from './sql-test-env.js'

// Keys are exact identities in every cache layer: a key column whose equality is not identity is
// refused at introspection, and key values the database would store or compare as another text are
// refused before anything is written. Unique indexes back a key only when the upsert can use them.

class Word {
  static readonly stockpyleName = 'KeysWord'
  static readonly stockpyleKeys = ['k'] as const
  constructor(
    public k: string,
    public v: string,
  ) {}
}

class Tagged {
  static readonly stockpyleName = 'KeysTagged'
  static readonly stockpyleKeys = ['id', 'tag'] as const
  constructor(
    public id: number,
    public tag: string,
  ) {}
}

class Member {
  static readonly stockpyleName = 'KeysMember'
  static readonly stockpyleKeys = ['id', 'email'] as const
  constructor(
    public id: number,
    public email: string,
    public name: string,
  ) {}
}

class Pair {
  static readonly stockpyleName = 'KeysPair'
  static readonly stockpyleKeys = [['a', 'b']] as const
  constructor(
    public a: number,
    public b: number,
    public v: string,
  ) {}
}

class Ticket {
  static readonly stockpyleName = 'KeysTicket'
  static readonly stockpyleKeys = ['id', 'st'] as const
  constructor(
    public id: number,
    public st: string,
    public v: string,
  ) {}
}

const stores = selectedStores()
const { dialects, open } = sqlTestEnv('stockpyle_sql_keys_tests', 'Keys')

async function create(env: SqlEnv, table: string, definition: string): Promise<void> {
  await sql`create table ${sql.table(env.table(table))} (${sql.raw(definition)})`.execute(env.db)
}

async function rows(env: SqlEnv, table: string): Promise<unknown[]> {
  return (await sql`select * from ${sql.table(env.table(table))}`.execute(env.db)).rows
}

/** The error `promise` rejects with. */
async function failure(promise: Promise<unknown>): Promise<Error> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(Error)
  return err as Error
}

async function expectSchemaError(promise: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  const err = await failure(promise)
  expect(isStockpyleError(err, 'E_SCHEMA'), err.message).toBe(true)
  for (const pattern of patterns) expect(err.message).toMatch(pattern)
}

describe.runIf(stores.has('postgres'))('SqlStore on postgres: key columns whose equality is not identity', () => {
  it('a citext key column is E_SCHEMA at first use, naming table, column and what to do; nothing is written', async (ctx) => {
    const env = await open('postgres')
    const available = await sql`create extension if not exists citext`.execute(env.db).then(
      () => true,
      () => false,
    )
    if (!available) ctx.skip()
    await create(env, 'words', 'k citext primary key, v text')
    const chain = new ChainedStore([new ProcessMemoryStore({ max: 10 }), env.store])
    await expectSchemaError(chain.put(new Word('Ab', 'x')), /table `.*words`/, /column `k`/, /citext/, /declare it text/, /lower-case/)
    await expectSchemaError(env.store.get(Word, { k: 'Ab' }), /column `k`/)
    expect(await rows(env, 'words')).toEqual([])
    // an alternate key too
    await create(env, 'taggeds', 'id int primary key, tag citext not null unique')
    await expectSchemaError(env.store.get(Tagged, { id: 1 }), /column `tag`/, /citext/)
    await chain.close()
  })

  it('a non-deterministic collation on a key column or on the unique index backing it is E_SCHEMA', async (ctx) => {
    const env = await open('postgres')
    const collation = env.table('nocase')
    const available =
      await sql`create collation ${sql.table(collation)} (provider = icu, locale = 'und-u-ks-level2', deterministic = false)`
        .execute(env.db)
        .then(
          () => true,
          () => false,
        )
    if (!available) ctx.skip()
    await create(
      env,
      'words',
      `k text collate ${collation
        .split('.')
        .map((p) => `"${p}"`)
        .join('.')} primary key, v text`,
    )
    await expectSchemaError(env.store.put(new Word('Ab', 'x')), /column `k`/, /collation/, /nocase/)
    expect(await rows(env, 'words')).toEqual([])
    // a text column whose unique index compares case-insensitively: ON CONFLICT would update the row of 'Ab' for 'aB'
    await create(env, 'taggeds', 'id int primary key, tag text not null')
    await sql`create unique index taggeds_tag_key on ${sql.table(env.table('taggeds'))} (tag collate ${sql.table(collation)})`.execute(
      env.db,
    )
    await expectSchemaError(env.newStore().get(Tagged, { id: 1 }), /column `tag`/, /taggeds_tag_key/, /collation/)
  })

  it('a bpchar key column without a length (trailing spaces ignored in comparisons) is E_SCHEMA', async () => {
    const env = await open('postgres')
    await create(env, 'words', 'k bpchar primary key, v text')
    await expectSchemaError(env.store.put(new Word('ab', 'x')), /column `k`/, /bpchar/, /trailing spaces/)
    expect(await rows(env, 'words')).toEqual([])
  })

  it('a key column of a type SqlStore does not map (interval, inet, cidr, macaddr, money, time, oid, ranges, composite types, domains over them) is E_SCHEMA at first use; nothing is written', async () => {
    const env = await open('postgres')
    const composite = sql.table(env.table('pair_t'))
    await sql`create type ${composite} as (a int, b text)`.execute(env.db)
    const over = sql.table(env.table('ip_address'))
    await sql`create domain ${over} as inet`.execute(env.db)
    const q = (name: string) =>
      env
        .table(name)
        .split('.')
        .map((p) => `"${p}"`)
        .join('.')
    const cases: [string, string, string][] = [
      ['interval', '1 day', '24 hours'],
      ['inet', '10.0.0.1', '10.0.0.1/32'],
      ['cidr', '10.0.0.0/8', '10/8'],
      ['macaddr', '08:00:2b:01:02:03', '08-00-2B-01-02-03'],
      ['money', '1.5', '1.50'],
      ['time', '1:2:3', '01:02:03'],
      ['oid', '4294967295', '-1'],
      ['int4range', '[1,3)', '[1,2]'],
      [q('pair_t'), '(1,x)', '( 1 ,x)'],
      [q('ip_address'), '10.0.0.1', '10.0.0.1/32'],
    ]
    for (const [type, a, b] of cases) {
      await sql`drop table if exists ${sql.table(env.table('words'))}`.execute(env.db)
      await create(env, 'words', `k ${type} primary key, v text`)
      const store = env.newStore()
      const chain = new ChainedStore([new ProcessMemoryStore({ max: 10 }), store])
      await expectSchemaError(chain.put(new Word(a, 'alice')), /column `k`/, /a type SqlStore does not map/, /declare the key column text/)
      await expectSchemaError(chain.put(new Word(b, 'bob')), /column `k`/)
      await expectSchemaError(store.get(Word, { k: a }), /column `k`/)
      expect(await rows(env, 'words'), type).toEqual([])
    }
  })

  it('uuid keys: only the canonical form (lower case, dashed) is a key; others are InvalidKeyError before anything is written', async () => {
    const env = await open('postgres')
    await create(env, 'words', 'k uuid primary key, v text')
    const chain = new ChainedStore([new ProcessMemoryStore({ max: 10 }), env.store])
    const canonical = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'
    for (const k of [canonical.toUpperCase(), canonical.replaceAll('-', ''), `{${canonical}}`, 'not a uuid']) {
      const err = await failure(chain.put(new Word(k, 'x')))
      expect(err, k).toBeInstanceOf(InvalidKeyError)
      expect(err.message).toMatch(/column `k`/)
      expect(err.message).toMatch(/uuid/)
      await expect(env.store.get(Word, { k }), k).rejects.toThrow(InvalidKeyError)
      await expect(chain.get(Word, { k }), k).rejects.toThrow(InvalidKeyError)
      await expect(env.store.delete(Word, { k }), k).rejects.toThrow(InvalidKeyError)
      await expect(env.store.delete(new Word(k, 'x')), k).rejects.toThrow(InvalidKeyError)
    }
    await expect(env.store.batchPut([new Word(canonical, 'ok'), new Word(canonical.toUpperCase(), 'y')])).rejects.toThrow(InvalidKeyError)
    expect(await rows(env, 'words')).toEqual([])
    const w = new Word(canonical, 'x')
    await chain.put(w)
    expect(w.k).toBe(canonical)
    expect(await env.store.get(Word, { k: canonical })).toEqual(new Word(canonical, 'x'))
    expect(await chain.get(Word, { k: canonical })).toEqual(new Word(canonical, 'x'))
    expect(await env.store.batchDeleteByKey(Word, [{ k: canonical }])).toEqual([new Word(canonical, 'x')])
    expect(await rows(env, 'words')).toEqual([])
    await chain.close()
  })

  it('char(n) keys: only values of exactly n characters are keys (shorter ones would come back padded)', async () => {
    const env = await open('postgres')
    await create(env, 'words', 'k char(5) primary key, v text')
    const chain = new ChainedStore([new ProcessMemoryStore({ max: 10 }), env.store])
    for (const k of ['ab', 'abcd', 'abcdef', 'abcde  ', '']) {
      const err = await failure(chain.put(new Word(k, 'x')))
      expect(err, JSON.stringify(k)).toBeInstanceOf(InvalidKeyError)
      expect(err.message).toMatch(/column `k`/)
      expect(err.message).toMatch(/character\(5\)|5 characters/)
      await expect(env.store.get(Word, { k }), k).rejects.toThrow(InvalidKeyError)
      await expect(env.store.delete(Word, { k }), k).rejects.toThrow(InvalidKeyError)
    }
    expect(await rows(env, 'words')).toEqual([])
    for (const k of ['ab   ', 'abcde', 'äbc😀é']) {
      const w = new Word(k, 'x')
      await chain.put(w)
      expect(w.k).toBe(k)
      expect(await env.store.get(Word, { k }), k).toEqual(new Word(k, 'x'))
      expect(await chain.get(Word, { k }), k).toEqual(new Word(k, 'x'))
      await chain.put(new Word(k, 'y'))
      expect((await chain.get(Word, { k }))?.v, k).toBe('y')
      expect((await env.store.batchDeleteByKey(Word, [{ k }]))[0]?.v, k).toBe('y')
    }
    expect(await rows(env, 'words')).toEqual([])
    await chain.close()
  })
})

describe.runIf(stores.has('postgres'))('SqlStore on postgres: a key column that is a domain over an enum', () => {
  it('reads, deletes and backfills by it (lookups are cast to the base type: PostgreSQL has no = for arrays of such a domain)', async () => {
    const env = await open('postgres')
    const mood = env.table('mood')
    const dmood = env.table('dmood')
    await sql`create type ${sql.table(mood)} as enum ('happy', 'sad')`.execute(env.db)
    await sql`create domain ${sql.table(dmood)} as ${sql.table(mood)}`.execute(env.db)
    await create(env, 'words', `k ${dmood} primary key, v text`)
    const chain = new ChainedStore([new ProcessMemoryStore({ max: 10 }), env.store])
    await chain.put(new Word('happy', 'x'))
    expect(await env.store.get(Word, { k: 'happy' })).toEqual(new Word('happy', 'x'))
    expect(await env.store.batchGet(Word, [{ k: 'happy' }, { k: 'sad' }])).toEqual([new Word('happy', 'x'), undefined])
    expect(await chain.get(Word, { k: 'sad' })).toBeUndefined()
    expect((await env.store.batchDeleteByKey(Word, [{ k: 'happy' }]))[0]).toEqual(new Word('happy', 'x'))
    expect(await rows(env, 'words')).toEqual([])
    await chain.close()
  })
})

describe.runIf(stores.has('postgres'))('SqlStore on postgres: enum key columns and strings that are not labels', () => {
  /** Type `status` ('open', 'closed'), a domain over it, and table `tickets` (id, st unique, v) with `st` of `type` ('enum' or 'domain'). */
  async function tickets(env: SqlEnv, type: 'enum' | 'domain'): Promise<string> {
    const status = env.table('status')
    await sql`create type ${sql.table(status)} as enum ('open', 'closed')`.execute(env.db)
    await sql`create domain ${sql.table(env.table('dstatus'))} as ${sql.table(status)}`.execute(env.db)
    await create(env, 'tickets', `id int4 primary key, st ${env.table(type === 'enum' ? 'status' : 'dstatus')} not null unique, v text`)
    return status
  }

  for (const type of ['enum', 'domain'] as const) {
    it(`get, batchGet, chain reads and deletes by a string that is not a label (${type}) are misses and no-ops, labels still hit`, async () => {
      const env = await open('postgres')
      await tickets(env, type)
      const chain = new ChainedStore([new ProcessMemoryStore({ max: 10 }), env.store])
      await chain.put(new Ticket(1, 'open', 'x'))
      const one = new Ticket(1, 'open', 'x')
      for (const st of ['Open', 'pending', 'open ', '']) {
        expect(await env.store.get(Ticket, { st }), JSON.stringify(st)).toBeUndefined()
        expect(await chain.get(Ticket, { st }), JSON.stringify(st)).toBeUndefined()
      }
      expect(await env.store.batchGet(Ticket, [{ st: 'open' }, { st: 'pending' }, { st: 'closed' }])).toEqual([one, undefined, undefined])
      expect(await chain.batchGet(Ticket, [{ id: 1 }, { st: 'pending' }])).toEqual([one, undefined])
      await env.store.delete(Ticket, { st: 'pending' })
      await chain.delete(Ticket, { st: 'Open' })
      expect(await env.store.batchDeleteByKey(Ticket, [{ st: 'pending' }, { st: 'closed' }])).toEqual([undefined, undefined])
      expect(await rows(env, 'tickets')).toEqual([{ id: 1, st: 'open', v: 'x' }])
      expect(await chain.get(Ticket, { st: 'open' })).toEqual(one)
      expect((await env.store.batchDeleteByKey(Ticket, [{ st: 'pending' }, { st: 'open' }]))[1]).toEqual(one)
      expect(await rows(env, 'tickets')).toEqual([])
      await chain.close()
    })
  }

  it('a put of a string that is not a label is SerializationError naming attribute, column, table and labels, before anything is sent', async () => {
    const env = await open('postgres')
    await tickets(env, 'domain')
    await env.store.put(new Ticket(1, 'open', 'x'))
    for (const st of ['pending', 'Open']) {
      const sent = env.queries.length
      const err = await failure(env.store.batchPut([new Ticket(2, 'closed', 'y'), new Ticket(3, st, 'z')]))
      expect(err, st).toBeInstanceOf(SerializationError)
      for (const part of ['attribute `st`', 'column `st`', 'table `', 'tickets`', `"${st}"`, "'open', 'closed'"]) {
        expect(err.message).toContain(part)
      }
      expect(err.message).not.toMatch(/rejected/)
      expect(env.queries.slice(sent).filter((q) => /insert/i.test(q))).toEqual([])
    }
    expect(await rows(env, 'tickets')).toEqual([{ id: 1, st: 'open', v: 'x' }])
  })

  it('a label added with ALTER TYPE … ADD VALUE after the store read the type is found, put and deleted by without refreshSchema()', async () => {
    const env = await open('postgres')
    const status = await tickets(env, 'enum')
    const chain = new ChainedStore([new ProcessMemoryStore({ max: 10 }), env.store])
    await chain.put(new Ticket(1, 'open', 'x'))
    expect(await chain.get(Ticket, { st: 'pending' })).toBeUndefined()
    await sql`alter type ${sql.table(status)} add value 'pending'`.execute(env.db)
    await sql`insert into ${sql.table(env.table('tickets'))} values (2, 'pending', 'y')`.execute(env.db)
    expect(await chain.get(Ticket, { st: 'pending' })).toEqual(new Ticket(2, 'pending', 'y'))
    await sql`alter type ${sql.table(status)} add value 'held'`.execute(env.db)
    await chain.put(new Ticket(3, 'held', 'z'))
    expect(await env.store.get(Ticket, { st: 'held' })).toEqual(new Ticket(3, 'held', 'z'))
    await sql`alter type ${sql.table(status)} add value 'gone'`.execute(env.db)
    await sql`insert into ${sql.table(env.table('tickets'))} values (4, 'gone', 'w')`.execute(env.db)
    expect(await env.store.batchDeleteByKey(Ticket, [{ st: 'gone' }, { st: 'nope' }])).toEqual([new Ticket(4, 'gone', 'w'), undefined])
    expect(await rows(env, 'tickets')).toHaveLength(3)
    // in a transaction: the labels are read on its connection, and a miss leaves it usable
    await sql`alter type ${sql.table(status)} add value 'late'`.execute(env.db)
    await env.store.transaction(async (tx) => {
      expect(await tx.batchGet(Ticket, [{ st: 'nope' }, { st: 'late' }, { st: 'held' }])).toEqual([
        undefined,
        undefined,
        new Ticket(3, 'held', 'z'),
      ])
      await tx.put(new Ticket(5, 'late', 'v'))
      await tx.delete(Ticket, { st: 'nope' })
    })
    expect(await env.store.get(Ticket, { st: 'late' })).toEqual(new Ticket(5, 'late', 'v'))
    await chain.close()
  })

  it('an enum primary key: delete of an object whose key is not a label is a no-op; one added later is deleted', async () => {
    const env = await open('postgres')
    const status = env.table('status')
    await sql`create type ${sql.table(status)} as enum ('open', 'closed')`.execute(env.db)
    await create(env, 'words', `k ${status} primary key, v text`)
    await env.store.put(new Word('open', 'x'))
    await env.store.delete(new Word('pending', 'y'))
    await sql`alter type ${sql.table(status)} add value 'pending'`.execute(env.db)
    await sql`insert into ${sql.table(env.table('words'))} values ('pending', 'y')`.execute(env.db)
    await env.store.batchDelete([new Word('pending', 'y'), new Word('Open', 'x')])
    expect(await rows(env, 'words')).toEqual([{ k: 'open', v: 'x' }])
  })

  it('a label added inside a transaction that rolls back is no label afterwards: misses, no-ops and a refused put, as for any string', async () => {
    const env = await open('postgres')
    const status = await tickets(env, 'enum')
    const one = new Ticket(1, 'open', 'x')
    await env.store.put(one)
    const inside = await failure(
      env.store.transaction(async (tx) => {
        await sql`alter type ${sql.table(status)} add value 'held'`.execute(tx.kysely())
        await tx.get(Ticket, { st: 'held' })
      }),
    )
    // PostgreSQL refuses a label before the transaction that added it commits (55P04)
    expect(inside).toBeInstanceOf(SerializationError)
    expect(inside.message).toMatch(/added in this transaction.*commit/)
    expect((inside.cause as { code?: string }).code).toBe('55P04')
    const sent = env.queries.length
    expect(await env.store.get(Ticket, { st: 'held' })).toBeUndefined()
    expect(await env.store.batchGet(Ticket, [{ st: 'open' }, { st: 'held' }])).toEqual([one, undefined])
    await env.store.delete(Ticket, { st: 'held' })
    expect(await env.store.batchDeleteByKey(Ticket, [{ st: 'held' }])).toEqual([undefined])
    const put = await failure(env.store.put(new Ticket(2, 'held', 'y')))
    expect(put).toBeInstanceOf(SerializationError)
    expect(put.message).toContain("whose labels are 'open', 'closed' (")
    expect(env.queries.slice(sent).filter((q) => !/pg_catalog/.test(q))).toEqual([expect.stringMatching(/^select/)])
    expect(await rows(env, 'tickets')).toEqual([{ id: 1, st: 'open', v: 'x' }])
  })

  it('a put of a non-key enum attribute whose label was renamed since the store read it is SerializationError naming attribute, column, table and the labels now (read again once), also in a transaction, which goes on', async () => {
    const env = await open('postgres')
    const status = env.table('status')
    await sql`create type ${sql.table(status)} as enum ('open', 'closed')`.execute(env.db)
    await create(env, 'words', `k text primary key, v ${status}`)
    await env.store.put(new Word('a', 'closed'))
    await sql`alter type ${sql.table(status)} rename value 'closed' to 'done'`.execute(env.db)
    const err = await failure(env.store.put(new Word('b', 'closed')))
    expect(err).toBeInstanceOf(SerializationError)
    for (const part of ['attribute `v`', 'column `v`', 'words`', '"closed"', "whose labels are 'open', 'done' ("])
      expect(err.message).toContain(part)
    expect(err.message).not.toMatch(/rejected/)
    await env.store.put(new Word('b', 'done'))
    // inside a transaction: its put runs in a savepoint, so the labels are read on its connection and it goes on
    await sql`alter type ${sql.table(status)} rename value 'done' to 'shut'`.execute(env.db)
    await env.store.transaction(async (tx) => {
      const inside = await failure(tx.put(new Word('c', 'done')))
      expect(inside).toBeInstanceOf(SerializationError)
      expect(inside.message).toContain('attribute `v` holds `"done"` but column `v`')
      expect(inside.message).toContain("whose labels are 'open', 'shut' (")
      await tx.put(new Word('c', 'shut'))
    })
    expect(await rows(env, 'words')).toEqual([
      { k: 'a', v: 'shut' },
      { k: 'b', v: 'shut' },
      { k: 'c', v: 'shut' },
    ])
  })

  it('a lookup by a label the store knows that the database rejects (renamed since) is a miss outside a transaction; inside one, a read is refused and a delete is a no-op', async () => {
    const env = await open('postgres')
    const status = await tickets(env, 'enum')
    const one = new Ticket(1, 'open', 'x')
    await env.store.put(one)
    await env.store.put(new Ticket(2, 'closed', 'y'))
    await sql`alter type ${sql.table(status)} rename value 'closed' to 'done'`.execute(env.db)
    expect(await env.store.get(Ticket, { st: 'closed' })).toBeUndefined()
    expect(await env.store.batchGet(Ticket, [{ st: 'closed' }, { st: 'open' }, { st: 'done' }])).toEqual([
      undefined,
      one,
      new Ticket(2, 'done', 'y'),
    ])
    await sql`alter type ${sql.table(status)} rename value 'done' to 'shut'`.execute(env.db)
    expect(await env.store.batchDeleteByKey(Ticket, [{ st: 'done' }, { st: 'open' }])).toEqual([undefined, one])
    await sql`alter type ${sql.table(status)} rename value 'shut' to 'ended'`.execute(env.db)
    // an enum primary key: delete of an object
    await create(env, 'words', `k ${status} primary key, v text`)
    await env.store.put(new Word('ended', 'w'))
    await sql`alter type ${sql.table(status)} rename value 'ended' to 'over'`.execute(env.db)
    await env.store.batchDelete([new Word('ended', 'w'), new Word('open', 'w')])
    expect(await rows(env, 'words')).toEqual([{ k: 'over', v: 'w' }])
    expect(await rows(env, 'tickets')).toEqual([{ id: 2, st: 'over', v: 'y' }])
    await env.store.transaction(async (tx) => {
      // a delete runs in a savepoint: the labels are read again on the transaction's connection
      expect(await tx.batchDeleteByKey(Ticket, [{ st: 'ended' }])).toEqual([undefined])
      expect(await tx.get(Ticket, { st: 'over' })).toEqual(new Ticket(2, 'over', 'y'))
    })
    // known from a read outside a transaction, then renamed: inside one, the read aborts it
    expect(await env.store.get(Ticket, { st: 'over' })).toEqual(new Ticket(2, 'over', 'y'))
    await sql`alter type ${sql.table(status)} rename value 'over' to 'past'`.execute(env.db)
    const err = await failure(env.store.transaction((tx) => tx.get(Ticket, { st: 'over' })))
    expect(err).toBeInstanceOf(SerializationError)
    expect(err.message).toMatch(/key value/)
    expect(err.message).not.toMatch(/holds a value/)
    expect(err.message).toMatch(/refreshSchema\(\)/)
    expect(await env.store.get(Ticket, { st: 'over' })).toBeUndefined()
    expect(await env.store.get(Ticket, { st: 'past' })).toEqual(new Ticket(2, 'past', 'y'))
  })
})

describe.runIf(stores.has('postgres'))('SqlStore on postgres: key columns that round or cut values', () => {
  it('a real (single precision) key column is E_SCHEMA: it rounds many numbers to one', async () => {
    const env = await open('postgres')
    await create(env, 'words', 'k real primary key, v text')
    await expectSchemaError(env.store.put(new Word(0.1 as never, 'x')), /column `k`/, /real/)
    expect(await rows(env, 'words')).toEqual([])
  })

  it('numeric(p,s) keys: a number with more than s decimals is InvalidKeyError before anything is written', async () => {
    const env = await open('postgres')
    await create(env, 'words', 'k numeric(8,2) primary key, v text')
    const chain = new ChainedStore([new ProcessMemoryStore({ max: 10 }), env.store])
    for (const k of [1.234, 0.001, 12.345]) {
      const err = await failure(chain.put(new Word(k as never, 'x')))
      expect(err, String(k)).toBeInstanceOf(InvalidKeyError)
      expect(err.message).toMatch(/numeric\(8,2\)/)
      await expect(env.store.get(Word, { k: k as never })).rejects.toThrow(InvalidKeyError)
      await expect(env.store.delete(Word, { k: k as never })).rejects.toThrow(InvalidKeyError)
    }
    expect(await rows(env, 'words')).toEqual([])
    for (const k of [1.23, 5, -0.5, 123456.78]) {
      await chain.put(new Word(k as never, 'x'))
      expect(await env.store.get(Word, { k: k as never }), String(k)).toEqual(new Word(k as never, 'x'))
    }
    await chain.close()
  })

  it('numeric(p,s) keys: a lookup or delete by a number the type cannot hold (too many digits before the point) is a miss, not a database error', async () => {
    const env = await open('postgres')
    await create(env, 'words', 'k numeric(8,2) primary key, v text')
    const chain = new ChainedStore([new ProcessMemoryStore({ max: 10 }), env.store])
    await chain.put(new Word(999999.99 as never, 'x'))
    for (const k of [1e10, 123456789, -1e6, 1e300]) {
      expect(await env.store.get(Word, { k: k as never }), String(k)).toBeUndefined()
      expect(await chain.get(Word, { k: k as never }), String(k)).toBeUndefined()
      await env.store.delete(Word, { k: k as never })
      await env.store.delete(new Word(k as never, 'x'))
    }
    expect(await env.store.batchGet(Word, [{ k: 999999.99 as never }, { k: 1e10 as never }])).toEqual([
      new Word(999999.99 as never, 'x'),
      undefined,
    ])
    expect(await rows(env, 'words')).toEqual([{ k: '999999.99', v: 'x' }])
    await chain.close()
  })

  it('varchar(n) keys: a string longer than n characters is InvalidKeyError (PostgreSQL would cut trailing spaces silently)', async () => {
    const env = await open('postgres')
    await create(env, 'words', 'k varchar(4) primary key, v text')
    const chain = new ChainedStore([new ProcessMemoryStore({ max: 10 }), env.store])
    for (const k of ['ab    ', 'abcd ', 'abcde']) {
      const err = await failure(chain.put(new Word(k, 'x')))
      expect(err, JSON.stringify(k)).toBeInstanceOf(InvalidKeyError)
      expect(err.message).toMatch(/character varying\(4\)/)
      await expect(env.store.get(Word, { k })).rejects.toThrow(InvalidKeyError)
    }
    expect(await rows(env, 'words')).toEqual([])
    for (const k of ['ab  ', 'a', 'äb😀é']) {
      await chain.put(new Word(k, 'x'))
      expect(await chain.get(Word, { k }), JSON.stringify(k)).toEqual(new Word(k, 'x'))
      expect(await env.store.get(Word, { k }), JSON.stringify(k)).toEqual(new Word(k, 'x'))
    }
    await chain.close()
  })
})

describe.runIf(stores.has('postgres'))('SqlStore on postgres: key columns of domains, negative scales, name', () => {
  /** A new store on table `words`, created again with `k` of `type`. */
  async function wordsOf(env: SqlEnv, type: string) {
    await sql`drop table if exists ${sql.table(env.table('words'))}`.execute(env.db)
    await create(env, 'words', `k ${type} primary key, v text`)
    return env.newStore()
  }

  it('a domain over a domain is checked as its base type (citext, real: E_SCHEMA; uuid, char(n), varchar(n), numeric(p,s): InvalidKeyError)', async (ctx) => {
    const env = await open('postgres')
    const available = await sql`create extension if not exists citext`.execute(env.db).then(
      () => true,
      () => false,
    )
    if (!available) ctx.skip()
    const d = (name: string) => sql.table(env.table(name))
    const q = (name: string) =>
      env
        .table(name)
        .split('.')
        .map((p) => `"${p}"`)
        .join('.')
    for (const [name, base] of [
      ['email', 'citext'],
      ['id', 'uuid'],
      ['code', 'char(5)'],
      ['short', 'varchar(3)'],
      ['price', 'numeric(5,2)'],
      ['ratio', 'real'],
    ] as const) {
      await sql`create domain ${d(`${name}1`)} as ${sql.raw(base)}`.execute(env.db)
      await sql`create domain ${d(`${name}2`)} as ${d(`${name}1`)}`.execute(env.db)
    }
    let s = await wordsOf(env, q('email2'))
    await expectSchemaError(s.put(new Word('Ada@x.org', 'Ada')), /column `k`/, /citext/)
    s = await wordsOf(env, q('ratio2'))
    await expectSchemaError(s.put(new Word(0.1 as never, 'x')), /column `k`/, /real/)
    for (const [type, bad, good] of [
      ['id2', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'],
      ['code2', 'ab', 'ab   '],
      ['short2', 'abc  ', 'abc'],
      ['price2', 1.255, 1.25],
    ] as const) {
      s = await wordsOf(env, q(type))
      const chain = new ChainedStore([new ProcessMemoryStore({ max: 10 }), s])
      await expect(chain.put(new Word(bad as never, 'x')), type).rejects.toThrow(InvalidKeyError)
      await expect(s.get(Word, { k: bad as never }), type).rejects.toThrow(InvalidKeyError)
      expect(await rows(env, 'words')).toEqual([])
      await chain.put(new Word(good as never, 'x'))
      expect(await chain.get(Word, { k: good as never }), type).toEqual(new Word(good as never, 'x'))
      await chain.close()
    }
  })

  it('numeric keys with a negative scale or one above 100: multiples of 10^-s only, and no RangeError', async () => {
    const env = await open('postgres')
    const version = Number((await sql<{ v: string }>`show server_version_num`.execute(env.db)).rows[0]?.v ?? 0)
    let s: Awaited<ReturnType<typeof wordsOf>>
    if (version >= 150000) {
      s = await wordsOf(env, 'numeric(7,-2)')
      for (const k of [150, 1.5, 10, 1e-7]) {
        const err = await failure(s.put(new Word(k as never, 'x')))
        expect(err, String(k)).toBeInstanceOf(InvalidKeyError)
        expect(err.message).toMatch(/numeric\(7,-2\)/)
        expect(err.message).toMatch(/multiple of 100/)
        await expect(s.get(Word, { k: k as never })).rejects.toThrow(InvalidKeyError)
      }
      expect(await rows(env, 'words')).toEqual([])
      for (const k of [100, 0, -200, 12300]) {
        await s.put(new Word(k as never, 'x'))
        expect(await s.get(Word, { k: k as never }), String(k)).toEqual(new Word(k as never, 'x'))
      }
    }
    s = await wordsOf(env, 'numeric(200,120)')
    for (const k of [1.5, 1e-120, 1.25e-100, 3]) {
      await s.put(new Word(k as never, 'x'))
      expect(await s.get(Word, { k: k as never }), String(k)).toEqual(new Word(k as never, 'x'))
    }
    for (const k of [1e-121, 1.5e-120]) await expect(s.put(new Word(k as never, 'x')), String(k)).rejects.toThrow(InvalidKeyError)
    s = await wordsOf(env, 'numeric(30,2)')
    for (const k of [1e21, 1.5e20]) {
      await s.put(new Word(k as never, 'x'))
      expect(await s.get(Word, { k: k as never }), String(k)).toEqual(new Word(k as never, 'x'))
    }
    await expect(s.put(new Word(1e-7 as never, 'x'))).rejects.toThrow(InvalidKeyError)
  })

  it('name keys: a value over 63 bytes is InvalidKeyError (PostgreSQL would cut it to 63 bytes silently)', async () => {
    const env = await open('postgres')
    const s = await wordsOf(env, 'name')
    const chain = new ChainedStore([new ProcessMemoryStore({ max: 10 }), s])
    await chain.put(new Word('x'.repeat(63), 'first'))
    for (const k of ['x'.repeat(70), 'x'.repeat(64), `${'x'.repeat(62)}é`]) {
      const err = await failure(chain.put(new Word(k, 'second')))
      expect(err, k).toBeInstanceOf(InvalidKeyError)
      expect(err.message).toMatch(/63 bytes/)
      await expect(s.get(Word, { k })).rejects.toThrow(InvalidKeyError)
    }
    expect(await rows(env, 'words')).toEqual([{ k: 'x'.repeat(63), v: 'first' }])
    await chain.put(new Word(`${'x'.repeat(61)}é`, 'ok'))
    expect((await chain.get(Word, { k: `${'x'.repeat(61)}é` }))?.v).toBe('ok')
    await chain.close()
  })
})

describe.runIf(stores.has('sqlite'))('SqlStore on sqlite: key columns whose equality is not identity', () => {
  for (const [collation, pattern] of [
    ['nocase', /'a' and 'A'/],
    ['rtrim', /'a' and 'a '/],
  ] as const) {
    it(`a key column with COLLATE ${collation.toUpperCase()} is E_SCHEMA at first use; nothing is written`, async () => {
      const env = await open('sqlite')
      await create(env, 'words', `k text collate ${collation} primary key, v text`)
      const chain = new ChainedStore([new ProcessMemoryStore({ max: 10 }), env.store])
      await expectSchemaError(chain.put(new Word('Ab', 'x')), /table `words`/, /column `k`/, pattern, /collation/)
      expect(await rows(env, 'words')).toEqual([])
      await create(env, 'taggeds', `id integer primary key, tag text collate ${collation} not null unique`)
      await expectSchemaError(env.store.get(Tagged, { tag: 'x' }), /column `tag`/, pattern)
      await chain.close()
    })
  }

  it('a unique index with COLLATE NOCASE on a key column is E_SCHEMA naming the index', async () => {
    const env = await open('sqlite')
    await create(env, 'taggeds', 'id integer primary key, tag text not null')
    await sql`create unique index taggeds_tag_key on taggeds (tag collate nocase)`.execute(env.db)
    await expectSchemaError(env.store.put(new Tagged(1, 'A')), /column `tag`/, /taggeds_tag_key/, /NOCASE/i)
    expect(await rows(env, 'taggeds')).toEqual([])
  })
})

describe.each(dialects)('SqlStore on %s: which unique indexes back a key', (dialect) => {
  it('a partial unique index or one on an expression does not back a key', async () => {
    const env = await open(dialect)
    await create(env, 'members', 'id integer primary key, email text not null, name text')
    const table = sql.table(env.table('members'))
    await sql`create unique index members_email_partial on ${table} (email) where name is not null`.execute(env.db)
    await sql`create unique index members_email_lower on ${table} (lower(email))`.execute(env.db)
    await expectSchemaError(env.store.get(Member, { id: 1 }), /\(email\)/, /CREATE UNIQUE INDEX/)
  })
})

describe.runIf(stores.has('postgres'))('SqlStore on postgres: which unique indexes back a key', () => {
  it('a unique index with INCLUDE columns backs the key of its key columns only', async () => {
    const env = await open('postgres')
    await create(env, 'members', 'id integer primary key, email text not null, name text')
    await sql`create unique index members_email_key on ${sql.table(env.table('members'))} (email) include (name)`.execute(env.db)
    await env.store.put(new Member(1, 'e', 'n'))
    expect(await env.store.get(Member, { email: 'e' })).toEqual(new Member(1, 'e', 'n'))
    // unique (a) include (b) is not a unique index on (a, b): the upsert could not use it
    await create(env, 'pairs', 'a integer not null, b integer not null, v text')
    await sql`create unique index pairs_a on ${sql.table(env.table('pairs'))} (a) include (b)`.execute(env.db)
    await expectSchemaError(env.store.put(new Pair(1, 2, 'x')), /primary key/, /\(a, b\)/)
    expect(await rows(env, 'pairs')).toEqual([])
  })

  it('a deferrable primary key is E_SCHEMA at first use (it cannot be the upsert ON CONFLICT target), even beside an immediate index', async () => {
    const env = await open('postgres')
    await create(env, 'words', 'k text, v text, constraint words_pk primary key (k) deferrable initially deferred')
    await expectSchemaError(env.store.put(new Word('a', 'x')), /words_pk/, /deferrable/i, /ON CONFLICT/)
    await sql`create unique index words_k on ${sql.table(env.table('words'))} (k)`.execute(env.db)
    await expectSchemaError(env.newStore().put(new Word('a', 'x')), /words_pk/, /deferrable/i)
    expect(await rows(env, 'words')).toEqual([])
    // an alternate key is not backed by a deferrable constraint either
    await create(
      env,
      'members',
      'id integer primary key, email text not null, name text, constraint members_email unique (email) deferrable',
    )
    await expectSchemaError(env.store.get(Member, { id: 1 }), /\(email\)/, /members_email/, /deferrable/i)
  })
})
