/**
 * The ranges of PostgreSQL types that refuse a value SqlStore would otherwise send (the database's own
 * error, SQLSTATE class 22, names neither the attribute nor the column): the earliest `timestamptz`,
 * `timestamp` and `date`, `real`'s magnitudes, the digits of `numeric(p,s)`, the length of
 * `varchar(n)` and `char(n)`, and the integer types' ranges in arrays. Each check says what the column
 * stores, for a message naming the attribute and the column; `undefined` when the value is in range.
 */

/** 4714-11-24 00:00 BC (Julian day 0, JavaScript year -4713) in ms since the epoch: the earliest `timestamp`, `timestamptz` and `date`. */
export const PG_EARLIEST = Date.UTC(-4713, 10, 24)
/** A day and a half: more than any time zone's offset, so an instant later than PG_EARLIEST by this is in range in every zone. */
const OFFSET_MARGIN = 36 * 3600 * 1000

const TIME_TYPES: ReadonlySet<string> = new Set(['timestamptz', 'timestamp', 'date'])

/** `date`'s wall-clock time in the process's time zone, as ms since the epoch read as UTC: what pg sends for `timestamp` and `date`. */
function localTime(date: Date): number {
  const local = new Date(0)
  local.setUTCFullYear(date.getFullYear(), date.getMonth(), date.getDate())
  local.setUTCHours(date.getHours(), date.getMinutes(), date.getSeconds(), date.getMilliseconds())
  return local.getTime()
}

/**
 * A valid Date for a column (or array element) of base type `dataType` (`timestamptz`, `timestamp`,
 * `date`): SqlStore sends a `timestamptz` in UTC, pg sends the others in the process's local time,
 * which PostgreSQL reads without its offset. None holds a time before 4714-11-24 00:00 BC (the latest
 * JavaScript Date, in 275760 AD, is within all three).
 */
export function timeRange(dataType: string, date: Date): string | undefined {
  const time = date.getTime()
  if (time >= PG_EARLIEST + OFFSET_MARGIN || !TIME_TYPES.has(dataType)) return undefined
  if (dataType === 'timestamptz') {
    return time >= PG_EARLIEST ? undefined : 'Dates from 4714-11-24 00:00 BC UTC (new Date(-210866803200000)) on'
  }
  if (localTime(date) >= PG_EARLIEST) return undefined
  return `Dates whose local time from 4714-11-24 00:00 BC on (pg sends a ${dataType} as the process's local time)`
}

/** What a `real` column stores, for messages. */
const REAL_RANGE =
  'numbers 0 or of magnitude 1.4e-45 to 3.4028235e+38 (real is single precision: PostgreSQL refuses a number it would round to 0 or to infinity)'

/**
 * The one double that single precision rounds to infinity but whose decimal text (what pg sends) rounds
 * to the largest `real`: 2^128 - 2^104 / 2, exactly halfway, is spelt `3.4028235677973366e+38`, below it.
 */
const REAL_OVERFLOW_TIE = 2 ** 128 - 2 ** 103

/**
 * A number for a `real` (float4) column or element: a non-zero finite one that single precision rounds
 * to 0 or to infinity is refused. PostgreSQL rounds the decimal text pg sends, which lies on the same
 * side of each limit as the number itself but for {@link REAL_OVERFLOW_TIE}.
 */
export function realRange(value: number): string | undefined {
  if (value === 0 || !Number.isFinite(value)) return undefined
  const single = Math.fround(value)
  if (single !== 0 && Number.isFinite(single)) return undefined
  return Math.abs(value) === REAL_OVERFLOW_TIE ? undefined : REAL_RANGE
}

/**
 * Whether PostgreSQL's `numeric(precision, scale)` refuses `value` ("numeric field overflow"): it rounds
 * the decimal text pg sends (`String(value)`) to `scale` decimals, half away from zero, and refuses a
 * result of more than `precision - scale` digits before the point. Exact; the decimal arithmetic runs
 * only for a value within 10% of the limit.
 */
export function numericOverflows(value: number, precision: number, scale: number): boolean {
  const magnitude = Math.abs(value)
  const limit = 10 ** (precision - scale)
  if (magnitude < 0.9 * limit) return false
  if (magnitude > 1.1 * limit) return true
  const [mantissa = '', exponent = '0'] = String(magnitude).split('e')
  const [whole = '', fraction = ''] = mantissa.split('.')
  const digits = BigInt(whole + fraction)
  // magnitude = digits * 10^power; in units of 10^-scale, rounded half away from zero
  const shift = Number(exponent) - fraction.length + scale
  let units: bigint
  if (shift >= 0) units = digits * 10n ** BigInt(shift)
  else {
    const unit = 10n ** BigInt(-shift)
    units = digits / unit + ((digits % unit) * 2n >= unit ? 1n : 0n)
  }
  return units >= 10n ** BigInt(precision)
}

/** A finite number for a `numeric(precision, scale)` column (`sqlType` names it). */
export function numericRange(value: number, precision: number, scale: number, sqlType: string): string | undefined {
  if (!numericOverflows(value, precision, scale)) return undefined
  const before = precision - scale
  const rounded = scale >= 0 ? `${scale} decimals` : `a multiple of ${10 ** -scale}`
  const size = before > 0 ? `at most ${before} digits before the decimal point` : `a magnitude below 10^${before}`
  return `numbers of ${size} once rounded to ${rounded} (${sqlType})`
}

/**
 * A string for a `varchar(n)` or `char(n)` column (`n`: its length in characters, `sqlType` its name):
 * PostgreSQL refuses one of more than n characters, unless only spaces follow the n-th, which it cuts
 * silently (a put writes the cut string back).
 */
export function lengthRange(value: string, n: number, sqlType: string): string | undefined {
  if (value.length <= n) return undefined
  let count = 0
  for (const c of value) {
    if (++count > n && c !== ' ') {
      return `strings of at most ${n} characters (${sqlType}; PostgreSQL cuts only spaces beyond them, silently)`
    }
  }
  return undefined
}

/** The integers an `int2`/`int4`/`int8` array element holds, by element base type. */
const INTEGER_RANGES: Readonly<Record<string, readonly [bigint, bigint]>> = {
  int2: [-32768n, 32767n],
  int4: [-2147483648n, 2147483647n],
  int8: [-(2n ** 63n), 2n ** 63n - 1n],
}

/** An integer (a number, or a bigint for `int8`) as an element of an array of base type `elementType`. */
export function integerElementRange(elementType: string, value: number | bigint): string | undefined {
  const range = INTEGER_RANGES[elementType]
  if (range === undefined) return undefined
  const [min, max] = range
  if (typeof value === 'bigint' ? value >= min && value <= max : value >= Number(min) && value <= Number(max)) return undefined
  return elementType === 'int8' ? 'whose elements are 64-bit integers' : `whose elements are integers from ${min} to ${max}`
}
