import { keys } from '../index.js'

/**
 * The models the conformance suite stores. Their type tags start with `Conformance` so they never
 * collide with an application's models. {@link conformanceTables} describes them for stores that
 * need a schema (SQL).
 */
export class ConformanceUser {
  static readonly stockpyleName = 'ConformanceUser'
  static readonly stockpyleKeys = ['id', 'email', ['orgId', 'slug']] as const
  name = ''
  createdAt: Date = new Date(0)
  tags: string[] = []
  balance = 0n
  active = true
  meta: Record<string, unknown> = {}
  prefs: Map<string, number> = new Map()
  roles: Set<string> = new Set()
  avatar: Buffer = Buffer.alloc(0)
  constructor(
    public id: number,
    public email: string,
    public orgId: number,
    public slug: string,
  ) {}
}

/** A base model for polymorphic and subclass cases. */
export class ConformanceVehicle {
  static readonly stockpyleName: string = 'ConformanceVehicle'
  static readonly stockpyleKeys = keys('plate')
  wheels = 4
  constructor(public plate: string) {}
}

/** A subclass declaring its own keys (primary `vin`, alternate `plate`). */
export class ConformanceCar extends ConformanceVehicle {
  static override readonly stockpyleName: string = 'ConformanceCar'
  static override readonly stockpyleKeys = keys('vin', 'plate')
  model = ''
  constructor(
    plate: string,
    public vin: string,
  ) {
    super(plate)
  }
}

/**
 * A model for the property-based fidelity cases: a key of each type (string `id`, bigint `code`, and
 * the composite boolean + number `[flag, num]`) and one attribute holding any nested value.
 */
export class ConformanceDoc {
  static readonly stockpyleName = 'ConformanceDoc'
  static readonly stockpyleKeys = keys('id', 'code', ['flag', 'num'])
  constructor(
    public id: string,
    public code: bigint,
    public flag: boolean,
    public num: number,
    public data: unknown,
  ) {}
}

/** Column kinds of {@link conformanceTables}. `json` columns hold arrays, plain objects, Maps and Sets. */
export type ConformanceColumn = 'integer' | 'bigint' | 'real' | 'text' | 'boolean' | 'timestamp' | 'json' | 'bytes'

/** A table a schema-bound store needs for one conformance model. */
export interface ConformanceTable {
  readonly model: object
  readonly table: string
  readonly columns: Readonly<Record<string, ConformanceColumn>>
  /** Primary key attribute, then every other declared key (each needs a unique index). */
  readonly keys: readonly (readonly string[])[]
}

/** The tables the conformance models need, for SQL stores (a store with no schema ignores this). */
export const conformanceTables: readonly ConformanceTable[] = [
  {
    model: ConformanceUser,
    table: 'conformance_users',
    columns: {
      id: 'integer',
      email: 'text',
      orgId: 'integer',
      slug: 'text',
      name: 'text',
      createdAt: 'timestamp',
      tags: 'json',
      balance: 'bigint',
      active: 'boolean',
      meta: 'json',
      prefs: 'json',
      roles: 'json',
      avatar: 'bytes',
    },
    keys: [['id'], ['email'], ['orgId', 'slug']],
  },
  {
    model: ConformanceDoc,
    table: 'conformance_docs',
    columns: { id: 'text', code: 'bigint', flag: 'boolean', num: 'real', data: 'json' },
    keys: [['id'], ['code'], ['flag', 'num']],
  },
  { model: ConformanceVehicle, table: 'conformance_vehicles', columns: { plate: 'text', wheels: 'integer' }, keys: [['plate']] },
  {
    model: ConformanceCar,
    table: 'conformance_cars',
    columns: { vin: 'text', plate: 'text', wheels: 'integer', model: 'text' },
    keys: [['vin'], ['plate']],
  },
]
