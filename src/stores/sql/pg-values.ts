/** Values SqlStore hands to pg on PostgreSQL where pg's own conversions would change them: Dates for `timestamptz`. */

/**
 * The text PostgreSQL reads as the instant of `date`, in UTC (`2024-01-02T03:04:05.678+00`; a year
 * before 1 AD as `0001-…+00 BC`, PostgreSQL having no year 0: JavaScript's year 0 is 1 BC). pg itself
 * sends a Date in the process's local time with an offset in whole minutes, which moves instants whose
 * local offset had seconds (local mean time before standard zones: 1800 in Amsterdam, 1900 in Kolkata).
 */
export function timestamptzText(date: Date): string {
  const year = date.getUTCFullYear()
  const iso = date.toISOString()
  // `-MM-DDTHH:MM:SS.mmm` of `…Z`, whatever the width and sign of the year before it
  const rest = iso.slice(iso.length - 20, iso.length - 1)
  return `${String(year <= 0 ? 1 - year : year).padStart(4, '0')}${rest}+00${year <= 0 ? ' BC' : ''}`
}

/** Dates anywhere in an array for a `timestamptz[]` column, as {@link timestamptzText}. */
export function timestamptzArray(values: readonly unknown[]): unknown[] {
  return values.map((v) => (v instanceof Date ? timestamptzText(v) : Array.isArray(v) ? timestamptzArray(v) : v))
}
