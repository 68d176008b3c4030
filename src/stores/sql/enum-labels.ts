/**
 * The labels of a PostgreSQL enum type, as introspection read them (and as read again since, see
 * `rereadLabels` in enum-label-checks.ts): a key value that is not one of them matches no row, so a
 * lookup by it is a miss without a query, and a put of it is refused before anything is sent. One
 * instance per enum type per introspected table, shared by every column of the table of that type
 * (also through domains), and by every connection and call of the store: it holds only labels read
 * outside a transaction (committed ones); a read inside one gives a {@link LabelView} for its call.
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

/**
 * The labels one call read inside a transaction (on its connection, where labels it added and has not
 * committed show too): the shared {@link EnumLabels} of a type → those read, for that call only.
 * `undefined`: the shared labels hold.
 */
export type LabelView = ReadonlyMap<EnumLabels, EnumLabels>

/** The labels a column whose shared labels are `shared` (its `enumLabels`) is checked against in a call with `view`; `undefined` for a column that is not an enum. */
export function labelsFor(shared: EnumLabels | undefined, view: LabelView | undefined): EnumLabels | undefined {
  return shared === undefined || view === undefined ? shared : (view.get(shared) ?? shared)
}
