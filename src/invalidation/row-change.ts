/**
 * What an invalidation trigger sends on its channel for one row change (JSON):
 * `{"table": "schema.table", "op": "INSERT" | "UPDATE" | "DELETE", "pk": {column: text}, "old_pk"?: {column: text}}`,
 * `{"table", "op": "TRUNCATE"}` for a TRUNCATE, or `{"table", "op", "overflow": true}` when the row
 * cannot be named: its primary key does not fit into one notification, or (with `"error"`, the
 * database's message) the trigger could not read the key columns it was installed with (one was
 * renamed or dropped since). Primary-key values are the text the column type's output
 * function prints (`format('%s', col)`: what a query result carries to the driver; floats printed
 * exactly), so int8 values keep every digit.
 */
export interface RowChange {
  /** The changed table, schema-qualified as PostgreSQL resolved it: `public.users` (for a row of a partition, the partitioned table the triggers were installed on). */
  readonly table: string
  readonly op: 'INSERT' | 'UPDATE' | 'DELETE' | 'TRUNCATE'
  /** The primary key of the row (the new one for an UPDATE), by column, in text form; absent for TRUNCATE and overflow. */
  readonly pk?: Readonly<Record<string, string | null>>
  /** An UPDATE that changed the primary key: the old one. */
  readonly old_pk?: Readonly<Record<string, string | null>>
  /** The row cannot be named: its key was too long for a notification, or the trigger could not read it (`error`). */
  readonly overflow?: true
  /** With `overflow`: why the trigger could not read the key columns (`record "new" has no field "id"`). */
  readonly error?: string
}

const OPS = new Set(['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'])

function isKeyRecord(value: unknown): value is Record<string, string | null> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((v) => typeof v === 'string' || v === null)
  )
}

/** Parses a trigger notification; `undefined` when it is not a {@link RowChange}. */
export function parseRowChange(payload: string): RowChange | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(payload)
  } catch {
    return undefined
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined
  const { table, op, pk, old_pk, overflow, error } = parsed as Record<string, unknown>
  if (typeof table !== 'string' || typeof op !== 'string' || !OPS.has(op)) return undefined
  if (op === 'TRUNCATE') return { table, op }
  if (overflow === true) return { table, op: op as RowChange['op'], overflow, ...(typeof error === 'string' ? { error } : {}) }
  if (!isKeyRecord(pk) || (old_pk !== undefined && old_pk !== null && !isKeyRecord(old_pk))) return undefined
  return { table, op: op as RowChange['op'], pk, ...(isKeyRecord(old_pk) ? { old_pk } : {}) }
}

/** What a change without a key (TRUNCATE, overflow) is and why it cannot be targeted, for a report. */
export function untargetable(change: RowChange): string {
  const table = `table \`${change.table}\``
  if (change.op === 'TRUNCATE') return `a TRUNCATE of ${table} cannot be targeted`
  if (change.error === undefined) return `a row of ${table} whose primary key is too long for a notification cannot be targeted`
  return `${change.op === 'DELETE' ? 'a' : 'an'} ${change.op} of a row of ${table} cannot be targeted: the trigger could not read its key columns (${change.error}); run installInvalidationTriggers again after renaming, dropping or replacing key columns`
}
