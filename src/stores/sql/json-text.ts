import { SerializationError } from '../../core/errors.js'
import { attributeToTaggedJson } from './json-codec.js'

/** A `\u0000` escape in JSON text: its backslash is not itself escaped (an even number of backslashes before it). */
const NUL_ESCAPE = /(^|[^\\])(\\\\)*\\u0000/

/**
 * The JSON text SqlStore writes for `value` into a JSON column (or a `json[]`/`jsonb[]` element): its
 * tagged JSON (see json-codec.ts). `where` names the value in messages; `jsonb`: the text goes into a
 * PostgreSQL `jsonb`, which cannot store a NUL character (strings and RegExp sources holding one are
 * tagged, so the check only guards against a value the tagging missed).
 * @throws SerializationError for a value tagged JSON cannot hold, or a NUL character bound for jsonb.
 */
export function jsonText(value: unknown, where: string, jsonb: boolean): string {
  const text = JSON.stringify(attributeToTaggedJson(value, where))
  if (jsonb && text.includes('\\u0000') && NUL_ESCAPE.test(text)) {
    throw new SerializationError(`${where} holds a NUL character in a RegExp's source, which PostgreSQL jsonb cannot store`)
  }
  return text
}
