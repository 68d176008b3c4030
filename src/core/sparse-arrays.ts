/**
 * Walking an array by its elements, not its length: `a = []; a.length = 2 ** 32 - 1; a[0] = 1` holds
 * one element, and a loop over every index would take minutes. A walk goes index by index (the fast way
 * for the arrays programs hold) and, once it has passed more than {@link HOLE_ALLOWANCE} holes and
 * more holes than elements, takes the rest from the array's own keys, in time proportional to its
 * elements. So no walk visits more than about twice the elements plus {@link HOLE_ALLOWANCE} indices.
 */
export const HOLE_ALLOWANCE = 1024

/**
 * Whether an index walk that has met `holes` holes in the first `visited` indices should take the rest
 * from the array's keys ({@link indicesFrom}): more than {@link HOLE_ALLOWANCE} holes, and more holes
 * than elements.
 */
export function tooSparse(holes: number, visited: number): boolean {
  return holes > HOLE_ALLOWANCE && holes * 2 > visited
}

/**
 * The indices of the elements of `a` at or above `from`, ascending, from its own keys: in time
 * proportional to the number of its elements (and named properties), never to its length.
 */
export function indicesFrom(a: readonly unknown[], from: number): number[] {
  const out: number[] = []
  const length = a.length
  // Object.keys lists an array's indices first, ascending (then any named properties)
  for (const key of Object.keys(a)) {
    const code = key.charCodeAt(0)
    if (code < 48 || code > 57) continue
    const index = Number(key)
    if (index >= from && index < length && String(index) === key) out.push(index)
  }
  return out
}

/**
 * The indices of the elements of `a` (not its holes), ascending, visiting no more indices than the
 * walk described above.
 */
export function elementIndices(a: readonly unknown[]): number[] {
  const out: number[] = []
  let holes = 0
  for (let i = 0; i < a.length; i++) {
    if (i in a) out.push(i)
    else if (tooSparse(++holes, i + 1)) {
      for (const index of indicesFrom(a, i + 1)) out.push(index)
      break
    }
  }
  return out
}
