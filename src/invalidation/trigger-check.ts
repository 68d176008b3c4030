import { SchemaError, StockpyleError } from '../core/errors.js'
import { quoteIdent, quoteLiteral } from '../stores/sql/pg-driver.js'
import { ROW_TRIGGER, TRUNCATE_TRIGGER } from './invalidation-triggers.js'
import type { WatchedTable } from './sql-tables.js'

/** One row of {@link TriggerCheck.query}: what the catalog says about one watched table. */
interface CatalogRow {
  /** The table's quoted name, as asked. */
  readonly name: string
  /** The table's OID as text; null when no table has that name (any more). */
  readonly oid: string | null
  /** `tgenabled` of each trigger (`O`, `A`, `R`, `D`); null when the table has no such trigger. */
  readonly row_enabled: string | null
  readonly truncate_enabled: string | null
  /** The trigger's function notifies the watched channel. */
  readonly row_channel: boolean
  readonly truncate_channel: boolean
  /** A partitioned table's partitions at every level; null for any other table. */
  readonly partitions: readonly PartitionRow[] | null
}

/** One partition of a watched partitioned table, as {@link CatalogRow.partitions} lists it. */
interface PartitionRow {
  readonly oid: string
  /** Its schema-qualified name. */
  readonly name: string
  /** `tgenabled` of its clone of the row trigger; null when it has none. */
  readonly row: string | null
  /** `tgenabled` of its own TRUNCATE trigger; null when it has none (attached after the install). */
  readonly truncate: string | null
}

/** How many partitions a report names (the others are counted). */
const PARTITIONS_NAMED = 5

/** What a check found, for the watcher to act on. */
export interface CheckOutcome {
  /** Problems to report through `onError` (each missing trigger once, until it is back). */
  readonly reports: readonly StockpyleError[]
  /** Memory layers must be cleared: changes of a table were or are not notified. */
  readonly clear: boolean
  /** A table was recreated: introspect the tables again (its key columns may have changed). */
  readonly redescribe: boolean
  /** The tables whose triggers are missing now, as one error (what `ready()` rejects with); undefined when none. */
  readonly missing: SchemaError | undefined
}

/** What the previous check saw of a table. */
interface Seen {
  readonly oid: string | undefined
  readonly partitions: ReadonlyMap<string, string>
}

/**
 * Checks, in one catalog query, that each watched table still has both invalidation triggers, enabled
 * and notifying the watcher's channel — for a partitioned table also each partition's clone of the row
 * trigger (the one that fires for its rows) and its TRUNCATE trigger where it has one, enabled for every
 * session — and notices what happened to a table between two checks without
 * a notification: the table was recreated (its OID changed: a migration's DROP + CREATE, a rename-swap)
 * or a partition of it was dropped or detached (its rows left the table). Tables are looked up by name
 * at each check.
 */
export class TriggerCheck {
  readonly #name: string
  readonly #channel: string
  /** What the trigger function of this channel contains (installInvalidationTriggers writes it so). */
  readonly #notifies: string
  /** The watched tables, one entry per table: its quoted name and the models mapped to it. */
  #tables: readonly { readonly qualified: string; readonly quoted: string; readonly models: string }[] = []
  readonly #seen = new Map<string, Seen>()
  /** The problem last reported for each table whose triggers are missing. */
  readonly #reported = new Map<string, string>()

  /**
   * @param name the watcher's name, for messages.
   * @param channel the channel the triggers must notify.
   */
  constructor(name: string, channel: string) {
    this.#name = name
    this.#channel = channel
    this.#notifies = `pg_notify(${quoteLiteral(channel)}, payload)`
  }

  /** Sets the tables to check (after the watcher described them). */
  watch(tables: Iterable<readonly WatchedTable[]>): void {
    const list: { qualified: string; quoted: string; models: string }[] = []
    for (const same of tables) {
      const first = same[0]
      if (first === undefined) continue
      const names = same.map((t) => `\`${t.info.name}\``).join(', ')
      list.push({
        qualified: first.qualified,
        quoted: `${quoteIdent(first.schema)}.${quoteIdent(first.relname)}`,
        models: `${same.length === 1 ? 'model' : 'models'} ${names}`,
      })
    }
    this.#tables = list
  }

  /** The catalog query for every watched table (one row per table); undefined before {@link watch}. */
  query(): { readonly text: string; readonly values: readonly unknown[] } | undefined {
    if (this.#tables.length === 0) return undefined
    return { text: CATALOG_QUERY, values: [this.#tables.map((t) => t.quoted), this.#notifies, ROW_TRIGGER, TRUNCATE_TRIGGER] }
  }

  /** Compares what {@link query} returned with the previous check. Never throws. */
  review(rows: readonly Record<string, unknown>[]): CheckOutcome {
    const reports: StockpyleError[] = []
    const missing: string[] = []
    let clear = false
    let redescribe = false
    // by name: the tables may have been described again since the query was sent
    const byName = new Map((rows as unknown as readonly CatalogRow[]).map((r) => [r.name, r]))
    for (const table of this.#tables) {
      const row = byName.get(table.quoted)
      if (row === undefined) continue
      const label = `table \`${table.qualified}\` (${table.models})`
      const oid = row.oid ?? undefined
      const partitions = new Map((row.partitions ?? []).map((p) => [p.oid, p.name]))
      const before = this.#seen.get(table.qualified)
      // a table gone keeps its last OID: one that comes back is a recreated one
      this.#seen.set(table.qualified, { oid: oid ?? before?.oid, partitions })
      const kept = `memory layers were cleared; shared cache layers keep their copies until they expire`
      if (before?.oid !== undefined && oid !== undefined && before.oid !== oid) {
        clear = redescribe = true
        reports.push(
          new StockpyleError(
            `${this.#name}: ${label} was recreated since the last check (a migration's DROP and CREATE, or a rename swapping tables): its rows may have changed without notification; ${kept}`,
          ),
        )
      } else if (before !== undefined && oid !== undefined) {
        const gone = [...before.partitions].filter(([p]) => !partitions.has(p)).map(([, name]) => `\`${name}\``)
        if (gone.length > 0) {
          clear = true
          reports.push(
            new StockpyleError(
              `${this.#name}: partition ${gone.join(', ')} of ${label} was dropped or detached since the last check: its rows left the table without notification (TRUNCATE a partition in the transaction that drops or detaches it to invalidate at once); ${kept}`,
            ),
          )
        }
      }
      // the table's own triggers, then those of its partitions: the row trigger that fires is the clone
      // on the partition holding the row, and a TRUNCATE of a partition fires only its own trigger
      const broken: string[] = []
      const originOnly: string[] = []
      if (oid === undefined) broken.push(`${label} does not exist`)
      else {
        const problems = this.#problems(row)
        if (problems.length > 0) broken.push(`${label} ${problems.join(' and ')}`)
        const origin = originTriggers(row.row_enabled, row.truncate_enabled)
        if (origin !== undefined) originOnly.push(`${label} has ${origin}`)
        const partitionsBroken: string[] = []
        for (const p of row.partitions ?? []) {
          const its = partitionProblems(p)
          const subject = `partition \`${p.name}\` of ${label}`
          if (its.length > 0) partitionsBroken.push(`${subject} ${its.join(' and ')}`)
          const itsOrigin = originTriggers(p.row, p.truncate)
          if (itsOrigin !== undefined) originOnly.push(`${subject} has ${itsOrigin}`)
        }
        broken.push(...named(partitionsBroken, `of ${label} with a trigger missing, disabled or firing only in replica sessions`))
      }
      let message: string
      if (broken.length > 0) {
        clear = true
        const one = broken.length === 1
        message = `${broken.join('; ')}: ${one ? 'its' : 'their'} changes are not notified, so memory layers are cleared at every check until ${one ? 'it is' : 'they are'} fixed; run installInvalidationTriggers again`
        missing.push(message)
      } else if (originOnly.length > 0) {
        // notified, except for writes of sessions in replica mode: worth a report, not a cleared cache at every check
        message = `${named(originOnly, `of ${label} likewise`).join(' and ')} firing only in sessions with session_replication_role = origin (installed by an older release, or re-enabled with a plain ENABLE TRIGGER): rows written by pg_restore --disable-triggers, bulk loads in replica mode or logical replication are not notified; run installInvalidationTriggers again`
      } else {
        this.#reported.delete(table.qualified)
        continue
      }
      if (this.#reported.get(table.qualified) === message) continue
      this.#reported.set(table.qualified, message)
      reports.push(new SchemaError(`${this.#name}: ${message}`))
    }
    const error = missing.length === 0 ? undefined : new SchemaError(`${this.#name}: ${missing.join('; ')}`)
    return { reports, clear, redescribe, missing: error }
  }

  /** What is wrong with a table's triggers; `[]` when both fire for every write and notify the channel. */
  #problems(row: CatalogRow): string[] {
    const problems: string[] = []
    for (const [trigger, enabled, notifies] of [
      [ROW_TRIGGER, row.row_enabled, row.row_channel],
      [TRUNCATE_TRIGGER, row.truncate_enabled, row.truncate_channel],
    ] as const) {
      if (enabled === null) problems.push(`has no trigger \`${trigger}\``)
      else if (enabled === 'D') problems.push(`has trigger \`${trigger}\` disabled`)
      else if (enabled === 'R') problems.push(`has trigger \`${trigger}\` firing only in sessions with session_replication_role = replica`)
      else if (!notifies) problems.push(`has trigger \`${trigger}\` calling a function that does not notify channel \`${this.#channel}\``)
    }
    return problems
  }
}

/**
 * What is wrong with the triggers of a partition of a watched table: its clone of the row trigger
 * missing, disabled or replica-only; its TRUNCATE trigger, where it has one, disabled or replica-only.
 * Their function is the table's (a clone's cannot differ; the TRUNCATE triggers are installed with the
 * table's). `[]` when they fire for every write.
 */
function partitionProblems(p: PartitionRow): string[] {
  const problems: string[] = []
  if (p.row === null) problems.push(`has no trigger \`${ROW_TRIGGER}\``)
  for (const [trigger, enabled] of [
    [ROW_TRIGGER, p.row],
    [TRUNCATE_TRIGGER, p.truncate],
  ] as const) {
    if (enabled === 'D') problems.push(`has trigger \`${trigger}\` disabled`)
    else if (enabled === 'R') problems.push(`has trigger \`${trigger}\` firing only in sessions with session_replication_role = replica`)
  }
  return problems
}

/** The triggers of a table or partition enabled for origin sessions only (`trigger … and trigger …`); undefined when none. */
function originTriggers(row: string | null, truncate: string | null): string | undefined {
  const origin = [ROW_TRIGGER, TRUNCATE_TRIGGER].filter((_, j) => (j === 0 ? row : truncate) === 'O')
  return origin.length === 0 ? undefined : origin.map((t) => `trigger \`${t}\``).join(' and ')
}

/** The first {@link PARTITIONS_NAMED} of `items`, and how many more partitions (`… more partitions ${rest}`). */
function named(items: readonly string[], rest: string): string[] {
  if (items.length <= PARTITIONS_NAMED + 1) return [...items]
  return [...items.slice(0, PARTITIONS_NAMED), `${items.length - PARTITIONS_NAMED} more partitions ${rest}`]
}

/**
 * $1: the tables' quoted names; $2: what their trigger function contains when it notifies the channel;
 * $3, $4: the trigger names. A partitioned table's partitions are listed at every level, with the
 * `tgenabled` of their clone of the row trigger and of their TRUNCATE trigger.
 */
const CATALOG_QUERY = `select l.name, c.oid::int8::text as oid,
    r.tgenabled::text as row_enabled, coalesce(position($2 in rp.prosrc) > 0, false) as row_channel,
    t.tgenabled::text as truncate_enabled, coalesce(position($2 in tp.prosrc) > 0, false) as truncate_channel,
    case when c.relkind = 'p' then (
      with recursive tree(oid) as (
        select i.inhrelid from pg_catalog.pg_inherits i where i.inhparent = c.oid
        union all
        select i.inhrelid from pg_catalog.pg_inherits i join tree on i.inhparent = tree.oid)
      select coalesce(json_agg(json_build_object('oid', tree.oid::int8::text, 'name', n.nspname || '.' || p.relname,
          'row', pr.tgenabled::text, 'truncate', pt.tgenabled::text)), '[]')
      from tree join pg_catalog.pg_class p on p.oid = tree.oid join pg_catalog.pg_namespace n on n.oid = p.relnamespace
      left join pg_catalog.pg_trigger pr on pr.tgrelid = tree.oid and pr.tgname = $3
      left join pg_catalog.pg_trigger pt on pt.tgrelid = tree.oid and pt.tgname = $4)
    end as partitions
  from unnest($1::text[]) with ordinality as l(name, ord)
  left join pg_catalog.pg_class c on c.oid = to_regclass(l.name)
  left join pg_catalog.pg_trigger r on r.tgrelid = c.oid and r.tgname = $3
  left join pg_catalog.pg_proc rp on rp.oid = r.tgfoid
  left join pg_catalog.pg_trigger t on t.tgrelid = c.oid and t.tgname = $4
  left join pg_catalog.pg_proc tp on tp.oid = t.tgfoid
  order by l.ord`
