import { SerializationError, show } from './errors.js'
import { checkValue, droppedExtras, MAX_DEPTH, modelOf, type TooLarge, TYPED_PROTOTYPES } from './exact-values.js'
import type { Model } from './model.js'
import { describeModel } from './registry.js'
import { indicesFrom, tooSparse } from './sparse-arrays.js'
import { messageOf } from './unavailable-unless-ours.js'
import { MAX_CONTAINERS, MAX_ELEMENTS, tooLargeText } from './value-limits.js'

/**
 * Why a value ./exact-values.ts refused cannot be stored, as a {@link SerializationError} naming the
 * attribute path: found by a second, slower walk, run only for a value whose scan refused it or threw
 * (a getter, a Proxy's trap). The walk is linear in the objects in memory (an object reached twice and
 * found clean is not walked again) and bounded by ./value-limits.ts: past the bounds it gives up, and
 * the refusal says what the scan saw without a path.
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

/** What one walk keeps. */
interface Walk {
  /** The objects around the one walked (a cycle comes back to one of them). */
  readonly ancestors: Set<object>
  /** How many objects are around the one walked: `ancestors`, and those around the value walked. */
  depth: number
  /** Objects walked and found clean, with their height (1 for one holding no object): not walked again where that fits under {@link MAX_DEPTH}. */
  readonly clean: WeakMap<object, number>
  /** The objects, and the elements, properties and entries, the walk may still visit (./value-limits.ts). */
  containersLeft: number
  elementsLeft: number
}

function newWalk(depth: number): Walk {
  return { ancestors: new Set(), depth, clean: new WeakMap(), containersLeft: MAX_CONTAINERS, elementsLeft: MAX_ELEMENTS }
}

/** Thrown out of a walk that passed a bound of ./value-limits.ts: it names no path. */
const PAST_BOUNDS = Symbol('past the bounds')

/** Counts `n` more elements against the walk's bound. */
function spend(walk: Walk, n: number): void {
  if ((walk.elementsLeft -= n) < 0) throw PAST_BOUNDS
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

/** Whether {@link problem} could find anything in `v`: an object, a function or a symbol (other primitives are data). */
function walked(v: unknown): boolean {
  return typeof v === 'object' ? v !== null : typeof v === 'function' || typeof v === 'symbol'
}

/** The elements of array `a` (at `path`) that {@link walked} as [path, value] pairs, each counted against the walk's bound as it is met. */
function elementsOf(a: unknown[], path: string, walk: Walk, children: [string, unknown][]): ValueProblem | undefined {
  const read = (i: number): ValueProblem | undefined => {
    spend(walk, 1)
    let v: unknown
    try {
      v = a[i]
    } catch (err) {
      return unreadable(`${path}[${i}]`, err, a, String(i))
    }
    if (walked(v)) children.push([`${path}[${i}]`, v])
    return undefined
  }
  let holes = 0
  for (let i = 0; i < a.length; i++) {
    if (i in a) {
      const found = read(i)
      if (found !== undefined) return found
    } else if (tooSparse(++holes, i + 1)) {
      for (const index of indicesFrom(a, i + 1)) {
        const found = read(index)
        if (found !== undefined) return found
      }
      break
    }
  }
  return undefined
}

/**
 * The children of `value` (of prototype `proto`, at `path`) that {@link walked} as [path, value] pairs,
 * each read in turn and counted against the walk's bound; a {@link ValueProblem} when reading one throws (a getter),
 * naming its path.
 */
function childrenOf(value: object, proto: object | null, path: string, walk: Walk): [string, unknown][] | ValueProblem {
  const children: [string, unknown][] = []
  if (proto === Object.prototype || proto === null || modelOf(proto) !== undefined) {
    const keys = Object.keys(value)
    spend(walk, keys.length)
    for (const key of keys) {
      let v: unknown
      try {
        v = (value as Record<string, unknown>)[key]
      } catch (err) {
        return unreadable(pathOf(path, key), err, value, key)
      }
      if (walked(v)) children.push([pathOf(path, key), v])
    }
  } else if (proto === Array.prototype) {
    const found = elementsOf(value as unknown[], path, walk, children)
    if (found !== undefined) return found
  } else if (proto === Map.prototype) {
    spend(walk, (value as Map<unknown, unknown>).size)
    let i = 0
    for (const [k, v] of value as Map<unknown, unknown>) {
      if (walked(k)) children.push([`${path} (key of entry ${i})`, k])
      if (walked(v)) children.push([`${path}.get(${show(k).slice(1, -1)})`, v])
      i++
    }
  } else if (proto === Set.prototype) {
    spend(walk, (value as Set<unknown>).size)
    let i = 0
    for (const v of value as Set<unknown>) {
      if (walked(v)) children.push([`${path} (member ${i})`, v])
      i++
    }
  }
  return children
}

/**
 * Why `value` at `path` cannot be stored, or its height when it and everything in it can (0 for a
 * primitive, 1 for an object holding no object).
 * @throws PAST_BOUNDS when the walk passes a bound of ./value-limits.ts.
 */
function problem(value: unknown, path: string, walk: Walk): ValueProblem | number {
  if (typeof value === 'function') return { path, what: `is a function (${show(value)}), which is not data` }
  if (typeof value === 'symbol') return { path, what: `is a symbol (${show(value)}), which is not data` }
  if (typeof value !== 'object' || value === null) return 0
  if (walk.ancestors.has(value)) return { path, what: 'refers back to an object that contains it (a cycle)' }
  if (walk.depth >= MAX_DEPTH) return { path, what: `is nested more than ${MAX_DEPTH} levels deep` }
  const height = walk.clean.get(value)
  // clean where it was walked: clean here too, unless it reaches deeper than the bound from here
  if (height !== undefined && walk.depth + height <= MAX_DEPTH) return height
  if (--walk.containersLeft < 0) throw PAST_BOUNDS
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
    children = childrenOf(value, proto, path, walk)
  } catch (err) {
    if (err === PAST_BOUNDS) throw err
    // a Proxy whose trap throws
    return unreadable(path, err)
  }
  if (!Array.isArray(children)) return children
  const below = walkChildren(value, children, walk)
  if (typeof below === 'object') return below
  walk.clean.set(value, below + 1)
  return below + 1
}

/** {@link problem} of each of `children` of `parent` in turn: the first found, or the greatest height. */
function walkChildren(parent: object, children: [string, unknown][], walk: Walk): ValueProblem | number {
  let height = 0
  walk.ancestors.add(parent)
  walk.depth++
  try {
    for (const [childPath, child] of children) {
      const found = problem(child, childPath, walk)
      if (typeof found === 'object') return found
      if (found > height) height = found
    }
  } finally {
    walk.ancestors.delete(parent)
    walk.depth--
  }
  return height
}

/**
 * Why a value cannot be stored, found by walking it as the cache codec does (slowly: only for a value
 * whose encoding failed): a function, a symbol, a cycle, an instance of a class that is not a model, a
 * Date/Map/Set/RegExp carrying what would be dropped, or a read that throws (a getter, a Proxy's trap).
 * `depth`: the objects around `value`, counted toward the nesting bound (1 for a model attribute).
 * The walk is bounded as the codec's scan is: it visits each object in memory once where it can, and
 * gives up past the bounds of ./value-limits.ts.
 * @returns the first problem met, with its path below `value`; `undefined` when none shows now (a
 *   getter that threw once and not again) or the value is past the bounds.
 */
export function valueProblem(value: unknown, depth: number): ValueProblem | undefined {
  try {
    // a value the scan finds past the bounds is not walked
    if (typeof checkValue(value) === 'object') return undefined
  } catch {
    // a read threw: the walk finds where
  }
  try {
    const found = problem(value, '', newWalk(depth))
    return typeof found === 'object' ? found : undefined
  } catch {
    return undefined
  }
}

/** The error for a value checkValue (./exact-values.ts) refused, naming the path (model attributes at the top). */
export function refusal(value: unknown, context: string, cause?: unknown): SerializationError {
  const top = value !== null && typeof value === 'object' && modelOf(Object.getPrototypeOf(value) ?? {}) !== undefined
  let found: ValueProblem | number | undefined
  try {
    if (top) {
      const walk = newWalk(0)
      walk.containersLeft--
      const children = childrenOf(value, Object.getPrototypeOf(value), '', walk)
      found = Array.isArray(children) ? walkChildren(value, children, walk) : children
    } else found = problem(value, 'value', newWalk(0))
  } catch {
    found = undefined
  }
  const problemFound = typeof found === 'object' ? found : undefined
  const reason =
    problemFound === undefined
      ? `the object cannot be encoded${cause instanceof Error ? ` (${cause.message})` : ''}`
      : `\`${problemFound.path}\` ${problemFound.what}`
  const why = problemFound?.cause ?? cause
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
