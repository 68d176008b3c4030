/**
 * A value as the testing helpers' messages show it: strings quoted, bigints with `n`, arrays and plain
 * objects as JSON (cut at 80 characters), instances by their class, functions as such.
 */
export function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'bigint') return `${value}n`
  if (typeof value === 'function') return 'a function'
  if (typeof value !== 'object' || value === null) return String(value)
  const proto = Object.getPrototypeOf(value)
  if (Array.isArray(value) || proto === Object.prototype || proto === null) {
    let text: string
    try {
      text = JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)) ?? String(value)
    } catch {
      text = Array.isArray(value) ? 'an array' : 'an object'
    }
    return text.length > 80 ? `${text.slice(0, 77)}...` : text
  }
  const name = (proto as { constructor?: { name?: unknown } }).constructor?.name
  return typeof name === 'string' && name !== '' ? `a ${name}` : 'an object'
}
