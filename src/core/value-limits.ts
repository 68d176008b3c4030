/**
 * How large a value may be once expanded into a tree: stores keep values as trees, so an object reached
 * twice (`{a: s, b: s}`) is stored, and comes back, as two equal copies. A value where each level holds
 * the level below twice is 2n objects in memory but 2^n once expanded; without a bound, encoding it
 * would block the event loop for minutes and then run out of memory. These bounds are checked while a
 * value is scanned (no extra walk), and a value past them is refused with a `SerializationError` before
 * anything is written.
 */

/**
 * The most objects a value may hold: plain objects, arrays, Maps, Sets, model instances, and the
 * objects inside them (a Date, a RegExp, a typed array counts too), a shared one counted each time it is reached.
 */
export const MAX_CONTAINERS = 1_000_000

/**
 * The most array slots (elements, and the holes a walk passes: see ./sparse-arrays.ts), object
 * properties and Map and Set entries a value may hold in all, a shared container counted each time
 * it is reached.
 */
export const MAX_ELEMENTS = 10_000_000

function grouped(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',')
}

/**
 * The end of a refusal's message for a value past a bound: `holds more than 1,000,000 objects, …`.
 * `containers`: the bound passed is {@link MAX_CONTAINERS} (else {@link MAX_ELEMENTS}).
 */
export function tooLargeText(containers: boolean): string {
  const what = containers
    ? `${grouped(MAX_CONTAINERS)} objects, arrays, Maps and Sets`
    : `${grouped(MAX_ELEMENTS)} elements, properties and entries`
  return `holds more than ${what} once expanded (a value is stored as a tree: an object reached twice is stored twice)`
}
