/** Types of shared.js: what the coherence harness's parent and workers share. */

/** The harness's model: `id` primary, `slug` a stable alternate key, `email` an alternate key that changes with the version. */
export declare class CoherenceItem {
  static readonly stockpyleName: 'CoherenceItem'
  static readonly stockpyleKeys: readonly ['id', 'slug', 'email']
  id: number
  slug: string
  email: string
  version: number
  writer: number
  payload: string
  constructor(id: number, slug: string, email: string, version: number, writer: number, payload: string)
}

/** Columns of the harness's table (for `createTable`). */
export declare const ITEM_COLUMNS: {
  readonly id: 'integer'
  readonly slug: 'text'
  readonly email: 'text'
  readonly version: 'integer'
  readonly writer: 'integer'
  readonly payload: 'text'
}
/** How many email values an object cycles through. */
export declare const EMAILS: number
export declare function slugOf(id: number): string
export declare function emailOf(id: number, version: number): string
export declare function payloadOf(id: number, version: number): string
/** The object as version `version` of key `id` wrote it. */
export declare function itemOf(id: number, version: number, writer: number): CoherenceItem
/** Primary, slug and every email lookup of key `id`. */
export declare function lookupsOf(id: number): ({ id: number } | { slug: string } | { email: string })[]
/** Whether `obj` is exactly what some version wrote and answers `lookup`. */
export declare function intact(obj: unknown, lookup: Record<string, unknown>): boolean
/** A seeded PRNG, uniform in [0, 1). */
export declare function rng(seed: number): () => number
/** A child seed for stream `n` of `seed`. */
export declare function childSeed(seed: number, n: number): number
