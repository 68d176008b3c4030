import { compiledConstructor } from '../../core/instance-shapes.js'
import type { ColumnInfo } from './column-kind.js'
import { arrayFromDriver } from './pg-array-value.js'
import { columnWhere, fromColumnValue, type ModelMapping, readJson } from './row-mapper.js'

type Convert = ((raw: unknown) => unknown) | undefined

/** How the rows of one result shape (the same columns in the same order) become objects. */
interface RowPlan {
  /** Column names, in the row's order. */
  readonly names: readonly string[]
  /** The attribute of each column. */
  readonly attributes: readonly string[]
  /** The conversion of each column's driver value; `undefined` where the value is kept as it is. */
  readonly converts: readonly Convert[]
  /** An attribute is `__proto__`: assign with defineProperty. */
  readonly guarded: boolean
  /**
   * Makes the model's instance from a row, compiled on first use (`undefined`: not yet; `null`: not
   * possible, see {@link compiledConstructor}): ~13x faster than creating the object and assigning its
   * properties one by one, and the instance holds every property in the object.
   */
  make: RowConstructor | null | undefined
}

type RowConstructor = new (row: Readonly<Record<string, unknown>>, converts: readonly Convert[]) => object

// One plan per mapping and row shape: a query returns rows of one shape, so checking the last plan
// against each row (a walk over its keys, no allocation) replaces the per-row Object.keys, the two
// Map lookups per column and the per-value message strings. A mapping's rows come in a few shapes
// (every column from a read; the columns a put reads back): the plans of up to MAX_SHAPES are kept,
// so that alternating reads and puts do not compile a row constructor again at each switch.
interface Plans {
  last: RowPlan
  readonly byShape: Map<string, RowPlan>
}
const plans = new WeakMap<ModelMapping, Plans>()
const MAX_SHAPES = 16

function converter(m: ModelMapping, column: ColumnInfo | undefined): Convert {
  if (column === undefined) return undefined
  switch (column.kind) {
    case 'text':
      return (raw) => raw ?? null
    case 'integer':
    case 'real':
    case 'numeric':
      return (raw) => (typeof raw === 'number' ? raw : fromColumnValue(m, column, raw))
    case 'json': {
      const at = columnWhere(m, column)
      return (raw) => (raw === null || raw === undefined ? null : readJson(m.dialect, at, raw))
    }
    default: {
      if (column.elementType === undefined) return (raw) => fromColumnValue(m, column, raw)
      // an array column: what messages and the bytes option need is known once per plan
      const at = columnWhere(m, column)
      const buffers = m.bufferColumns.has(column.name)
      return (raw) => (Array.isArray(raw) ? arrayFromDriver(column, raw, buffers, at) : fromColumnValue(m, column, raw))
    }
  }
}

function planFor(m: ModelMapping, row: Readonly<Record<string, unknown>>): RowPlan {
  const known = plans.get(m)
  if (known !== undefined) {
    const names = known.last.names
    let i = 0
    let same = true
    for (const name in row) {
      if (names[i] !== name) {
        same = false
        break
      }
      i++
    }
    if (same && i === names.length) return known.last
  }
  const names = Object.keys(row)
  const shape = names.join('\u0000')
  let plan = known?.byShape.get(shape)
  if (plan === undefined) {
    const attributes = names.map((name) => m.attributeOf.get(name) ?? name)
    const cached = (known?.byShape.size ?? 0) < MAX_SHAPES
    plan = {
      names,
      attributes,
      converts: names.map((name) => converter(m, m.schema.columns.get(name))),
      guarded: attributes.includes('__proto__'),
      // past the bound a plan lives for one query: compiling for it would cost more than it saves
      make: cached ? undefined : null,
    }
    if (known === undefined) plans.set(m, { last: plan, byShape: new Map([[shape, plan]]) })
    else if (cached) known.byShape.set(shape, plan)
  }
  if (known !== undefined) known.last = plan
  return plan
}

/**
 * Assigns a row's converted values (`plan`: its shape's) to `target`; `define`: as own data properties with defineProperty
 * (for an instance, whose class may have an accessor or a read-only property of that name), else by
 * assignment (a plain record; `__proto__` is still defined).
 */
function fill(
  plan: RowPlan,
  row: Readonly<Record<string, unknown>>,
  target: Record<string, unknown>,
  define: boolean,
): Record<string, unknown> {
  const { names, attributes, converts, guarded } = plan
  for (let i = 0; i < names.length; i++) {
    const raw = row[names[i] as string]
    const convert = converts[i]
    const value = convert === undefined ? raw : convert(raw)
    const attribute = attributes[i] as string
    if (define || (guarded && attribute === '__proto__')) {
      Object.defineProperty(target, attribute, { value, enumerable: true, writable: true, configurable: true })
    } else target[attribute] = value
  }
  return target
}

/** The attribute values of a row (every column, converted), as a plain record. */
export function rowToAttributes(m: ModelMapping, row: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return fill(planFor(m, row), row, {}, false)
}

/** A new instance of the model (prototype restored, constructor not called) holding a row's values. */
export function rowToObject(m: ModelMapping, row: Readonly<Record<string, unknown>>): object {
  const plan = planFor(m, row)
  if (plan.make === undefined) plan.make = compileMake(m.info.model.prototype as object, plan)
  if (plan.make !== null) return new plan.make(row, plan.converts)
  return fill(plan, row, Object.create(m.info.model.prototype as object) as Record<string, unknown>, true)
}

/** The compiled {@link RowPlan.make} of `plan`: one assignment per column, in the row's order. */
function compileMake(prototype: object, plan: RowPlan): RowConstructor | null {
  // (an attribute `__proto__` is refused there: such a plan is filled by defineProperty)
  const body = plan.names
    .map((name, i) => {
      const read = `r[${JSON.stringify(name)}]`
      return `this[${JSON.stringify(plan.attributes[i])}]=${plan.converts[i] === undefined ? read : `c[${i}](${read})`};`
    })
    .join('')
  return compiledConstructor<[Readonly<Record<string, unknown>>, readonly Convert[]]>(prototype, plan.attributes, 'r,c', body) ?? null
}
