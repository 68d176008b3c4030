/**
 * The labels of a PostgreSQL enum type, as introspection read them (and as read again since, see
 * `rereadLabels` in enum-label-checks.ts): a key value that is not one of them matches no row, so a
 * lookup by it is a miss without a query, and a put of it is refused before anything is sent. One
 * instance per enum type per introspected table, shared by every column of the table of that type
 * (also through domains).
 */
export class EnumLabels {
  /** The type's oid, as text. */
  readonly oid: string
  /** The type's name as PostgreSQL spells it (`format_type`: schema-qualified when not on the search_path), for messages. */
  readonly type: string
  #labels: ReadonlySet<string>

  constructor(oid: string, type: string, labels: readonly string[]) {
    this.oid = oid
    this.type = type
    this.#labels = new Set(labels)
  }

  /** Whether `label` is one of the labels: exactly, case-sensitively, as PostgreSQL compares enum input. */
  has(label: string): boolean {
    return this.#labels.has(label)
  }

  /** The labels, in the type's order. */
  get labels(): readonly string[] {
    return [...this.#labels]
  }

  /** @internal Replaces the labels by those the catalog holds now (see `rereadLabels` in enum-label-checks.ts). */
  replace(labels: readonly string[]): void {
    this.#labels = new Set(labels)
  }
}
