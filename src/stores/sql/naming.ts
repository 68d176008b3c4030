import { InvalidOptionError, SchemaError, show } from '../../core/errors.js'
import type { Model } from '../../core/model.js'
import type { ModelInfo } from '../../core/registry.js'

/**
 * How SqlStore finds a model's table: a `Map` from model class to table name, a record from the
 * model's type tag (`stockpyleName` or class name) to table name, or a function of the model (return
 * `undefined` to fall back to the default).
 */
export type TableNaming =
  | ReadonlyMap<Model, string>
  | Readonly<Record<string, string>>
  | ((model: Model, typeTag: string) => string | undefined)

/** A table name: `name` or `schema.name`, each part a letter or `_` followed by letters, digits or `_`, at most 63 characters. */
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$/

/** True when `name` is a valid table name (see {@link TABLE_NAME}). */
export function isValidTableName(name: unknown): name is string {
  return typeof name === 'string' && TABLE_NAME.test(name)
}

/** `ConformanceUser` → `conformance_user`, `orgId` → `org_id`, `HTTPServer` → `http_server`. */
export function snakeCase(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toLowerCase()
}

/** `org_id` → `orgId`, `created_at` → `createdAt`; names without `_` are unchanged. */
export function camelCase(name: string): string {
  return name.replace(/_+([a-z0-9])/g, (_m, c: string) => c.toUpperCase())
}

/** English plural of a snake_case word's last part: `user` → `users`, `box` → `boxes`, `city` → `cities`. */
export function pluralize(word: string): string {
  if (/(s|x|z|ch|sh)$/.test(word)) return `${word}es`
  if (/[^aeiou]y$/.test(word)) return `${word.slice(0, -1)}ies`
  return `${word}s`
}

/** The default table of a model: its type tag in snake_case, pluralized (`ConformanceUser` → `conformance_users`). */
export function defaultTableName(typeTag: string): string {
  return pluralize(snakeCase(typeTag.replace(/[^A-Za-z0-9_]/g, '_')))
}

/**
 * Validates the `tables` option: `undefined`, a function, a `Map` of model classes, or a plain record
 * (not an array, a Date or another class's instance).
 * @throws InvalidOptionError naming the option and the bad entry.
 */
export function checkTableNaming(store: string, tables: unknown): TableNaming | undefined {
  if (tables === undefined || typeof tables === 'function') return tables as TableNaming | undefined
  // (an array is no record: `['users']` would map a model named "0")
  const prototype = typeof tables === 'object' && tables !== null ? Object.getPrototypeOf(tables) : undefined
  if (!(tables instanceof Map) && prototype !== Object.prototype && prototype !== null) {
    throw new InvalidOptionError(`${store}: option \`tables\` must be a Map, a record or a function, got ${show(tables)}`)
  }
  const entries: [unknown, unknown][] = tables instanceof Map ? [...tables.entries()] : Object.entries(tables as object)
  for (const [model, name] of entries) {
    if (tables instanceof Map && (typeof model !== 'function' || !Array.isArray((model as unknown as Model).stockpyleKeys))) {
      throw new InvalidOptionError(`${store}: option \`tables\` maps ${show(model)}, which is not a model class`)
    }
    if (!isValidTableName(name)) {
      throw new InvalidOptionError(
        `${store}: option \`tables\` maps ${show(typeof model === 'function' ? model.name : model)} to ${show(name)}, which is not a valid table name (letters, digits and _, optionally schema.table)`,
      )
    }
  }
  return tables as TableNaming
}

/**
 * The table of a model: the `tables` option, else the model's own `static stockpyleTable`, else
 * {@link defaultTableName}. @throws StockpyleError (`E_SCHEMA`) for an invalid name.
 */
export function tableNameOf(store: string, info: ModelInfo, tables: TableNaming | undefined): string {
  let name: unknown
  if (typeof tables === 'function') name = tables(info.model, info.name)
  else if (tables instanceof Map) name = tables.get(info.model)
  else if (tables !== undefined && Object.hasOwn(tables, info.name)) name = (tables as Record<string, string>)[info.name]
  if (name === undefined && Object.hasOwn(info.model, 'stockpyleTable')) name = (info.model as { stockpyleTable?: unknown }).stockpyleTable
  if (name === undefined) name = defaultTableName(info.name)
  if (!isValidTableName(name)) {
    throw new SchemaError(
      `${store} store: model \`${info.name}\` maps to the table ${show(name)}, which is not a valid table name (letters, digits and _, optionally schema.table)`,
    )
  }
  return name
}
