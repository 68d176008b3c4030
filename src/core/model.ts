/**
 * Models and lookups: the declarations an application makes and the types stockpyle infers from them.
 */

/** A value a key attribute may hold. Keys are type-tagged: `1`, `'1'`, `1n` and `true` are different keys. */
export type KeyValue = string | number | bigint | boolean

/** One declared unique key: a single attribute name, or a tuple of names for a composite key. */
export type KeySpec = string | readonly string[]

/**
 * A key declaration made with {@link keys}. At runtime it is a frozen array of key specs; its type
 * parameter carries the exact specs for lookup inference without making subclasses that declare
 * other keys incompatible with their parent (TS2417).
 */
// biome-ignore lint/correctness/noUnusedVariables: S is a phantom read by `KeySpecsOf` through type-argument inference
export interface KeyList<S extends readonly KeySpec[] = readonly KeySpec[]> extends ReadonlyArray<KeySpec> {}

/**
 * Declares a model's unique keys in a form that works in class hierarchies.
 *
 * ```ts
 * class Vehicle { static readonly stockpyleKeys = keys('plate') }
 * class Car extends Vehicle { static override readonly stockpyleKeys = keys('vin', 'plate') }
 * ```
 * A plain `['id', 'email'] as const` works too for classes whose subclasses keep their keys.
 */
export function keys<const S extends readonly KeySpec[]>(...specs: S): KeyList<S> {
  return Object.freeze(specs.map((s) => (typeof s === 'string' ? s : Object.freeze([...s])))) as KeyList<S>
}

/**
 * A model: a class (possibly abstract) with a static `stockpyleKeys` declaration.
 * `stockpyleName` (own, not inherited) is the stable type tag, default: the class name;
 * `stockpyleVersion` (default 0) makes cached copies written under another version read as misses.
 */
export interface Model<T extends object = object> {
  readonly prototype: T
  readonly stockpyleKeys: readonly KeySpec[]
  readonly stockpyleName?: string
  readonly stockpyleVersion?: number
}

/** A model whose instances are `T`, as accepted by `get`/`batchGet`. */
export type ModelClass<T extends object = object> = Model<T> & (abstract new (...args: never) => T)

/** The instance type of a model. */
export type Instance<M> = M extends { readonly prototype: infer T } ? T : never

/** The declared key specs of a model, as a tuple type. */
export type KeySpecsOf<M> = M extends { readonly stockpyleKeys: infer K }
  ? K extends readonly [KeySpec, ...KeySpec[]]
    ? K
    : K extends KeyList<infer S>
      ? S
      : K extends readonly KeySpec[]
        ? K
        : readonly []
  : readonly []

type FieldsOf<S> = S extends string ? S : S extends readonly (infer F extends string)[] ? F : never

type Simplify<T> = { [P in keyof T]: T[P] } & {}

type KeyValueOf<I, P> = P extends keyof I ? Extract<Exclude<I[P], undefined | null>, KeyValue> : never

type LookupShape<I, F extends string, All extends string> = Simplify<
  { readonly [P in F]: KeyValueOf<I, P> } & { readonly [P in Exclude<All, F>]?: never }
>

/**
 * The lookups a model accepts: the union of one object shape per declared key, each holding exactly
 * that key's fields (`{id}`, `{email}`, `{orgId, slug}`). Mixing fields of two keys is a compile error.
 */
export type Lookup<M> = LookupUnion<Instance<M>, KeySpecsOf<M>[number], FieldsOf<KeySpecsOf<M>[number]>>

type LookupUnion<I, S, All extends string> = S extends KeySpec ? LookupShape<I, FieldsOf<S>, All> : never
