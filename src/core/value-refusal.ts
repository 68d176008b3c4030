import { SerializationError, show } from './errors.js'
import { checkValue, droppedExtras, MAX_DEPTH, modelOf, type TooLarge, TYPED_PROTOTYPES } from './exact-values.js'
import type { Model } from './model.js'
import { describeModel } from './registry.js'
import { elementIndices } from './sparse-arrays.js'
import { tooLargeText } from './value-limits.js'

/**
 * Why a value ./exact-values.ts refused cannot be stored, as a {@link SerializationError} naming the
 * attribute path: found by a second, slower walk, run only for a value the scan refused (and that is
 * within the bounds of ./value-limits.ts, so the walk is bounded too).
 */

function pathOf(parent: string, key: string): string {
  if (parent === '') return key
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${parent}.${key}` : `${parent}[${JSON.stringify(key)}]`
}

/** Why `value` at `path` cannot be stored, or `undefined` when it and everything in it can. */
function problem(value: unknown, path: string, ancestors: object[]): string | undefined {
  if (typeof value === 'function') return `\`${path}\` is a function (${show(value)}), which is not data`
  if (typeof value === 'symbol') return `\`${path}\` is a symbol (${show(value)}), which is not data`
  if (typeof value !== 'object' || value === null) return undefined
  if (ancestors.includes(value)) return `\`${path}\` refers back to an object that contains it (a cycle)`
  if (ancestors.length >= MAX_DEPTH) return `\`${path}\` is nested more than ${MAX_DEPTH} levels deep`
  const proto = Object.getPrototypeOf(value)
  const extras = droppedExtras(value, proto)
  if (extras !== undefined) return `\`${path}\` is ${extras}, which would not be stored with it`
  const children: [string, unknown][] = []
  if (proto === Object.prototype || proto === null || (proto !== undefined && modelOf(proto) !== undefined)) {
    for (const key of Object.keys(value)) children.push([pathOf(path, key), (value as Record<string, unknown>)[key]])
  } else if (proto === Array.prototype) {
    const a = value as unknown[]
    for (const i of elementIndices(a)) children.push([`${path}[${i}]`, a[i]])
  } else if (proto === Map.prototype) {
    let i = 0
    for (const [k, v] of value as Map<unknown, unknown>) {
      children.push([`${path} (key of entry ${i++})`, k], [`${path}.get(${show(k).slice(1, -1)})`, v])
    }
  } else if (proto === Set.prototype) {
    let i = 0
    for (const v of value as Set<unknown>) children.push([`${path} (member ${i++})`, v])
  } else if (!(proto === Date.prototype || TYPED_PROTOTYPES.has(proto) || proto === ArrayBuffer.prototype || proto === RegExp.prototype)) {
    const name = (proto as { constructor?: { name?: string } }).constructor?.name || 'anonymous'
    return `\`${path}\` is an instance of class \`${name}\`, which is not a model: store plain data, or make it a model (static stockpyleKeys) so it comes back as one`
  }
  ancestors.push(value)
  try {
    for (const [childPath, child] of children) {
      const found = problem(child, childPath, ancestors)
      if (found !== undefined) return found
    }
  } finally {
    ancestors.pop()
  }
  return undefined
}

/** The error for a value checkValue (./exact-values.ts) refused, naming the path (model attributes at the top). */
export function refusal(value: unknown, context: string, cause?: unknown): SerializationError {
  const top = value !== null && typeof value === 'object' && modelOf(Object.getPrototypeOf(value) ?? {}) !== undefined
  let found: string | undefined
  try {
    found = top
      ? Object.keys(value).reduce<string | undefined>(
          (f, key) => f ?? problem((value as Record<string, unknown>)[key], key, [value]),
          undefined,
        )
      : problem(value, 'value', [])
  } catch {
    found = undefined
  }
  const reason = found ?? `the object cannot be encoded${cause instanceof Error ? ` (${cause.message})` : ''}`
  return new SerializationError(`${context}: ${reason}`, cause === undefined ? {} : { cause })
}

/** The error for a value checkValue (./exact-values.ts) found past a bound of ./value-limits.ts, naming the attribute under which it was passed. */
export function tooLargeRefusal(found: TooLarge, context: string): SerializationError {
  const what = found.attribute === undefined ? 'the object' : `\`${found.attribute}\``
  return new SerializationError(`${context}: ${what} ${tooLargeText(found.containers)}`)
}

/** `context` and the model's name of `value`, for messages (``c store put of model `User` ``). */
export function refusalContext(value: object, context: string): string {
  const ctor = (Object.getPrototypeOf(value) as { constructor?: unknown } | null)?.constructor
  let name: string
  try {
    name = describeModel(ctor as Model).name
  } catch {
    name = (ctor as { name?: string } | undefined)?.name ?? 'object'
  }
  return `${context} of model \`${name}\``
}

/**
 * Checks that the record codec would accept `value`, without encoding it: the walk of
 * ./exact-values.ts that decides what is stored exactly or refused, for a write that must refuse bad
 * input before anything is written and encodes later (a chain's put encodes after the database write,
 * which may change the objects).
 * @throws SerializationError as encoding would, naming `context`, the model and the attribute path.
 */
export function checkEncodable(value: object, context: string): void {
  let check: ReturnType<typeof checkValue>
  try {
    check = checkValue(value)
  } catch (err) {
    throw refusal(value, refusalContext(value, context), err)
  }
  if (typeof check === 'object') throw tooLargeRefusal(check, refusalContext(value, context))
  if (check === 'refuse') throw refusal(value, refusalContext(value, context))
}
