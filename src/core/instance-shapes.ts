/**
 * The shapes of model instances in the codec (`[typeTag, modelVersion, shape, ...values]`, see
 * codec.ts): the shape written for an instance, and the decoded instance rebuilt from a shape and its
 * values, as own data properties with the model's prototype.
 */
import { SerializationError, show } from './errors.js'

/** The attribute names of a model's last encoded instance and their JSON (the `shape` written). */
export interface Shape {
  readonly keys: readonly string[]
  readonly text: string
}

/** Builds an object with own data properties from `data[3…]` (a decoded instance's values). */
export interface Builder {
  readonly count: number
  readonly names: readonly string[]
  readonly build: (data: readonly unknown[]) => Record<string, unknown>
  /** Kept for later decodes (within {@link MAX_BUILDERS}): only then is code compiled for it. */
  readonly cached: boolean
  /** Per model prototype: a compiled constructor that makes the instance directly, or `null` where it may not (see {@link instanceOf}). */
  readonly constructors: Map<object, (new (data: readonly unknown[]) => object) | null>
}

const lastShape = new WeakMap<object, Shape>()
const builders = new Map<string, Builder>()
/** Distinct shapes with a compiled builder; past this, shapes are built by a loop (never unbounded memory). */
const MAX_BUILDERS = 1000
let compileAllowed = true
let lastText: string | undefined
let lastBuilder: Builder | undefined

/** The shape written for `instance` of `model`: its own enumerable attribute names, reused while they stay the same. */
export function shapeOf(model: object, instance: object): Shape {
  const keys = Object.keys(instance)
  const last = lastShape.get(model)
  if (last !== undefined && last.keys.length === keys.length) {
    let same = true
    for (let i = 0; i < keys.length; i++) {
      if (last.keys[i] !== keys[i]) {
        same = false
        break
      }
    }
    if (same) return last
  }
  const shape = { keys, text: JSON.stringify(keys) }
  lastShape.set(model, shape)
  return shape
}

/** The error for stored bytes whose model instance does not have the layout the codec writes. */
export function malformed(data: unknown): SerializationError {
  return new SerializationError(`Stored bytes hold a malformed model instance ${show(data)}`)
}

/**
 * The builder of a shape: a function compiled once per shape that returns an object literal (own data
 * properties, so no setter of the class runs and `__proto__` stays an ordinary key), or a loop where
 * code generation is not allowed or too many shapes were seen.
 */
export function builderOf(shape: string, data: readonly unknown[]): Builder {
  // Every decode brings a fresh copy of its shape's text: comparing it with the last one is cheaper
  // than hashing it for the Map (most reads in a row are of one model).
  if (shape === lastText && lastBuilder !== undefined) return lastBuilder
  const known = builders.get(shape)
  if (known !== undefined) {
    lastText = shape
    lastBuilder = known
    return known
  }
  let keys: unknown
  try {
    keys = JSON.parse(shape)
  } catch {
    throw malformed(data)
  }
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) throw malformed(data)
  const names = keys as string[]
  const cached = builders.size < MAX_BUILDERS
  let build: Builder['build'] | undefined
  if (compileAllowed && cached) {
    const props = names.map((k, i) => `${k === '__proto__' ? '["__proto__"]' : JSON.stringify(k)}:d[${i + 3}]`)
    try {
      build = new Function('d', `return {${props.join(',')}}`) as Builder['build']
    } catch {
      compileAllowed = false
    }
  }
  build ??= (d) => {
    const o: Record<string, unknown> = {}
    for (let i = 0; i < names.length; i++) {
      const key = names[i] as string
      if (key === '__proto__') Object.defineProperty(o, key, { value: d[i + 3], enumerable: true, writable: true, configurable: true })
      else o[key] = d[i + 3]
    }
    return o
  }
  const builder: Builder = { count: names.length, names, build, cached, constructors: new Map() }
  if (cached) builders.set(shape, builder)
  return builder
}

/**
 * Whether assigning each of `names` to a new object with `prototype` creates an own data property, as
 * the object literal of {@link builderOf} does: no name is `__proto__` or an accessor or read-only
 * property anywhere on the prototype chain (a setter would run, or the value would not be stored).
 */
function assignable(prototype: object, names: readonly string[]): boolean {
  for (const name of names) {
    if (name === '__proto__') return false
    for (let p: object | null = prototype; p !== null; p = Object.getPrototypeOf(p) as object | null) {
      const d = Object.getOwnPropertyDescriptor(p, name)
      if (d === undefined) continue
      if (d.get !== undefined || d.set !== undefined || d.writable !== true) return false
      break
    }
  }
  return true
}

/**
 * The decoded instance: own data properties from `data[3…]`, prototype `prototype`. Made by a compiled
 * constructor whose `prototype` is the model's (V8 gives the object its final shape at once), or by the
 * object literal and `Object.setPrototypeOf`, ~15× slower per object, where a name could reach a setter
 * or a read-only property of the class or where code generation is not allowed.
 */
export function instanceOf(builder: Builder, prototype: object, data: readonly unknown[]): object {
  let make = builder.constructors.get(prototype)
  if (make === undefined) {
    make = null
    // A builder past the bound lives for one decode: compiling for it would cost far more than it saves.
    if (builder.cached) {
      const body = builder.names.map((k, i) => `this[${JSON.stringify(k)}]=d[${i + 3}];`).join('')
      make = compiledConstructor<[readonly unknown[]]>(prototype, builder.names, 'd', body) ?? null
    }
    builder.constructors.set(prototype, make)
  }
  return make === null ? Object.setPrototypeOf(builder.build(data), prototype) : new make(data)
}

/**
 * A constructor compiled from `body` (statements assigning `this[name]` for each of `names`, reading
 * the parameters `params`, e.g. `'d'`) whose instances have `prototype`: V8 gives each one its final
 * shape, with every property in the object, at once. `undefined` where code generation is not allowed
 * (a Content-Security-Policy) or where an assignment could reach a setter or a read-only property of
 * the prototype chain (the caller then builds the object another way).
 */
export function compiledConstructor<A extends unknown[]>(
  prototype: object,
  names: readonly string[],
  params: string,
  body: string,
): (new (...args: A) => object) | undefined {
  if (!compileAllowed || !assignable(prototype, names)) return undefined
  try {
    const make = new Function(`return function(${params}){"use strict";${body}}`)() as new (...args: A) => object
    ;(make as unknown as { prototype: object }).prototype = prototype
    return make
  } catch {
    compileAllowed = false
    return undefined
  }
}
