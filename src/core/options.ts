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
 * Rejects every own option name not in `known`, naming it and, when one is close, the intended option
 * with its unit (`unknown option \`ttl\`: did you mean \`lifetime\` (seconds)?`). Options whose value is
 * `undefined` are checked too: a misspelt name is a bug whatever its value.
 * @param owner the store or bus named in the message.
 * @param other the names of another argument of the call: a name of it (or close to one) given here
 *   is refused naming that argument (`\`timeout\` is an option of the second argument: …`).
 * @throws InvalidOptionError for a non-object `options` or an unknown name.
 */
export function checkOptionNames(owner: string, options: unknown, known: readonly string[], other?: OtherArgument): void {
  if (options === undefined) return
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidOptionError(`${owner}: options must be an object, got ${show(options)}`)
  }
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
    throw new InvalidOptionError(`${owner}: unknown option \`${name}\` (known options: ${[...known].sort().join(', ')})`)
  }
}
