/**
 * Stores and backends that break the contract on purpose, each in one way a real one could (a
 * case-insensitive collation, keys cut to a column's width, a delete of the first key only, an add
 * that ignores expiry, expiry not reported): test/conformance/breaks.test.ts shows a conformance case
 * catches each.
 */
import {
  BaseStore,
  capabilities,
  Entry,
  type KeyValueBackend,
  type KeyValueEntry,
  type Lookup,
  type LookupRequest,
  type Model,
  type ModelInfo,
  ProcessMemoryStore,
  type StoreCapabilities,
  type StoreEntry,
  type WriteItem,
} from '../../src/index.js'
import { type ConformanceStoreOptions, MapBackend } from '../../src/testing/index.js'

/** A MapBackend that changes every key it is given, e.g. folds its case or cuts it. */
export class KeyChangingBackend extends MapBackend {
  readonly #change: (key: string) => string
  constructor(now: () => number, change: (key: string) => string) {
    super(now)
    this.#change = change
  }
  override getMany(keys: readonly string[]) {
    return super.getMany(keys.map(this.#change))
  }
  override setMany(entries: readonly KeyValueEntry[]) {
    return super.setMany(entries.map((e) => ({ ...e, key: this.#change(e.key) })))
  }
  override addMany(entries: readonly KeyValueEntry[]) {
    return super.addMany(entries.map((e) => ({ ...e, key: this.#change(e.key) })))
  }
  override refillMany(entries: readonly KeyValueEntry[], expiredBy: number) {
    return super.refillMany(
      entries.map((e) => ({ ...e, key: this.#change(e.key) })),
      expiredBy,
    )
  }
  override deleteMany(keys: readonly string[]) {
    return super.deleteMany(keys.map(this.#change))
  }
}

/** A MapBackend whose deleteMany removes only the first key it is given. */
export class DeletesFirstKeyOnly extends MapBackend {
  override deleteMany(keys: readonly string[]) {
    return super.deleteMany(keys.slice(0, 1))
  }
}

/**
 * Reads miss expired entries, but `addMany` refuses any key present, expired or not: expired entries
 * are never dropped (a backend whose reads and adds disagree on expiry).
 */
export class AddRefusesExpired implements KeyValueBackend {
  readonly name = 'add-refuses-expired'
  readonly #data = new Map<string, { value: Uint8Array; expiresAt: number | undefined }>()
  readonly #now: () => number
  constructor(now: () => number) {
    this.#now = now
  }
  async getMany(keys: readonly string[]) {
    const now = this.#now()
    return keys.map((k) => {
      const e = this.#data.get(k)
      return e !== undefined && (e.expiresAt === undefined || e.expiresAt > now) ? e.value : undefined
    })
  }
  async setMany(entries: readonly KeyValueEntry[]) {
    for (const e of entries) this.#data.set(e.key, { value: Uint8Array.from(e.value), expiresAt: e.expiresAt })
  }
  async addMany(entries: readonly KeyValueEntry[]) {
    return entries.map((e) => {
      if (this.#data.has(e.key)) return false
      this.#data.set(e.key, { value: Uint8Array.from(e.value), expiresAt: e.expiresAt })
      return true
    })
  }
  async deleteMany(keys: readonly string[]) {
    for (const k of keys) this.#data.delete(k)
  }
  async close() {}
}

/** The object's primary-key values as text, with its model's name. */
function primaryText(info: ModelInfo, obj: object): string {
  return `${info.name}|${info.primary.fields.map((f) => String((obj as Record<string, unknown>)[f])).join('|')}`
}

/**
 * An authoritative store that compares string key values without regard to case, like a database
 * column with a case-insensitive collation: it finds the row, then answers the copy held under the
 * row's exact primary key.
 */
export class CaseBlindStore extends BaseStore {
  readonly name = 'case-blind'
  override readonly capabilities: StoreCapabilities = capabilities({ authoritative: true, expires: false })
  /** The attributes of each object written (its key values among them), by model. */
  #rows: { info: ModelInfo; attributes: Record<string, unknown> }[] = []
  readonly #copies = new ProcessMemoryStore({ max: 10_000 })

  static #same(a: unknown, b: unknown): boolean {
    return typeof a === 'string' && typeof b === 'string' ? a.toLowerCase() === b.toLowerCase() : a === b
  }
  protected async readMany(info: ModelInfo, requests: readonly LookupRequest[]): Promise<(StoreEntry | undefined)[]> {
    const found = requests.map((r) =>
      this.#rows.find((row) => row.info === info && r.spec.fields.every((f) => CaseBlindStore.#same(row.attributes[f], r.lookup[f]))),
    )
    const hits = found.flatMap((row, i) => (row === undefined ? [] : [i]))
    const primary = (i: number) => Object.fromEntries(info.primary.fields.map((f) => [f, found[i]?.attributes[f]])) as Lookup<Model>
    const copies = await this.#copies.batchGet(info.model, hits.map(primary))
    const out: (StoreEntry | undefined)[] = new Array(requests.length).fill(undefined)
    hits.forEach((i, j) => {
      const value = copies[j]
      if (value !== undefined) out[i] = new Entry(value, undefined)
    })
    return out
  }
  #drop(info: ModelInfo, obj: object): void {
    this.#rows = this.#rows.filter((r) => !(r.info === info && primaryText(info, r.attributes) === primaryText(info, obj)))
  }
  protected async writeMany(items: readonly WriteItem[]): Promise<void> {
    await this.#copies.batchPut(items.map((i) => i.obj))
    for (const { info, obj } of items) {
      this.#drop(info, obj)
      this.#rows.push({ info, attributes: { ...obj } })
    }
  }
  protected async removeMany(items: readonly WriteItem[]): Promise<void> {
    await this.#copies.batchDelete(items.map((i) => i.obj))
    for (const { info, obj } of items) this.#drop(info, obj)
  }
  protected override async release(): Promise<void> {
    await this.#copies.close()
  }
}

/**
 * A cache over a ProcessMemoryStore that honours lifetimes but reports `expiresAt: undefined` for
 * entries written without a cap (by put): a chain would let a copy of them outlive this layer's.
 */
export class HidesPutExpiry extends BaseStore {
  readonly name = 'hides-put-expiry'
  override readonly capabilities: StoreCapabilities = capabilities({})
  readonly #inner: ProcessMemoryStore
  readonly #uncapped = new Set<string>()
  constructor({ prefix: _prefix, ...options }: ConformanceStoreOptions) {
    super()
    this.#inner = new ProcessMemoryStore(options)
  }
  protected async readMany(info: ModelInfo, requests: readonly LookupRequest[]): Promise<(StoreEntry | undefined)[]> {
    const entries = await this.#inner.batchGetEntries(
      info.model,
      requests.map((r) => r.lookup as Lookup<Model>),
    )
    return entries.map((e) => (e !== undefined && this.#uncapped.has(primaryText(info, e.value)) ? new Entry(e.value, undefined) : e))
  }
  protected async writeMany(items: readonly WriteItem[]): Promise<void> {
    await this.#inner.batchPutEntries(items.map((i) => ({ value: i.obj, expiresAt: i.expiresAt })))
    for (const i of items) {
      if (i.expiresAt === undefined) this.#uncapped.add(primaryText(i.info, i.obj))
      else this.#uncapped.delete(primaryText(i.info, i.obj))
    }
  }
  protected async removeMany(items: readonly WriteItem[]): Promise<void> {
    await this.#inner.batchDelete(items.map((i) => i.obj))
  }
  protected override async release(): Promise<void> {
    await this.#inner.close()
  }
}
