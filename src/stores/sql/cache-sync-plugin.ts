import type {
  Dialect,
  Kysely,
  KyselyPlugin,
  PluginTransformQueryArgs,
  PluginTransformResultArgs,
  QueryId,
  QueryResult,
  RootOperationNode,
  UnknownRow,
} from 'kysely'
import type { Store } from '../../contracts/base-store.js'
import { callHook, warnOnceWhenHookFails } from '../../core/call-hook.js'
import { InvalidOptionError, StoreClosedError, show, UnsupportedOperationError } from '../../core/errors.js'
import type { Model } from '../../core/model.js'
import { checkOptionNames } from '../../core/options.js'
import { describeModelIn, type KeyInfo, type ModelInfo } from '../../core/registry.js'
import { messageOf } from '../../core/unavailable-unless-ours.js'
import { endsInBlockComment } from './cache-sync-comment.js'
import { type AfterCommitWork, trackingDialect } from './cache-sync-dialect.js'
import { isWrite, WriteMark } from './cache-sync-mark.js'
import { keyOf, planStatement, sqliteRowidNames, type WatchedTable } from './cache-sync-plan.js'
import { type Invalidation, StatementSync, type SyncTarget } from './cache-sync-statement.js'
import type { ModelMapping } from './row-mapper.js'
import { SqlStore } from './sql-store.js'

/** Options of {@link CacheSyncPlugin}. */
export interface CacheSyncOptions {
  /** The chain whose caches follow the writes (its `batchInvalidate` is called). */
  chain: Store
  /** The models whose tables are watched; statements on other tables are left alone. */
  models: readonly Model[]
  /** The SqlStore that maps those models to tables. Default: the chain's last layer, when it is a SqlStore. */
  store?: SqlStore | undefined
  /**
   * Called with a failure that cannot reject a caller: an invalidation after a COMMIT that failed
   * (the chain has reported its cache-layer failures and will repair them before reading the layer
   * again). Default (undefined): each such failure is a process warning `STOCKPYLE_CACHE_SYNC` naming
   * the error, none dropped. What it throws, or its promise rejects with, is a process warning
   * `STOCKPYLE_CALLBACK` the first time and dropped after.
   */
  onError?: ((error: unknown) => void) | undefined
}

/**
 * A Kysely plugin that keeps a chain's caches in step with writes the application makes through its
 * own Kysely instance (migrations, bulk updates, admin scripts):
 *
 * ```ts
 * const sync = new CacheSyncPlugin({ chain, models: [User, Post] })
 * const db = new Kysely<DB>({ dialect: sync.wrapDialect(new SqliteDialect({ database })), plugins: [sync] })
 * ```
 *
 * Every INSERT, UPDATE and DELETE built with Kysely on a table mapped to one of `models` gets a RETURNING
 * of its key columns on its way to the database, after every other plugin (without changing what the
 * builder resolves to), and the objects it touched are invalidated in every cache layer of the chain —
 * at once for a statement outside a transaction, after COMMIT inside one (Kysely's `transaction()`,
 * controlled transactions and savepoints), never after a rollback. `wrapDialect` is what lets the
 * plugin see statements as the database gets them, and transactions. Raw SQL (`sql\`…\``) bypasses it;
 * writes by other clients need the PostgreSQL triggers of `stockpyle/invalidation`. See docs/kysely-sync.md.
 *
 * A write through a Kysely that has the plugin but a dialect it did not wrap is refused before it runs
 * (see {@link CacheSyncPlugin.transformQuery}). A write whose target is not a table (a name or
 * `sql.table()`, aliased or not) is refused with `UnsupportedOperationError` before it runs; once the
 * chain is closed, a write on a watched table (and the COMMIT of a transaction that made one) is
 * refused with `StoreClosedError` before it runs.
 */
export class CacheSyncPlugin implements KyselyPlugin {
  readonly #chain: Store
  readonly #store: SqlStore
  readonly #watched = new Map<string, WatchedTable>()
  /** Each watched table with its key columns as the store's mappings (compared by identity) name them. */
  readonly #resolved = new WeakMap<WatchedTable, { mappings: readonly ModelMapping[]; table: WatchedTable }>()
  /**
   * The statements built by a Kysely instance with this plugin (their `queryId`, shared by every
   * execution of a builder and of the builders derived from it). The wrapped driver follows only
   * those: a Kysely without the plugin on the same driver (`db.withoutPlugins()`, a SqlStore's) is
   * left alone.
   */
  readonly #followed = new WeakSet<QueryId>()
  readonly #onError: (error: unknown) => void
  /** Where what `onError` throws (or rejects with) goes: one process warning. */
  readonly #onErrorFailed = warnOnceWhenHookFails('CacheSyncPlugin', 'onError')
  /** The mark on every write it sees, which only the compilers of the dialects it wrapped take out. */
  readonly #mark = new WriteMark()
  #wrapped = false

  /** @throws InvalidOptionError naming a bad option. */
  constructor(options: CacheSyncOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError(`CacheSyncPlugin: options must be an object with \`chain\` and \`models\`, got ${show(options)}`)
    }
    checkOptionNames('CacheSyncPlugin', options, ['chain', 'models', 'store', 'onError'])
    const { chain, models, onError } = options
    if (typeof chain?.batchInvalidate !== 'function') {
      throw new InvalidOptionError(
        `CacheSyncPlugin: option \`chain\` must be a store with batchInvalidate (a ChainedStore), got ${show(chain)}`,
      )
    }
    const last = (chain as { layers?: readonly Store[] }).layers?.at(-1)
    const store = options.store ?? (last instanceof SqlStore ? last : undefined)
    if (!(store instanceof SqlStore)) {
      throw new InvalidOptionError(
        'CacheSyncPlugin: option `store` must be the SqlStore that maps the models (the chain’s last layer is not one)',
      )
    }
    if (!Array.isArray(models) || models.length === 0) {
      throw new InvalidOptionError(`CacheSyncPlugin: option \`models\` must be a non-empty array of model classes, got ${show(models)}`)
    }
    if (onError !== undefined && typeof onError !== 'function') {
      throw new InvalidOptionError(`CacheSyncPlugin: option \`onError\` must be a function, got ${show(onError)}`)
    }
    this.#chain = chain
    this.#store = store
    this.#onError =
      onError ??
      ((error) =>
        process.emitWarning(`stockpyle cache sync: invalidation after COMMIT failed: ${messageOf(error)}`, {
          type: 'StockpyleWarning',
          code: 'STOCKPYLE_CACHE_SYNC',
        }))
    // key columns come from the store's mapping of each table, introspected when a write on it is first
    // planned (see #resolve)
    for (const [i, model] of models.entries()) {
      const info = describeModelIn(model, `CacheSyncPlugin: option \`models\`[${i}]`)
      const table = store.tableOf(model)
      const known = this.#watched.get(keyOf(table, store.dialect))
      const infos: ModelInfo[] = [...(known?.models ?? []), info]
      const watched: WatchedTable = {
        table,
        models: infos,
        keyColumns: [],
        primaryColumns: new Set(),
        primaryKeys: [],
        rowidNames: new Set(),
      }
      this.#watched.set(keyOf(table, store.dialect), watched)
      const defaultSchema = store.dialect === 'postgres' ? 'public' : 'main'
      if (!table.includes('.')) this.#watched.set(keyOf(`${defaultSchema}.${table}`, store.dialect), watched)
    }
  }

  /**
   * Wraps the dialect of the Kysely instance this plugin is added to, so the plugin sees each statement
   * as it reaches the database (after every plugin), the connection it runs on, and when that
   * connection's transaction commits or rolls back. Required: writes through a Kysely with the plugin
   * whose dialect was not wrapped are refused (see {@link transformQuery}).
   */
  wrapDialect(dialect: Dialect): Dialect {
    this.#wrapped = true
    const target: SyncTarget = {
      store: this.#store,
      watched: this.#watched,
      follows: (queryId) => this.#followed.has(queryId),
      resolve: (table, db) => this.#resolve(table, db),
      invalidate: (invalidations) => this.#invalidate(invalidations),
      refusal: (what) => this.#refusal(what),
      runAll: (work) => this.#runAll(work),
    }
    return trackingDialect(dialect, new StatementSync(target, dialect), this.#mark)
  }

  /**
   * Marks the statement as built with the plugin; the wrapped driver adds the RETURNING to it on its
   * way to the database (see {@link StatementSync}), where it refuses the writes it cannot follow.
   * Every INSERT, UPDATE, DELETE and MERGE also gets a mark at its end that only the query compiler of
   * a dialect this plugin wrapped takes out: compiled by any other Kysely (one with this plugin and a
   * dialect it did not wrap), the database refuses it as a syntax error naming `stockpyle
   * CacheSyncPlugin: dialect not wrapped (n)` before it runs.
   * @throws UnsupportedOperationError, before the statement runs, for a write on a watched table while
   *   no dialect was wrapped, and for any write whose end modifiers leave a block comment open (`/*`
   *   without `*\/`: SQLite would read what the plugin appends as comment).
   */
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    if (!this.#wrapped) {
      const { plan } = planStatement(args.node, this.#watched, this.#store.dialect)
      if (plan !== undefined) {
        throw new UnsupportedOperationError(
          `stockpyle cache sync: a write on table \`${plan.watched.table}\` through a Kysely whose dialect was not wrapped: create it with { dialect: plugin.wrapDialect(dialect), plugins: [plugin] }`,
        )
      }
    }
    if (isWrite(args.node) && endsInBlockComment(args.node.endModifiers)) {
      throw new UnsupportedOperationError(
        'stockpyle cache sync: a write whose end modifiers end inside a block comment it leaves open (`/*` without `*/`) cannot be followed: SQLite reads the rest of the statement as comment, the RETURNING and the mark the plugin appends too; close the comment, or run it on a Kysely instance without the plugin, then call chain.batchInvalidate() or chain.clearCaches()',
      )
    }
    this.#followed.add(args.queryId)
    return this.#mark.mark(args.node)
  }

  /** The result as the driver gave it: the wrapped driver already removed the plugin's columns. */
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result
  }

  /**
   * A watched table with the key columns of its models as the store maps them (introspected through
   * `db`, the connection the statement runs on, on the store's first use of the table; a column named
   * exactly like its attribute is found as the store finds it), and on SQLite the rowid's names its
   * declared columns leave to the rowid. Recomputed only when the store's mappings changed
   * (`refreshSchema()`).
   * @throws StockpyleError `E_SCHEMA` when the store cannot map a model onto the table.
   */
  async #resolve(table: WatchedTable, db: Kysely<any>): Promise<WatchedTable> {
    const mappings: ModelMapping[] = []
    for (const info of table.models) mappings.push(await this.#store.mappingOn(db, info.model))
    const known = this.#resolved.get(table)
    if (known?.mappings.every((m, i) => m === mappings[i])) return known.table
    const columnsOf = (m: ModelMapping, spec: KeyInfo) => (m.keyColumns.get(spec) ?? []).map((c) => c.name)
    const keyColumns = [...new Set(mappings.flatMap((m, i) => (table.models[i] as ModelInfo).keys.flatMap((k) => columnsOf(m, k))))]
    const primaries = mappings.map((m, i) => columnsOf(m, (table.models[i] as ModelInfo).primary))
    const primaryColumns = new Set(primaries.flat())
    const primaryKeys = [...new Map(primaries.map((columns) => [JSON.stringify(columns), columns])).values()]
    // every model of the table maps the same table: its columns are any mapping's
    const columns = mappings[0]?.schema.columns.keys() ?? []
    const rowidNames = this.#store.dialect === 'sqlite' ? sqliteRowidNames(columns) : new Set<string>()
    const resolved: WatchedTable = { ...table, keyColumns, primaryColumns, primaryKeys, rowidNames }
    this.#resolved.set(table, { mappings, table: resolved })
    return resolved
  }

  /** `StoreClosedError` for `what` once the chain is closed: its invalidation could not run, and the caches would keep what it replaced. */
  #refusal(what: string): Error | undefined {
    if ((this.#chain as { closed?: unknown }).closed !== true) return undefined
    return new StoreClosedError(
      `stockpyle cache sync: ${what} was refused before it ran: the chain ${this.#chain.name} is closed, so its caches could not follow it; destroy the Kysely instance before closing the chain`,
    )
  }

  async #invalidate(invalidations: readonly Invalidation[]): Promise<void> {
    const invalidate = this.#chain.batchInvalidate as NonNullable<Store['batchInvalidate']>
    for (const { model, lookups } of invalidations) await invalidate.call(this.#chain, model, lookups as never)
  }

  async #runAll(work: readonly AfterCommitWork[]): Promise<void> {
    for (const run of work) {
      try {
        await run()
      } catch (err) {
        callHook(this.#onError, err, this.#onErrorFailed)
      }
    }
  }
}
