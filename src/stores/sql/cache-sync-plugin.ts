import {
  type CompiledQuery,
  createQueryId,
  type DatabaseConnection,
  type Dialect,
  Kysely,
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryId,
  QueryNode,
  type QueryResult,
  type RootOperationNode,
  SelectModifierNode,
  type UnknownRow,
} from 'kysely'
import type { Store } from '../../contracts/base-store.js'
import { InvalidOptionError, show, UnsupportedOperationError } from '../../core/errors.js'
import type { Model } from '../../core/model.js'
import { checkOptionNames } from '../../core/options.js'
import { describeModel, type ModelInfo } from '../../core/registry.js'
import { type AfterCommitWork, connectionDialect, type TrackedConnection, trackingDialect } from './cache-sync-dialect.js'
import { planStatement, type SyncPlan, type WatchedTable } from './cache-sync-plan.js'
import { snakeCase } from './naming.js'
import { isKeyValue } from './row-mapper.js'
import { rowToAttributes } from './row-reader.js'
import { SqlStore } from './sql-store.js'

/** Options of {@link CacheSyncPlugin}. */
export interface CacheSyncOptions {
  /** The chain whose caches follow the writes (its `batchInvalidate` is called). */
  chain: Store
  /** The models whose tables are watched; statements on other tables are left alone. */
  models: readonly Model[]
  /** The SqlStore that maps those models to tables. Default: the chain's last layer, when it is a SqlStore. */
  store?: SqlStore
  /**
   * Called with a failure that cannot reject a caller: an invalidation after a COMMIT that failed
   * (the chain has reported its cache-layer failures and will repair them before reading the layer
   * again). Default: a process warning `STOCKPYLE_CACHE_SYNC`.
   */
  onError?: (error: unknown) => void
}

interface Invalidation {
  readonly model: Model
  readonly lookups: readonly object[]
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
 * of its key columns (without changing what the builder resolves to), and the objects it touched are
 * invalidated in every cache layer of the chain — at once for a statement outside a transaction, after
 * COMMIT inside one (Kysely's `transaction()`, controlled transactions and savepoints), never after a
 * rollback. `wrapDialect` is what lets the plugin see transactions. Raw SQL (`sql\`…\``) bypasses it;
 * writes by other clients need the PostgreSQL triggers of `stockpyle/invalidation`. See docs/kysely-sync.md.
 */
export class CacheSyncPlugin implements KyselyPlugin {
  readonly #chain: Store
  readonly #store: SqlStore
  readonly #watched = new Map<string, WatchedTable>()
  /**
   * Executions of watched statements, per execution: found by the statement node the plugin returned
   * (it reaches the driver in the compiled query) and then by the driver's result object. Kysely's
   * `queryId` is shared by every execution of a builder and of the builders derived from it, so
   * executions run at once would take each other's plans; by `queryId` (in order) only as a fallback,
   * when another plugin replaced the node or the result.
   */
  readonly #byNode = new WeakMap<RootOperationNode, Execution>()
  readonly #byResult = new WeakMap<object, Execution>()
  readonly #byQueryId = new WeakMap<QueryId, Execution[]>()
  readonly #onConnection = new WeakMap<TrackedConnection, Kysely<any>>()
  readonly #onError: (error: unknown) => void
  #dialect: Dialect | undefined

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
        process.emitWarning(
          `stockpyle cache sync: invalidation after COMMIT failed: ${error instanceof Error ? error.message : String(error)}`,
          {
            code: 'STOCKPYLE_CACHE_SYNC',
          },
        ))
    const column = store.camelCase ? snakeCase : (attribute: string) => attribute
    for (const model of models) {
      const info = describeModel(model)
      const table = store.tableOf(model)
      const known = this.#watched.get(table)
      const infos: ModelInfo[] = [...(known?.models ?? []), info]
      const keyColumns = [...new Set(infos.flatMap((i) => i.keys.flatMap((k) => k.fields.map(column))))]
      const primaryColumns = new Set(infos.flatMap((i) => i.primary.fields.map(column)))
      const watched = { table, models: infos, keyColumns, primaryColumns }
      this.#watched.set(table, watched)
      const defaultSchema = store.dialect === 'postgres' ? 'public' : 'main'
      if (!table.includes('.')) this.#watched.set(`${defaultSchema}.${table}`, watched)
    }
  }

  /**
   * Wraps the dialect of the Kysely instance this plugin is added to, so the plugin knows which
   * statements run inside a transaction and when it commits or rolls back. Required: writes to watched
   * tables through a Kysely whose dialect was not wrapped are refused.
   */
  wrapDialect(dialect: Dialect): Dialect {
    this.#dialect = dialect
    return trackingDialect(dialect, {
      ran: (compiled, connection) => {
        const execution = this.#execution(compiled)
        if (execution !== undefined) execution.connection = connection
      },
      before: (compiled, connection) => this.#before(compiled, connection),
      answered: (compiled, result) => {
        const execution = this.#execution(compiled)
        if (execution === undefined) return
        if (result !== undefined) this.#byResult.set(result, execution)
        else this.#forget(compiled.queryId, execution) // failed: no result will come for it
      },
      committed: (work) => this.#runAll(work),
    })
  }

  #forget(queryId: QueryId, execution: Execution): void {
    const queue = this.#byQueryId.get(queryId)
    const at = queue === undefined ? -1 : queue.indexOf(execution)
    if (at >= 0) queue?.splice(at, 1)
  }

  /** The execution a compiled statement belongs to (the first of its `queryId` not yet run, as a fallback). */
  #execution(compiled: CompiledQuery): Execution | undefined {
    return this.#byNode.get(compiled.query) ?? this.#byQueryId.get(compiled.queryId)?.find((e) => e.connection === undefined)
  }

  /** For an UPDATE of primary keys: reads the keys of the rows it will change, on its connection, just before it. */
  async #before(statement: CompiledQuery, connection: DatabaseConnection): Promise<void> {
    const execution = this.#execution(statement)
    const select = execution?.plan.before
    if (execution === undefined || select === undefined) return
    const locked: RootOperationNode =
      this.#store.dialect === 'postgres' ? QueryNode.cloneWithEndModifier(select, SelectModifierNode.create('ForUpdate')) : select
    const compiled = (this.#dialect as Dialect).createQueryCompiler().compileQuery(locked, createQueryId())
    const { rows } = await connection.executeQuery<Record<string, unknown>>(compiled)
    execution.oldRows = rows
  }

  /** @throws UnsupportedOperationError, before the statement runs, for a write on a watched table it cannot follow. */
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    const { node, plan } = planStatement(args.node, this.#watched, this.#store.dialect)
    if (plan === undefined) return args.node
    if (this.#dialect === undefined) {
      throw new UnsupportedOperationError(
        `stockpyle cache sync: a write on table \`${plan.watched.table}\` through a Kysely whose dialect was not wrapped: create it with { dialect: plugin.wrapDialect(dialect), plugins: [plugin] }`,
      )
    }
    const execution = new Execution(plan)
    this.#byNode.set(node, execution)
    const queue = this.#byQueryId.get(args.queryId)
    if (queue === undefined) this.#byQueryId.set(args.queryId, [execution])
    // A builder's compile() also comes through here and never runs: keep the fallback queue short.
    else if (queue.push(execution) > MAX_QUEUED) queue.shift()
    return node
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    const { result, queryId } = args
    const queue = this.#byQueryId.get(queryId)
    const execution = this.#byResult.get(result) ?? queue?.find((e) => e.connection !== undefined) ?? queue?.[0]
    if (execution === undefined) return result
    this.#forget(queryId, execution)
    const plan = execution.plan
    const rows = result.rows as Record<string, unknown>[]
    const old = execution.oldRows ?? []
    const keyRows = [...rows, ...old].map((row) => {
      const keys: Record<string, unknown> = {}
      for (const [alias, column] of plan.aliases) keys[column] = row[alias]
      return keys
    })
    const connection = execution.connection
    if (keyRows.length > 0) {
      const db = connection === undefined ? await this.#store.kysely() : this.#kyselyOn(connection)
      const invalidations = await this.#invalidations(plan, keyRows, db)
      const work = () => this.#invalidate(invalidations)
      if (connection?.pending !== undefined) connection.pending.push(work)
      else await work()
    }
    return this.#restore(plan, result, rows, keyRows.slice(0, rows.length))
  }

  /** The result as the statement would have given it without the plugin's RETURNING. */
  #restore(
    plan: SyncPlan,
    result: QueryResult<UnknownRow>,
    rows: Record<string, unknown>[],
    keyRows: Record<string, unknown>[],
  ): QueryResult<UnknownRow> {
    if (!plan.ownReturning) {
      return {
        ...result,
        rows: rows.map((row) => {
          const clean = { ...row }
          for (const alias of plan.aliases.keys()) delete clean[alias]
          return clean
        }),
      }
    }
    // A statement with RETURNING reports no affected-row count or insert id on SQLite: give them back.
    const restored: { -readonly [K in keyof QueryResult<UnknownRow>]: QueryResult<UnknownRow>[K] } = {
      ...result,
      rows: [],
      numAffectedRows: result.numAffectedRows ?? BigInt(rows.length),
    }
    const primary = plan.watched.models[0]?.primary.fields
    const last = keyRows.at(-1)
    if (plan.insert && result.insertId === undefined && primary?.length === 1 && last !== undefined) {
      const id = last[[...plan.watched.primaryColumns][0] as string]
      if (typeof id === 'number' && Number.isInteger(id)) restored.insertId = BigInt(id)
      else if (typeof id === 'bigint') restored.insertId = id
    }
    return restored
  }

  async #invalidations(plan: SyncPlan, keyRows: readonly Record<string, unknown>[], db: Kysely<any>): Promise<Invalidation[]> {
    const out: Invalidation[] = []
    for (const info of plan.watched.models) {
      const m = await this.#store.mappingOn(db, info.model)
      const lookups: object[] = []
      for (const row of keyRows) {
        const attributes = rowToAttributes(m, row)
        for (const spec of info.keys) {
          const values = spec.fields.map((f) => attributes[f])
          if (values.every(isKeyValue)) lookups.push(Object.fromEntries(spec.fields.map((f, i) => [f, values[i]])))
        }
      }
      if (lookups.length > 0) out.push({ model: info.model, lookups })
    }
    return out
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
        try {
          this.#onError(err)
        } catch {}
      }
    }
  }

  /** A Kysely over the connection a statement ran on (for reading table schemas inside its transaction). */
  #kyselyOn(connection: TrackedConnection): Kysely<any> {
    let db = this.#onConnection.get(connection)
    if (db === undefined) {
      db = new Kysely<any>({ dialect: connectionDialect(this.#dialect as Dialect, connection.inner) })
      this.#onConnection.set(connection, db)
    }
    return db
  }
}

/** Most executions of one `queryId` remembered for the fallback (statements of one builder at once). */
const MAX_QUEUED = 64

/** One execution of a watched statement: its plan, the connection it ran on, the old keys read before it. */
class Execution {
  connection: TrackedConnection | undefined = undefined
  oldRows: readonly Record<string, unknown>[] | undefined = undefined
  constructor(readonly plan: SyncPlan) {}
}
