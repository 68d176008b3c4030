/**
 * The database triggers send each primary-key value so that the watcher evicts exactly the key SqlStore
 * cached the row under, for every column type SqlStore reads as a key value. A property over generated
 * values of each type: a row is cached through an alternate key (so the cached primary key is what
 * SqlStore read, not what the test expects), another client updates it, and the watcher must evict
 * that very key. The writing session prints floats rounded (`extra_float_digits = 0`).
 */
import fc from 'fast-check'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { ChainedStore, ProcessMemoryStore } from '../../src/index.js'
import { type DatabaseWatcher, installInvalidationTriggers, watchDatabase } from '../../src/invalidation/index.js'
import { SqlStore } from '../../src/stores/sql/index.js'
import { selectedStores } from '../harness/servers.js'
import { freshDatabase, poll } from './helpers.js'

/** A row of one of the key tables: `k` is the primary key, `n` an alternate one. */
class KeyRow {
  constructor(
    public k: string | number | bigint | boolean,
    public n: number,
    public v: number,
  ) {}
}

/** One model per key type, over table `key_<name>`. */
function modelOf(name: string) {
  return class extends KeyRow {
    static readonly stockpyleName = `KeyType_${name}`
    static readonly stockpyleKeys = ['k', 'n'] as const
  }
}

type KeyModel = ReturnType<typeof modelOf>

interface KeyType {
  /** The column type. */
  readonly type: string
  /** Values, as SQL literals. */
  readonly values: fc.Arbitrary<string>
  /** The key from the literal `$1` (default `$1::<type>`). */
  readonly expr?: string
}

const text = (maxLength: number) => fc.string({ unit: 'grapheme', maxLength }).filter((s) => !s.includes('\0'))

const TYPES: Record<string, KeyType> = {
  int2: { type: 'int2', values: fc.integer({ min: -32768, max: 32767 }).map(String) },
  int4_domain: { type: 'positive_int', values: fc.integer({ min: 1, max: 2 ** 31 - 1 }).map(String) },
  int8: { type: 'int8', values: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String) },
  numeric: {
    type: 'numeric',
    values: fc.oneof(
      fc.tuple(fc.integer(), fc.nat(9999)).map(([i, f]) => `${i}.${String(f).padStart(4, '0')}`),
      fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String),
    ),
  },
  float8: { type: 'float8', values: fc.double({ noNaN: true, noDefaultInfinity: true }).map(String) },
  bool: { type: 'bool', values: fc.constantFrom('true', 'false', 't', 'no') },
  text: { type: 'text', values: text(30) },
  varchar: { type: 'varchar(12)', values: text(12) },
  bpchar: { type: 'char(8)', values: text(8) },
  name: { type: 'name', values: fc.string({ maxLength: 20 }) },
  enum: { type: 'mood', values: fc.constantFrom('sad', 'ok', 'happy') },
  uuid: { type: 'uuid', values: fc.tuple(fc.uuid(), fc.boolean()).map(([u, upper]) => (upper ? u.toUpperCase() : u)) },
}

const MODELS = Object.fromEntries(Object.keys(TYPES).map((name) => [name, modelOf(name)])) as Record<string, KeyModel>

describe.runIf(selectedStores().has('postgres'))(
  'database-driven invalidation: primary keys of every type SqlStore reads as key values',
  () => {
    let url = ''
    let sql: SqlStore
    let writer: pg.Client
    let memory: ProcessMemoryStore
    let chain: ChainedStore
    let watcher: DatabaseWatcher
    let n = 0
    const log: { model: string; lookups: readonly Record<string, unknown>[] }[] = []
    const errors: unknown[] = []

    beforeAll(async () => {
      url = await freshDatabase(inject('postgresUrl'), 'stockpyle_key_types')
      writer = new pg.Client({ connectionString: url, application_name: 'writer' })
      await writer.connect()
      await writer.query('create domain positive_int as int4 check (value > 0)')
      await writer.query(`create type mood as enum ('sad', 'ok', 'happy')`)
      for (const [name, { type }] of Object.entries(TYPES)) {
        await writer.query(`create table key_${name} (k ${type} primary key, n integer not null unique, v integer not null default 0)`)
      }
      // A session that prints floats rounded to 15 digits, as PostgreSQL before 12 did by default (real keys are refused: E_SCHEMA).
      await writer.query('set extra_float_digits = 0')
      const tables = Object.fromEntries(Object.keys(TYPES).map((name) => [`KeyType_${name}`, `key_${name}`]))
      sql = new SqlStore({ url }, { tables })
      memory = new ProcessMemoryStore({ tombstoneLifetime: 0.01 })
      chain = new ChainedStore([memory, sql])
      await installInvalidationTriggers(sql, Object.values(MODELS))
      watcher = watchDatabase(chain, {
        url,
        models: Object.values(MODELS),
        onError: (err) => errors.push(err),
        onInvalidate: (model, lookups) =>
          log.push({ model: (model as KeyModel).stockpyleName, lookups: lookups as readonly Record<string, unknown>[] }),
      })
      await watcher.ready()
    })

    afterAll(async () => {
      await watcher?.close()
      await chain?.close()
      await writer?.end()
    })

    /**
     * Writes a row with key `literal`, caches it through its alternate key, updates it with plain SQL and
     * checks that the watcher evicted the primary key SqlStore read.
     */
    async function roundTrip(name: string, literal: string): Promise<void> {
      const model = MODELS[name] as KeyModel
      const { expr = `$1::${TYPES[name]?.type}` } = TYPES[name] as KeyType
      const row = ++n
      let mark = log.length
      await writer.query(
        `insert into key_${name} as t (k, n) values (${expr}, $2) on conflict (k) do update set n = excluded.n, v = t.v + 1`,
        [literal, row],
      )
      await poll(() => log.length > mark, 'the eviction of the insert')
      let cached: KeyRow | undefined
      await poll(async () => {
        cached = await chain.get(model, { n: row })
        return (await memory.get(model, { n: row })) !== undefined
      }, `row ${row} (${literal}) to be cached`)
      const key = { k: (cached as KeyRow).k }
      expect(await memory.get(model, key)).toBeDefined()
      mark = log.length
      await writer.query(`update key_${name} set v = v + 1 where n = $1`, [row])
      await poll(() => log.length > mark, 'the eviction of the update')
      expect({ literal, evicted: log.slice(mark).flatMap((e) => e.lookups) }).toEqual({ literal, evicted: [key] })
      expect(await memory.get(model, key)).toBeUndefined()
      expect(await memory.get(model, { n: row })).toBeUndefined()
    }

    for (const [name, { type, values }] of Object.entries(TYPES)) {
      it(`${type}: the watcher evicts the key SqlStore cached the row under`, async () => {
        await fc.assert(
          fc.asyncProperty(values, (literal) => roundTrip(name, literal)),
          { numRuns: 15 },
        )
        expect(errors).toEqual([])
      })
    }

    it('a key column of a type SqlStore does not read as a key value (timestamptz, bytea, jsonb) is refused at install, naming it', async () => {
      for (const type of ['timestamptz', 'bytea', 'jsonb']) {
        await writer.query(`create table key_refused_${type} (k ${type} primary key, n integer not null unique, v integer)`)
        const store = new SqlStore({ url }, { tables: { [`KeyRefused_${type}`]: `key_refused_${type}` } })
        const model = class extends KeyRow {
          static readonly stockpyleName = `KeyRefused_${type}`
          static readonly stockpyleKeys = ['k', 'n'] as const
        }
        await expect(installInvalidationTriggers(store, [model])).rejects.toThrow(`is ${type}, which cannot hold key values`)
        await store.close()
      }
    })

    it('a key column of a type SqlStore does not map (inet, cidr, macaddr, oid, money, time, interval) is refused at install: different texts are one value', async () => {
      for (const type of ['inet', 'cidr', 'macaddr', 'macaddr8', 'oid', 'money', 'time', 'interval']) {
        await writer.query(`create table key_unmapped_${type} (k ${type} primary key, n integer not null unique, v integer)`)
        const store = new SqlStore({ url }, { tables: { [`KeyUnmapped_${type}`]: `key_unmapped_${type}` } })
        const model = class extends KeyRow {
          static readonly stockpyleName = `KeyUnmapped_${type}`
          static readonly stockpyleKeys = ['k', 'n'] as const
        }
        await expect(installInvalidationTriggers(store, [model])).rejects.toThrow(/, a type SqlStore does not map/)
        await store.close()
      }
    })
  },
)
