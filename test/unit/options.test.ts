import { runInNewContext } from 'node:vm'
import { Keyv } from 'keyv'
import { describe, expect, it } from 'vitest'
import { closestOption } from '../../src/core/options.js'
import { AsyncLocalStore, ChainedStore, InvalidOptionError, KeyValueStore, LoaderStore, ProcessMemoryStore } from '../../src/index.js'
import { PostgresBus, RedisBus } from '../../src/invalidation/index.js'
import { KeyvStore } from '../../src/stores/keyv/index.js'
import { MemcacheStore } from '../../src/stores/memcache/index.js'
import { RedisStore } from '../../src/stores/redis/index.js'
import { CacheSyncPlugin, createTable, SqlStore } from '../../src/stores/sql/index.js'
import { FaultStore, ManualClock, MapBackend } from '../../src/testing/index.js'

// None of these constructors connects: every check is synchronous, so no server is needed.
const constructors: [string, (extra: Record<string, unknown>) => unknown][] = [
  ['ProcessMemoryStore', (o) => new ProcessMemoryStore(o)],
  ['AsyncLocalStore', (o) => new AsyncLocalStore(o)],
  ['KeyValueStore', (o) => new KeyValueStore(new MapBackend(), o)],
  ['RedisStore', (o) => new RedisStore({ url: 'redis://127.0.0.1:1', ...o })],
  ['KeyvStore', (o) => new KeyvStore({ keyv: new Keyv(), ...o })],
  ['MemcacheStore', (o) => new MemcacheStore({ servers: ['127.0.0.1:1'], ...o })],
]

function message(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidOptionError)
    return (err as Error).message
  }
  throw new Error('expected an InvalidOptionError')
}

describe('options', () => {
  for (const [name, make] of constructors) {
    it(`${name} rejects unknown options synchronously, naming them and the intended one`, () => {
      expect(message(() => make({ ttl: 60 }))).toMatch(/unknown option `ttl`: did you mean `lifetime` \(seconds\)\?/)
      expect(message(() => make({ polymorfic: true }))).toMatch(/unknown option `polymorfic`: did you mean `polymorphic`\?/)
      expect(message(() => make({ zzzzzz: 1 }))).toMatch(/unknown option `zzzzzz` \(known options: .*lifetime/)
      // a misspelt name is refused whatever its value
      expect(() => make({ lifetim: undefined })).toThrow(InvalidOptionError)
    })

    it(`${name} refuses a name that is not a non-empty string`, () => {
      for (const bad of [42, '', { a: 1 }, Number.NaN, true]) {
        expect(message(() => make({ name: bad }))).toMatch(/option `name` must be a non-empty string, got /)
      }
    })

    it(`${name} refuses null for an option (undefined is the default; null was taken as it by some)`, () => {
      for (const option of ['prefix', 'lifetime', 'name', 'clock']) {
        expect(message(() => make({ [option]: null }))).toMatch(new RegExp(`option \`${option}\` (is null: leave it out|must be)`))
      }
    })

    it(`${name} checks prefix (even where it is ignored) and clock`, () => {
      for (const bad of [Number.NaN, {}, () => 'x', 5, 'has space', 'x'.repeat(41)]) {
        expect(message(() => make({ prefix: bad }))).toMatch(/option `prefix` must be at most 40 characters/)
      }
      for (const bad of [{}, () => 1, 5]) expect(message(() => make({ clock: bad }))).toMatch(/option `clock` must have a now\(\) method/)
      expect(() => make({ prefix: 'app-v2', clock: new ManualClock() })).not.toThrow()
    })

    it(`${name} accepts lifetime as a Date in the future and refuses one in the past`, () => {
      const clock = new ManualClock()
      expect(() => make({ clock, lifetime: new Date(clock.now() + 60_000) })).not.toThrow()
      expect(message(() => make({ clock, lifetime: new Date(clock.now() - 1) }))).toMatch(/lifetime` is a Date in the past/)
      expect(message(() => make({ clock, lifetime: new Date(Number.NaN) }))).toMatch(/invalid Date/)
    })

    it(`${name} refuses lifetimes no backend can take (seconds above 10^12)`, () => {
      for (const lifetime of [1e13, 1e16, 1e300, Number.POSITIVE_INFINITY]) {
        expect(message(() => make({ lifetime }))).toMatch(/option `lifetime` must be a number of seconds > 0 and at most 10\^12/)
      }
      for (const option of ['tombstoneLifetime', 'grace']) {
        expect(message(() => make({ [option]: 1e300 }))).toMatch(
          new RegExp(`option \`${option}\` must be a number of seconds >= 0 and at most 10\\^12`),
        )
      }
      expect(() => make({ lifetime: 1e12, tombstoneLifetime: 1e12, grace: 1e12 })).not.toThrow()
    })
  }

  it('KeyValueStore refuses a backend whose name is not a non-empty string (a name option still names the store)', () => {
    const backend = (name: unknown) => Object.assign(new MapBackend(), { name }) as MapBackend
    for (const bad of [42, '', { a: 1 }, Number.NaN]) {
      expect(message(() => new KeyValueStore(backend(bad)))).toMatch(
        /^KeyValueStore: the backend's `name` must be a non-empty string, got /,
      )
    }
    expect(new KeyValueStore(backend(undefined)).name).toBe('key-value')
    expect(new KeyValueStore(backend('mine')).name).toBe('mine')
    expect(new KeyValueStore(backend('mine'), { name: 'app' }).name).toBe('app')
  })

  it('gives store-specific hints', () => {
    expect(message(() => new RedisStore({ uri: 'redis://x' } as never))).toMatch(/`uri`: did you mean `url`\?/)
    expect(message(() => new ProcessMemoryStore({ maxItems: 10 } as never))).toMatch(/`maxItems`: did you mean `max` \(objects\)\?/)
    expect(message(() => new ProcessMemoryStore({ maxBytes: 10 } as never))).toMatch(/did you mean `maxSize` \(bytes\)\?/)
    expect(message(() => new SqlStore({ url: 'sqlite::memory:' }, { ttl: 1 } as never))).toMatch(/SqlStore: unknown option `ttl`/)
    expect(message(() => new SqlStore({ uri: 'sqlite::memory:' } as never))).toMatch(/SqlStore.*`uri`: did you mean `url`\?/)
    expect(message(() => new SqlStore({ url: 'sqlite::memory:' }, { camelcase: true } as never))).toMatch(/did you mean `camelCase`\?/)
    expect(message(() => new MemcacheStore({ servers: ['127.0.0.1:1'], timeoutMs: 5 } as never))).toMatch(/did you mean `timeout` \(ms\)\?/)
    expect(message(() => new RedisBus({ url: 'redis://127.0.0.1:1', chanel: 'x' } as never))).toMatch(/did you mean `channel`\?/)
    expect(message(() => new PostgresBus({ url: 'postgres://127.0.0.1:1/x', uri: 'x' } as never))).toMatch(/did you mean `url`\?/)
  })

  it('a malformed SQL URL is shown without its user and password, also one holding / or @', () => {
    for (const url of ['mysql://app:S3cretPw@db/x', 'mysql://app:S3c/ret@Pw@db/x']) {
      const text = message(() => new SqlStore({ url }))
      expect(text).toMatch(/must start with sqlite: or postgres:\/\/, got `"mysql:\/\/…@db\/x"`/)
      expect(text).not.toMatch(/S3c|Pw|app/)
    }
  })

  it('a malformed Redis URL is shown without its user and password', () => {
    for (const make of [(url: string) => new RedisStore({ url }), (url: string) => new RedisBus({ url })]) {
      for (const url of ['redis://app:S3cretPw@cache:63 79', 'http://app:S3cretPw@cache:6379', 'redis://app:S3c/ret@Pw@cache:63 79']) {
        const text = message(() => make(url))
        expect(text).toMatch(/option `url` must be a redis:\/\/ or rediss:\/\/ URL, got `"(redis|http):\/\/…@cache:63 ?79"`/)
        expect(text).not.toMatch(/S3c|Pw|app/)
      }
    }
  })

  it('lists each known option once (MemcacheStore listed `clock` twice: its own and the shared one)', () => {
    for (const [name, make] of constructors) {
      const listed = /\(known options: (.*)\)$/.exec(message(() => make({ zzzzzz: 1 })))?.[1]?.split(', ') ?? []
      expect(listed.length, name).toBeGreaterThan(3)
      expect(listed, name).toEqual([...new Set(listed)])
    }
  })

  it('suggests only options the constructor has', () => {
    expect(closestOption('ttl', ['url', 'name'])).toBeUndefined()
    expect(closestOption('uri', ['url', 'name'])).toBe('url')
    expect(closestOption('NAME', ['url', 'name'])).toBe('name')
    expect(closestOption('xy', ['url', 'name'])).toBeUndefined()
  })

  it('a lifetime Date expires every object at that instant', async () => {
    const clock = new ManualClock()
    const store = new ProcessMemoryStore({ clock, lifetime: new Date(clock.now() + 10_000) })
    class Thing {
      static readonly stockpyleName = 'OptionsThing'
      static readonly stockpyleKeys = ['id'] as const
      constructor(public id: number) {}
    }
    await store.put(new Thing(1))
    clock.advance(9_999)
    expect(await store.get(Thing, { id: 1 })).toEqual(new Thing(1))
    clock.advance(1)
    expect(await store.get(Thing, { id: 1 })).toBeUndefined()
    await store.put(new Thing(2))
    expect(await store.get(Thing, { id: 2 })).toBeUndefined()
  })
})

describe('options given through a prototype', () => {
  class Inherited {
    static readonly stockpyleName = 'OptionsInherited'
    static readonly stockpyleKeys = ['id'] as const
    constructor(public id: number) {}
  }
  // Every constructor, given its required options as own properties of an object that inherits more:
  // what is inherited was read by some checks and dropped by others' spreads, and a misspelt inherited
  // name (`ttl`) was silently ignored.
  const whole: [string, (options: object) => unknown][] = [
    ['ProcessMemoryStore', (o) => new ProcessMemoryStore(o)],
    ['AsyncLocalStore', (o) => new AsyncLocalStore(o)],
    ['KeyValueStore', (o) => new KeyValueStore(new MapBackend(), o)],
    ['RedisStore', (o) => new RedisStore(o)],
    ['KeyvStore', (o) => new KeyvStore(o as never)],
    ['MemcacheStore', (o) => new MemcacheStore(o as never)],
    ['ChainedStore', (o) => new ChainedStore([new ProcessMemoryStore()], o)],
    ['SqlStore (options)', (o) => new SqlStore({ url: 'sqlite::memory:' }, o)],
    ['SqlStore (connection)', (o) => new SqlStore(o as never)],
    ['LoaderStore', (o) => new LoaderStore(o as never)],
    ['FaultStore', (o) => new FaultStore(new ProcessMemoryStore(), o)],
    ['RedisBus', (o) => new RedisBus(o)],
    ['PostgresBus', (o) => new PostgresBus(o as never)],
  ]
  const required: Record<string, object> = {
    RedisStore: { url: 'redis://127.0.0.1:1' },
    KeyvStore: { keyv: new Keyv() },
    MemcacheStore: { servers: ['127.0.0.1:1'] },
    'SqlStore (connection)': { url: 'sqlite::memory:' },
    LoaderStore: { model: Inherited, load: async () => [] },
    RedisBus: { url: 'redis://127.0.0.1:1' },
    PostgresBus: { url: 'postgres://127.0.0.1:1/x' },
  }
  const closeIt = async (made: unknown) => (made as { close?: () => Promise<void> }).close?.()

  for (const [name, make] of whole) {
    it(`${name} refuses options that are not a plain object, whatever they inherit`, async () => {
      const own = required[name] ?? {}
      class Opts {
        get ttl() {
          return 5
        }
      }
      for (const options of [
        Object.assign(Object.create({ ttl: 5 }), own),
        Object.assign(Object.create({ name: 'x' }), own),
        Object.assign(new Opts(), own),
        Object.assign(new (class Empty {})(), own),
      ]) {
        expect(message(() => make(options))).toMatch(
          /options must be a plain object \(\{ … \}\), got (a `\w+` instance|an object inheriting)/,
        )
      }
      // a plain object of this realm or another (a vm context's), or one without a prototype, is taken
      for (const options of [{ ...own }, Object.assign(Object.create(null), own), Object.assign(runInNewContext('({})'), own)]) {
        await closeIt(make(options))
      }
    })
  }

  it('the message names the class and what to do instead', () => {
    class StoreSettings {
      max = 10
    }
    expect(message(() => new ProcessMemoryStore(new StoreSettings()))).toBe(
      'memory: options must be a plain object ({ … }), got a `StoreSettings` instance: what it inherits would not all be read; copy the options into an object literal ({ ...defaults, ...options })',
    )
  })

  it('nested options (breaker) are held to the same rule', () => {
    expect(message(() => new ChainedStore([new ProcessMemoryStore()], { breaker: Object.create({ failures: 3 }) }))).toMatch(
      /option `breaker`: options must be a plain object/,
    )
  })
})

describe('chain options', () => {
  const chain = (options: Record<string, unknown>, leases = false) =>
    new ChainedStore(
      leases
        ? [new ProcessMemoryStore(), new RedisStore({ url: 'redis://127.0.0.1:1' }), new ProcessMemoryStore({ name: 'db' })]
        : [new ProcessMemoryStore(), new ProcessMemoryStore({ name: 'db' })],
      options as never,
    )

  it('refuses one store given as two layers, naming both positions', () => {
    const memory = new ProcessMemoryStore()
    const db = new ProcessMemoryStore({ name: 'db' })
    expect(message(() => new ChainedStore([memory, memory]))).toMatch(
      /^chain: option `layers`\[0\] and `layers`\[1\] are the same store \(memory\)/,
    )
    expect(message(() => new ChainedStore([memory, db, db], { name: 'c' }))).toMatch(
      /^c: option `layers`\[1\] and `layers`\[2\] are the same store \(db\)/,
    )
  })

  it('accepts every documented option', () => {
    expect(() => chain({ maxPendingRepairs: 10 })).not.toThrow()
    expect(() => chain({ breaker: { failures: 3, halfOpenAfter: 0 }, timeout: 2 ** 31 - 1, missLifetime: 5 })).not.toThrow()
    expect(() => chain({ leases: { wait: 0, ttl: 5000 } }, true)).not.toThrow()
  })

  it('checks the type of every value', () => {
    expect(message(() => chain({ clock: {} }))).toMatch(/^chain: option `clock` must be an object with a now\(\) method, got `\{\}`/)
    expect(message(() => chain({ meter: {} }))).toMatch(/^chain: option `meter` must be an OpenTelemetry meter/)
    expect(message(() => chain({ name: 42 }))).toMatch(/option `name` must be a non-empty string, got `42`/)
    expect(message(() => chain({ name: '' }))).toMatch(/option `name` must be a non-empty string, got `""`/)
    expect(message(() => chain({ serveStale: 'yes' }))).toMatch(/option `serveStale` must be a boolean/)
    expect(message(() => chain({ breaker: { halfOpenAfter: '10' } }))).toMatch(/`breaker.halfOpenAfter` must be a number of ms >= 0/)
    expect(message(() => chain({ breaker: { halfOpenAfter: null } }))).toMatch(/option `halfOpenAfter` is null: leave it out/)
    expect(message(() => chain({ breaker: { failures: 0 } }))).toMatch(/`breaker.failures` must be a positive integer/)
    expect(message(() => chain({ breaker: 5 }))).toMatch(/option `breaker` must be an object of failures, halfOpenAfter, got `5`/)
    expect(message(() => chain({ leases: { wait: '5' } }, true))).toMatch(/`leases.wait` must be a number of ms >= 0/)
    expect(message(() => chain({ leases: { wait: null } }, true))).toMatch(/option `wait` is null: leave it out/)
    expect(message(() => chain({ missLifetime: 1e300 }))).toMatch(/`missLifetime` must be a number of seconds >= 0 and at most 10\^12/)
  })

  it('a meter that cannot create its instruments: InvalidOptionError naming `meter`, with the meter’s error as cause', () => {
    const full = new Error('instrument registry full')
    const meters = {
      createCounter: {
        createCounter: () => {
          throw full
        },
        createHistogram: () => ({ record() {} }),
      },
      createHistogram: {
        createCounter: () => ({ add() {} }),
        createHistogram: () => {
          throw full
        },
      },
    }
    for (const [failing, meter] of Object.entries(meters)) {
      let error: unknown
      try {
        chain({ meter, name: 'orders' })
      } catch (err) {
        error = err
      }
      expect(error, failing).toBeInstanceOf(InvalidOptionError)
      expect((error as Error).message).toBe(
        `orders: option \`meter\` could not create its instruments (${failing} threw): instrument registry full`,
      )
      expect((error as Error).cause).toBe(full)
    }
    const none = { createCounter: () => undefined, createHistogram: () => ({ record() {} }) }
    expect(message(() => chain({ meter: none }))).toBe(
      "chain: option `meter`'s createCounter returned `undefined`, which has no add() method",
    )
  })

  it('refuses null for every option (undefined means the default)', () => {
    const options = [
      'onCacheError',
      'clock',
      'leases',
      'serveStale',
      'missLifetime',
      'timeout',
      'breaker',
      'coherence',
      'meter',
      'name',
      'maxPendingRepairs',
    ]
    for (const option of options) {
      expect(
        message(() => chain({ [option]: null }, true)),
        option,
      ).toMatch(new RegExp(`option \`${option}\`.*null`))
    }
  })

  it('refuses misspelt names inside breaker and leases, with a hint', () => {
    expect(message(() => chain({ breaker: { failure: 3 } }))).toMatch(
      /^chain: option `breaker`: unknown option `failure`: did you mean `failures`\?/,
    )
    expect(message(() => chain({ leases: { tll: 5 } }, true))).toMatch(
      /^chain: option `leases`: unknown option `tll`: did you mean `ttl`\?/,
    )
  })

  it('refuses durations Node timers cannot wait (2^31 ms or more)', () => {
    for (const [option, value] of [
      ['timeout', { timeout: 2 ** 31 }],
      ['breaker.halfOpenAfter', { breaker: { halfOpenAfter: 2 ** 31 } }],
      ['breaker.halfOpenAfter', { breaker: { halfOpenAfter: Number.POSITIVE_INFINITY } }],
      ['leases.ttl', { leases: { ttl: Number.POSITIVE_INFINITY } }],
      ['leases.wait', { leases: { wait: 2 ** 31 } }],
    ] as const) {
      expect(message(() => chain(value, true))).toMatch(
        new RegExp(`option \`${option.replace('.', '\\.')}\` must be a number of ms .* and < 2\\^31`),
      )
    }
  })
})

describe('durations in ms', () => {
  const redis = (o: Record<string, unknown>) => new RedisStore({ url: 'redis://127.0.0.1:1', ...o })
  const redisCluster = (o: Record<string, unknown>) => new RedisStore({ cluster: [{ host: '127.0.0.1', port: 1 }], ...o })
  const memcache = (o: Record<string, unknown>) => new MemcacheStore({ servers: ['127.0.0.1:1'], ...o })
  const redisBus = (o: Record<string, unknown>) => new RedisBus({ url: 'redis://127.0.0.1:1', ...o })
  const owners: [string, string, (o: Record<string, unknown>) => unknown][] = [
    ['RedisStore', 'timeout', redis],
    ['RedisStore', 'retryDelay', redisCluster],
    ['KeyvStore', 'timeout', (o) => new KeyvStore({ keyv: new Keyv(), ...o })],
    ['MemcacheStore', 'timeout', memcache],
    ['MemcacheStore', 'retryDelay', memcache],
    ['RedisBus', 'timeout', redisBus],
    ['RedisBus', 'heartbeatInterval', redisBus],
    ['RedisBus', 'maxBackoff', redisBus],
    ['PostgresBus', 'heartbeatInterval', (o) => new PostgresBus({ url: 'postgres://127.0.0.1:1/x', ...o })],
    ['SqlStore', 'timeout', (o) => new SqlStore({ url: 'postgres://127.0.0.1:1/x' }, o)],
  ]
  for (const [owner, option, make] of owners) {
    it(`${owner} refuses ${option} from 2^31 (Node's timers would fire after 1 ms)`, async () => {
      for (const value of [2 ** 31, 3e9, Number.POSITIVE_INFINITY, '10']) {
        expect(message(() => make({ [option]: value }))).toMatch(
          new RegExp(`option \`${option}\` must be a number of ms >=? 0 and < 2\\^31`),
        )
      }
      await (make({ [option]: 2 ** 31 - 1 }) as { close(): Promise<void> }).close()
    })
  }

  it('new KeyvStore() without options names what is missing', () => {
    expect(message(() => new KeyvStore(undefined as never))).toMatch(/^keyv store: options must be an object with `keyv`/)
  })
})

describe('createTable and CacheSyncPlugin options', () => {
  class Tabled {
    static readonly stockpyleName = 'OptionsTabled'
    static readonly stockpyleKeys = ['id'] as const
    constructor(public id: number) {}
  }
  const columns = { id: 'integer' } as const

  it('createTable refuses misspelt and missing options, and non-boolean flags, before creating anything', async () => {
    const sql = new SqlStore({ url: 'sqlite::memory:' })
    try {
      const refused = async (options: unknown) => {
        const err = await createTable(sql, Tabled, options as never).catch((e: unknown) => e)
        expect(err).toBeInstanceOf(InvalidOptionError)
        return (err as Error).message
      }
      expect(await refused({ columns, ifNotExist: true })).toMatch(
        /^createTable: unknown option `ifNotExist`: did you mean `ifNotExists`\?/,
      )
      expect(await refused(undefined)).toMatch(/^createTable: options must be an object with `columns`/)
      expect(await refused({ columns, generated: 'no' })).toMatch(/^createTable: option `generated` must be a boolean, got `"no"`/)
      expect(await refused({ columns, ifNotExists: 1 })).toMatch(/option `ifNotExists` must be a boolean/)
      expect(await refused({ columns, camelCase: 'yes' })).toMatch(/option `camelCase` must be a boolean/)
      await createTable(sql, Tabled, { columns, ifNotExists: true })
      await createTable(sql, Tabled, { columns, ifNotExists: true })
    } finally {
      await sql.close()
    }
  })

  it('CacheSyncPlugin refuses misspelt and missing options', async () => {
    const sql = new SqlStore({ url: 'sqlite::memory:' })
    const chain = new ChainedStore([new ProcessMemoryStore(), sql])
    expect(message(() => new CacheSyncPlugin({ chain, models: [Tabled], onerror: () => {} } as never))).toMatch(
      /^CacheSyncPlugin: unknown option `onerror`: did you mean `onError`\?/,
    )
    expect(message(() => new CacheSyncPlugin(undefined as never))).toMatch(/^CacheSyncPlugin: options must be an object with `chain`/)
    await chain.close()
  })
})
