/**
 * What the coherence harness's parent (TypeScript, under vitest) and its worker processes (plain ESM
 * over the built package) share: the model, the content of each version of an object, and a seeded
 * random number generator. No imports, so both sides can load it. Types: shared.d.ts.
 */

/** The harness's model: `id` primary, `slug` a stable alternate key, `email` an alternate key that changes with the version. */
export class CoherenceItem {
  static stockpyleName = 'CoherenceItem'
  static stockpyleKeys = ['id', 'slug', 'email']
  /**
   * @param {number} id
   * @param {string} slug
   * @param {string} email
   * @param {number} version
   * @param {number} writer
   * @param {string} payload
   */
  constructor(id, slug, email, version, writer, payload) {
    this.id = id
    this.slug = slug
    this.email = email
    this.version = version
    this.writer = writer
    this.payload = payload
  }
}

/** Columns of the harness's table (for `createTable`). */
export const ITEM_COLUMNS = { id: 'integer', slug: 'text', email: 'text', version: 'integer', writer: 'integer', payload: 'text' }

/** How many email values an object cycles through (its email changes with every version). */
export const EMAILS = 3

/** @param {number} id */
export const slugOf = (id) => `item-${id}`
/** @param {number} id @param {number} version */
export const emailOf = (id, version) => `k${id}-e${version % EMAILS}@coherence.test`
/** @param {number} id @param {number} version */
export const payloadOf = (id, version) => `${id}:${version}:${'x'.repeat(40 + ((id * 7 + version * 13) % 60))}`

/**
 * The object as version `version` of key `id` wrote it.
 * @param {number} id @param {number} version @param {number} writer
 */
export function itemOf(id, version, writer) {
  return new CoherenceItem(id, slugOf(id), emailOf(id, version), version, writer, payloadOf(id, version))
}

/**
 * The lookups the harness reads key `id` by: primary, slug, and every email value it may have.
 * @param {number} id
 */
export function lookupsOf(id) {
  const out = [{ id }, { slug: slugOf(id) }]
  for (let e = 0; e < EMAILS; e++) out.push({ email: `k${id}-e${e}@coherence.test` })
  return out
}

/**
 * Whether `obj` is exactly what some version wrote (content matches its version) and answers `lookup`.
 * @param {unknown} obj @param {Record<string, unknown>} lookup
 */
export function intact(obj, lookup) {
  if (!(obj instanceof CoherenceItem)) return false
  const { id, version } = obj
  if (obj.slug !== slugOf(id) || obj.email !== emailOf(id, version) || obj.payload !== payloadOf(id, version)) return false
  for (const [field, value] of Object.entries(lookup)) if (obj[field] !== value) return false
  return true
}

/**
 * A seeded PRNG (sfc32 seeded through splitmix32): same seed, same sequence, on every platform.
 * @param {number} seed a 32-bit integer
 * @returns {() => number} uniform in [0, 1)
 */
export function rng(seed) {
  let s = seed >>> 0
  const split = () => {
    s = (s + 0x9e3779b9) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return (z ^ (z >>> 16)) >>> 0
  }
  let a = split()
  let b = split()
  let c = split()
  let d = split()
  return () => {
    const t = (((a + b) >>> 0) + d) >>> 0
    d = (d + 1) >>> 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) >>> 0
    c = (c << 21) | (c >>> 11)
    c = (c + t) >>> 0
    return t / 4294967296
  }
}

/**
 * A child seed for stream `n` of `seed` (a worker, an actor, a layer's delays).
 * @param {number} seed @param {number} n
 */
export function childSeed(seed, n) {
  return Math.floor(rng((seed ^ Math.imul(n + 1, 0x27d4eb2d)) >>> 0)() * 4294967296) >>> 0
}
