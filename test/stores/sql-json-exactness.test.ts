import fc from 'fast-check'
import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import { ChainedStore, ProcessMemoryStore, SerializationError } from '../../src/index.js'
import { toTaggedJson } from '../../src/stores/sql/index.js'
import { anyValue } from '../../src/testing/cases/fidelity-properties.js'
import { sqlTestEnv } from './sql-test-env.js'

// JSON columns keep what the cache layers keep, and refuse what they refuse.

class Note {
  static readonly stockpyleName = 'JsonExactNote'
  static readonly stockpyleKeys = ['id'] as const
  constructor(
    public id: number,
    public body: unknown,
  ) {}
}

/** A model whose class computes `label`: an instance with its own `label` must not be read through the getter. */
class Label {
  static readonly stockpyleName = 'JsonExactLabel'
  static readonly stockpyleKeys = ['code'] as const
  declare code: string
  get label(): string {
    return this.code.toUpperCase()
  }
}

/** A model whose class has a setter for `label`. */
class Watched {
  static readonly stockpyleName = 'JsonExactWatched'
  static readonly stockpyleKeys = ['code'] as const
  static setterRuns = 0
  declare code: string
  get label(): string {
    return 'from the getter'
  }
  set label(_value: string) {
    Watched.setterRuns++
  }
}

const { dialects, open } = sqlTestEnv('stockpyle_sql_json_exactness_tests', 'JsonExact')

/** An object nested `n` levels below a root object: `{n: {n: …}}`. */
function deep(n: number): Record<string, unknown> {
  const root: Record<string, unknown> = {}
  let o = root
  for (let i = 0; i < n; i++) {
    const next: Record<string, unknown> = {}
    o.n = next
    o = next
  }
  return root
}

/** A model instance with its own data property `label` (shadowing the class's accessor). */
function withOwnLabel<T extends object>(prototype: T, code: string, label: string): T {
  const obj = Object.create(prototype) as T
  for (const [key, value] of [
    ['code', code],
    ['label', label],
  ])
    Object.defineProperty(obj, key as string, { value, enumerable: true, writable: true, configurable: true })
  return obj
}

/** True when JSON text holds a `\u0000` escape (one not itself escaped: after an even number of backslashes). */
const NUL_ESCAPE = /(^|[^\\])(\\\\)*\\u0000/

describe('tagged JSON text', () => {
  it('never holds a U+0000 escape: strings and keys with U+0000 are tagged before JSON text is made', () => {
    fc.assert(
      fc.property(anyValue(fc), (value) => {
        expect(JSON.stringify(toTaggedJson(value, 'test'))).not.toMatch(NUL_ESCAPE)
      }),
      { numRuns: 300 },
    )
    expect(JSON.stringify(toTaggedJson({ 'k\0': ['\0', new Map([['\0', '\\\0']])] }, 'test'))).not.toMatch(NUL_ESCAPE)
  })
})

describe.each(dialects)('SqlStore on %s: JSON columns', (dialect) => {
  const types = dialect === 'sqlite' ? ['json'] : ['jsonb', 'json']

  for (const type of types) {
    it(`${type}: strings with a backslash before "u0000" come back, as do strings with U+0000`, async () => {
      const env = await open(dialect)
      await sql`create table ${sql.table(env.table('notes'))} (id integer primary key, body ${sql.raw(type)})`.execute(env.db)
      const texts = [String.raw`escape sequence \u0000 in docs`, String.raw`\\u0000`, String.raw`\\\u0000`, 'a\0b', '\\\0', '\\']
      let id = 0
      for (const text of texts) {
        const body = { text, list: [text], map: new Map([[text, text]]), [text]: 1, pattern: new RegExp(String.raw`\u0000${text.length}`) }
        await env.store.put(new Note(++id, body))
        expect((await env.store.get(Note, { id }))?.body, JSON.stringify(text)).toStrictEqual(body)
      }
      // a RegExp's source with U+0000 or a lone surrogate is tagged like such a string: it comes back exactly
      // (built from a variable: a literal would be rewritten by the linter into /a\0b/, whose source has no U+0000)
      const nul = '\0'
      const [highs, low] = ['[\uD800-\uDBFF]', '\uDC00']
      const patterns = { nul: new RegExp(`a${nul}b`), high: new RegExp(highs, 'g'), low: new RegExp(low, 'u') }
      await env.store.put(new Note(++id, patterns))
      const back = (await env.store.get(Note, { id }))?.body as typeof patterns
      expect(back).toStrictEqual(patterns)
      expect(back.high.source).toBe(patterns.high.source)
      expect(back.nul.source).toBe(patterns.nul.source)
    })
  }

  it('a value nested more than 256 levels deep, counted as the cache codec counts, is refused before anything is written', async () => {
    const env = await open(dialect)
    await sql`create table ${sql.table(env.table('notes'))} (id integer primary key, body ${sql.raw(dialect === 'sqlite' ? 'json' : 'jsonb')})`.execute(
      env.db,
    )
    const memory = new ProcessMemoryStore({ max: 10 })
    const chain = new ChainedStore([memory, env.store])
    // the model instance is level 1, its attribute's object level 2: the deepest object of deep(254) is level 256
    const deepest = new Note(1, deep(254))
    await chain.put(deepest)
    expect(await env.store.get(Note, { id: 1 })).toStrictEqual(deepest)
    expect(await chain.get(Note, { id: 1 })).toStrictEqual(deepest)
    let id = 1
    for (const body of [deep(255), [deep(254)], new Map([['k', deep(254)]]), new Set([deep(254)]), { a: { b: deep(253) } }]) {
      const note = new Note(++id, body)
      await expect(new ProcessMemoryStore({ max: 10 }).put(note)).rejects.toThrow(/nested more than 256 levels/)
      const err = await env.store.put(note).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(SerializationError)
      expect((err as Error).message).toMatch(/`JsonExactNote`.*`body`.*nested more than 256 levels/)
      expect(await env.store.get(Note, { id })).toBeUndefined()
    }
    await chain.close()
  })

  it('a Date, Map, Set or RegExp carrying what JSON would drop is refused, as the cache codec refuses it', async () => {
    const env = await open(dialect)
    await sql`create table ${sql.table(env.table('notes'))} (id integer primary key, body ${sql.raw(dialect === 'sqlite' ? 'json' : 'jsonb')})`.execute(
      env.db,
    )
    let id = 0
    for (const [body, message] of [
      [Object.assign(new Date(0), { zone: 'UTC' }), /`body` is a Date with own properties `\["zone"\]`/],
      [{ m: Object.assign(new Map(), { x: 1 }) }, /`body` at `m` is a Map with own properties/],
      [[Object.assign(new Set([1]), { x: 1 })], /is a Set with own properties/],
      [Object.assign(/a/g, { lastIndex: 2 }), /`body` is a RegExp with lastIndex 2/],
    ] as const) {
      const note = new Note(++id, body)
      await expect(new ProcessMemoryStore({ max: 10 }).put(note)).rejects.toThrow(/which would not be stored with it/)
      const err = await env.store.put(note).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(SerializationError)
      expect((err as Error).message).toMatch(message)
      expect(await env.store.get(Note, { id })).toBeUndefined()
    }
  })

  it('a getter that throws inside a value is refused with SerializationError naming store, model, attribute and path, keeping the error as cause; nothing is written', async () => {
    const env = await open(dialect)
    const type = dialect === 'sqlite' ? 'json' : 'jsonb'
    await sql`create table ${sql.table(env.table('notes'))} (id integer primary key, body ${sql.raw(type)}, bodies ${sql.raw(dialect === 'sqlite' ? 'json' : 'jsonb[]')})`.execute(
      env.db,
    )
    const boom = new Error('boom')
    const body = () => ({
      inner: {
        ok: 1,
        get bad(): number {
          throw boom
        },
      },
    })
    const cases: [Note, RegExp][] = [
      [
        new Note(1, body()),
        /^sql store put of model `JsonExactNote`: attribute `body` at `inner.bad` could not be read: its getter threw \(boom\)/,
      ],
      [new Note(2, [1, body()]), /attribute `body` at `\[1\].inner.bad` could not be read: its getter threw \(boom\)/],
      [
        Object.defineProperty(new Note(3, 1), 'body', {
          get: () => {
            throw boom
          },
          enumerable: true,
        }),
        /^sql store put of model `JsonExactNote`: attribute `body` could not be read: its getter threw \(boom\)/,
      ],
    ]
    if (dialect === 'postgres') {
      const note = Object.assign(new Note(4, null), { bodies: [{ a: 1 }, body()] })
      cases.push([note, /attribute `bodies` element \[1\] at `inner.bad` could not be read: its getter threw \(boom\)/])
    }
    const memory = new ProcessMemoryStore({ max: 10 })
    const chain = new ChainedStore([memory, env.store])
    for (const [note, message] of cases) {
      for (const store of [env.store, chain]) {
        const err = await store.put(note).catch((e: unknown) => e)
        expect(err, String(note.id)).toBeInstanceOf(SerializationError)
        expect((err as SerializationError).code).toBe('E_SERIALIZATION')
        expect((err as Error).cause, String(note.id)).toBe(boom)
        if (store === env.store) expect((err as Error).message, String(note.id)).toMatch(message)
      }
      expect(await env.store.get(Note, { id: note.id })).toBeUndefined()
      expect(await memory.get(Note, { id: note.id })).toBeUndefined()
    }
    await env.store.batchPut([new Note(10, 1), new Note(11, body())]).catch(() => undefined)
    expect(await env.store.batchGet(Note, [{ id: 10 }, { id: 11 }])).toEqual([undefined, undefined])
    await chain.close()
  })

  it('a nested model instance comes back with its attributes as own data properties: no accessor of its class runs', async () => {
    const env = await open(dialect)
    await sql`create table ${sql.table(env.table('notes'))} (id integer primary key, body ${sql.raw(dialect === 'sqlite' ? 'json' : 'jsonb')})`.execute(
      env.db,
    )
    const body = { label: withOwnLabel(Label.prototype, 'ts', 'TypeScript'), watched: [withOwnLabel(Watched.prototype, 'w', 'own')] }
    const runs = Watched.setterRuns
    await env.store.put(new Note(1, body))
    const back = (await env.store.get(Note, { id: 1 }))?.body as typeof body
    expect(back.label).toBeInstanceOf(Label)
    expect(back.label.label).toBe('TypeScript')
    expect(Object.getOwnPropertyDescriptor(back.label, 'label')).toEqual({
      value: 'TypeScript',
      enumerable: true,
      writable: true,
      configurable: true,
    })
    expect(back.watched[0]).toBeInstanceOf(Watched)
    expect(back.watched[0]?.label).toBe('own')
    expect(Watched.setterRuns).toBe(runs)
    expect(back).toStrictEqual(body)
  })
})
