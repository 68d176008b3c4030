import type { ModelInfo } from './registry.js'

/**
 * `obj`'s primary key as a lookup of `info`'s model (`{id: 10}`): the values of its primary key
 * attributes as they are (`undefined` for one that is missing), in the key's field order.
 */
export function primaryLookup(info: ModelInfo, obj: object): Record<string, unknown> {
  const source = obj as Record<string, unknown>
  const lookup: Record<string, unknown> = {}
  for (const field of info.primary.fields) lookup[field] = source[field]
  return lookup
}
