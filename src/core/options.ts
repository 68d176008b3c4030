import { InvalidOptionError, show } from './errors.js'

/**
 * Names users reach for out of habit (other caches, drivers), mapped to the option stockpyle calls that.
 * A hint is only given when the constructor really has the intended option.
 */
const ALIASES: Readonly<Record<string, string>> = {
  ttl: 'lifetime',
  ttlseconds: 'lifetime',
  expire: 'lifetime',
  expires: 'lifetime',
  expiresin: 'lifetime',
  expiry: 'lifetime',
  maxage: 'lifetime',
  defaultttl: 'lifetime',
  uri: 'url',
  connectionstring: 'url',
  connectionuri: 'url',
  dsn: 'url',
  maxitems: 'max',
  maxentries: 'max',
  maxobjects: 'max',
  capacity: 'max',
  limit: 'max',
  maxbytes: 'maxSize',
  maxmemory: 'maxSize',
  sizelimit: 'maxSize',
  namespace: 'prefix',
  keyprefix: 'prefix',
  oncacheerrors: 'onCacheError',
  onerror: 'onCacheError',
  timeoutms: 'timeout',
  nodes: 'servers',
  hosts: 'servers',
}

/** The unit of options that carry one, shown in hints (`lifetime` is in seconds, not ms). */
const UNITS: Readonly<Record<string, string>> = {
  lifetime: 'seconds',
  tombstoneLifetime: 'seconds',
  grace: 'seconds',
  missLifetime: 'seconds',
  timeout: 'ms',
  connectTimeout: 'ms',
  retryDelay: 'ms',
  maxSize: 'bytes',
  maxValueBytes: 'bytes',
  max: 'objects',
}

function distance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      row[j] = Math.min((previous[j] as number) + 1, (row[j - 1] as number) + 1, (previous[j - 1] as number) + cost)
    }
    previous = row
  }
  return previous[b.length] as number
}

/**
 * The known option a misspelt or foreign name most likely means: a known alias (`ttl` → `lifetime`),
 * the same name in another case, or a name at most two edits away. `undefined` when none is close.
 */
export function closestOption(name: string, known: readonly string[]): string | undefined {
  const lower = name.toLowerCase()
  const alias = ALIASES[lower]
  if (alias !== undefined && known.includes(alias)) return alias
  let best: string | undefined
  let bestDistance = lower.length <= 3 ? 1 : 2
  for (const candidate of known) {
    const d = candidate.toLowerCase() === lower ? 0 : distance(lower, candidate.toLowerCase())
    if (d <= bestDistance && (best === undefined || d < bestDistance)) {
      best = candidate
      bestDistance = d
    }
  }
  return best
}

/**
 * The names of another argument of the same call (SqlStore's connection and options), so that one given
 * in the wrong argument is refused saying where it goes rather than as unknown.
 */
export interface OtherArgument {
  /** The names the other argument takes. */
  readonly known: readonly string[]
  /**
   * The end of the message for one of them, e.g. `(name) => \`an option of the second argument: new
   * SqlStore(connection, { ${name} })\``.
   */
  readonly describe: (name: string) => string
}

/**
 * Whether `value`'s prototype is `Object.prototype` (of this realm or another: a `vm` context's) or
 * `null`: an object literal, `Object.create(null)`, a JSON object.
 */
function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value)
  if (proto === null || proto === Object.prototype) return true
  // another realm's Object.prototype: a root object with Object.prototype's own methods
  return (
    Object.getPrototypeOf(proto) === null &&
    Object.hasOwn(proto as object, 'hasOwnProperty') &&
    Object.hasOwn(proto as object, 'isPrototypeOf')
  )
}

/** How a message names an options object that is not plain: its class, or that it inherits. */
function describeNotPlain(value: object): string {
  const proto = Object.getPrototypeOf(value) as { constructor?: unknown } | null
  const ctor = proto !== null && Object.hasOwn(proto, 'constructor') ? proto.constructor : undefined
  const name = typeof ctor === 'function' ? ctor.name : ''
  return name !== '' && name !== 'Object' ? `a \`${name}\` instance` : 'an object inheriting from another one (Object.create(…))'
}

/**
 * Refuses an options object that is not plain (see {@link checkOptionNames}), for a constructor that
 * copies its options (a spread) before their names are checked.
 * @throws InvalidOptionError naming the class of `options` or saying that it inherits.
 */
export function checkPlainOptions(owner: string, options: object): void {
  if (isPlainObject(options)) return
  throw new InvalidOptionError(
    `${owner}: options must be a plain object ({ … }), got ${describeNotPlain(options)}: what it inherits would not all be read; copy the options into an object literal ({ ...defaults, ...options })`,
  )
}

/**
 * Rejects every option name not in `known`, naming it and, when one is close, the intended option
 * with its unit (`unknown option \`ttl\`: did you mean \`lifetime\` (seconds)?`). Options whose value is
 * `undefined` are checked too: a misspelt name is a bug whatever its value.
 *
 * Options must be a plain object (an object literal, `Object.create(null)`, parsed JSON): an options
 * object with another prototype (a class instance, `Object.create(defaults)`) is refused, because what
 * it inherits — properties, getters — would be read by some checks and lost by others (spreads copy
 * only own properties), and a misspelt inherited name could not be told from the prototype's methods.
 * Own enumerable names are checked; non-enumerable own properties (hidden helpers some config
 * libraries add) are not options.
 * @param owner the store or bus named in the message.
 * @param other the names of another argument of the call: a name of it (or close to one) given here
 *   is refused naming that argument (`\`timeout\` is an option of the second argument: …`).
 * @throws InvalidOptionError for a non-object or not plain `options`, or an unknown name.
 */
export function checkOptionNames(owner: string, options: unknown, known: readonly string[], other?: OtherArgument): void {
  if (options === undefined) return
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidOptionError(`${owner}: options must be an object, got ${show(options)}`)
  }
  checkPlainOptions(owner, options)
  for (const name of Object.keys(options)) {
    if (known.includes(name)) {
      // `undefined` is the default; `null` is no value of any option (a `??` would take it as the default)
      if ((options as Record<string, unknown>)[name] === null) {
        throw new InvalidOptionError(`${owner}: option \`${name}\` is null: leave it out (or undefined) for its default`)
      }
      continue
    }
    const hint = closestOption(name, known)
    if (hint !== undefined) {
      const unit = UNITS[hint]
      throw new InvalidOptionError(
        `${owner}: unknown option \`${name}\`: did you mean \`${hint}\`${unit === undefined ? '' : ` (${unit})`}?`,
      )
    }
    const elsewhere = other === undefined ? undefined : closestOption(name, other.known)
    if (elsewhere !== undefined && other !== undefined) {
      const unit = UNITS[elsewhere]
      throw new InvalidOptionError(
        elsewhere === name
          ? `${owner}: \`${name}\` is ${other.describe(name)}`
          : `${owner}: unknown option \`${name}\`: did you mean \`${elsewhere}\`${unit === undefined ? '' : ` (${unit})`}, ${other.describe(elsewhere)}?`,
      )
    }
    throw new InvalidOptionError(`${owner}: unknown option \`${name}\` (known options: ${[...new Set(known)].sort().join(', ')})`)
  }
}
