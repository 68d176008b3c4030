import { SerializationError, show } from './errors.js'
import { checkValue, droppedExtras, MAX_DEPTH, modelOf, type TooLarge, TYPED_PROTOTYPES } from './exact-values.js'
import type { Model } from './model.js'
import { describeModel } from './registry.js'
import { elementIndices } from './sparse-arrays.js'
import { messageOf } from './unavailable-unless-ours.js'
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

/** What is wrong at one place inside a value. */
export interface ValueProblem {
  /** Where, below the value walked (`prefs.callback`, `[1].bad`, `get("k")`); `''` for that value itself. */
  readonly path: string
  /** What is wrong there: a phrase that follows the path (`is a function (…), which is not data`). */
  readonly what: string
  /** The error that reading there threw (a getter, a Proxy's trap); `undefined` for other problems. */
  readonly cause?: unknown
}

/** Reading `key` of `container` (at `path`) threw `err`: said as a getter's error when it has one, as any read's otherwise. */
function unreadable(path: string, err: unknown, container?: object, key?: string): ValueProblem {
  let getter = false
  try {
    getter = container !== undefined && key !== undefined && typeof Object.getOwnPropertyDescriptor(container, key)?.get === 'function'
  } catch {
    getter = false
  }
  return { path, what: `could not be read: ${getter ? 'its getter' : 'reading it'} threw (${messageOf(err)})`, cause: err }
}

/**
 * The children of `value` (of prototype `proto`, at `path`) as [path, value] pairs, each read in turn;
 * a {@link ValueProblem} when reading one throws (a getter), naming its path.
 */
function childrenOf(value: object, proto: object | null, path: string): [string, unknown][] | ValueProblem {
  const children: [string, unknown][] = []
  if (proto === Object.prototype || proto === null || modelOf(proto) !== undefined) {
    for (const key of Object.keys(value)) {
      const at = pathOf(path, key)
      try {
        children.push([at, (value as Record<string, unknown>)[key]])
      } catch (err) {
        return unreadable(at, err, value, key)
      }
    }
  } else if (proto === Array.prototype) {
    const a = value as unknown[]
    for (const i of elementIndices(a)) {
      const at = `${path}[${i}]`
      try {
        children.push([at, a[i]])
      } catch (err) {
        return unreadable(at, err, a, String(i))
      }
    }
  } else if (proto === Map.prototype) {
    let i = 0
    for (const [k, v] of value as Map<unknown, unknown>) {
      children.push([`${path} (key of entry ${i++})`, k], [`${path}.get(${show(k).slice(1, -1)})`, v])
    }
  } else if (proto === Set.prototype) {
    let i = 0
    for (const v of value as Set<unknown>) children.push([`${path} (member ${i++})`, v])
  }
  return children
}

/** Why `value` at `path` cannot be stored, or `undefined` when it and everything in it can. */
function problem(value: unknown, path: string, ancestors: object[]): ValueProblem | undefined {
  if (typeof value === 'function') return { path, what: `is a function (${show(value)}), which is not data` }
  if (typeof value === 'symbol') return { path, what: `is a symbol (${show(value)}), which is not data` }
  if (typeof value !== 'object' || value === null) return undefined
  if (ancestors.includes(value)) return { path, what: 'refers back to an object that contains it (a cycle)' }
  if (ancestors.length >= MAX_DEPTH) return { path, what: `is nested more than ${MAX_DEPTH} levels deep` }
  let children: [string, unknown][] | ValueProblem
  try {
    const proto = Object.getPrototypeOf(value)
    const extras = droppedExtras(value, proto)
    if (extras !== undefined) return { path, what: `is ${extras}, which would not be stored with it` }
    const known =
      proto === Object.prototype ||
      proto === null ||
      modelOf(proto) !== undefined ||
      proto === Array.prototype ||
      proto === Map.prototype ||
      proto === Set.prototype ||
      proto === Date.prototype ||
      TYPED_PROTOTYPES.has(proto) ||
      proto === ArrayBuffer.prototype ||
      proto === RegExp.prototype
    if (!known) {
      const name = (proto as { constructor?: { name?: string } }).constructor?.name || 'anonymous'
      return {
        path,
        what: `is an instance of class \`${name}\`, which is not a model: store plain data, or make it a model (static stockpyleKeys) so it comes back as one`,
      }
    }
    children = childrenOf(value, proto, path)
  } catch (err) {
    // a Proxy whose trap throws
    return unreadable(path, err)
  }
  if (!Array.isArray(children)) return children
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

/**
 * Why a value cannot be stored, found by walking it as the cache codec does (slowly: only for a value
 * whose encoding failed): a function, a symbol, a cycle, an instance of a class that is not a model, a
 * Date/Map/Set/RegExp carrying what would be dropped, or a read that throws (a getter, a Proxy's trap).
 * `depth`: the objects around `value`, counted toward the nesting bound (1 for a model attribute).
 * The walk is bounded as the codec's scan is: a value past the bounds of ./value-limits.ts is not walked.
 * @returns the first problem met, with its path below `value`; `undefined` when none shows now (a
 *   getter that threw once and not again) or the value is past the bounds.
 */
export function valueProblem(value: unknown, depth: number): ValueProblem | undefined {
  try {
    // the scan either throws where the walk will (it reads in the same order) or tells the value is bounded
    if (typeof checkValue(value) === 'object') return undefined
  } catch {
    // a read threw: the walk finds where
  }
  try {
    return problem(
      value,
      '',
      Array.from({ length: depth }, () => ({})),
    )
  } catch {
    return undefined
  }
}

/** The error for a value checkValue (./exact-values.ts) refused, naming the path (model attributes at the top). */
export function refusal(value: unknown, context: string, cause?: unknown): SerializationError {
  const top = value !== null && typeof value === 'object' && modelOf(Object.getPrototypeOf(value) ?? {}) !== undefined
  let found: ValueProblem | undefined
  try {
    if (top) {
      const children = childrenOf(value, Object.getPrototypeOf(value), '')
      if (!Array.isArray(children)) found = children
      else for (const [key, child] of children) found ??= problem(child, key, [value])
    } else found = problem(value, 'value', [])
  } catch {
    found = undefined
  }
  const reason =
    found === undefined
      ? `the object cannot be encoded${cause instanceof Error ? ` (${cause.message})` : ''}`
      : `\`${found.path}\` ${found.what}`
  const why = found?.cause ?? cause
  return new SerializationError(`${context}: ${reason}`, why === undefined ? {} : { cause: why })
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
