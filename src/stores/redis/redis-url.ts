import { InvalidOptionError, show } from '../../core/errors.js'
import { redactUrl } from '../../core/redact-url.js'

/** What a checked Redis URL says beyond its host and port. */
export interface RedisUrlParts {
  /** The database number of its path (`/3`), or `undefined` without one. */
  db: number | undefined
  /** Whether it carries a user name or a password. */
  credentials: boolean
  /** Whether its scheme is `rediss:` (in any case): TLS. */
  tls: boolean
}

/**
 * Checks the `url` option of a Redis store or bus: `undefined`, or a parseable redis:// or rediss://
 * URL whose path is empty or a database number, without query parameters (ioredis would take them as
 * client options over the store's own) or a fragment. The message shows the URL without its user and
 * password.
 * @param owner the store or bus named in the message.
 * @returns the database, whether credentials are given and whether the scheme asks for TLS, to check
 *   them against other options.
 * @throws InvalidOptionError otherwise.
 */
export function checkRedisUrl(owner: string, url: unknown): RedisUrlParts {
  if (url === undefined) return { db: undefined, credentials: false, tls: false }
  const fail = (why: string): never => {
    throw new InvalidOptionError(`${owner}: option \`url\` must be a redis:// or rediss:// URL${why}, got ${show(redactUrl(url))}`)
  }
  if (typeof url !== 'string' || !URL.canParse(url)) return fail('')
  const parsed = new URL(url)
  if (!/^rediss?:$/.test(parsed.protocol)) return fail('')
  if (parsed.search !== '' || parsed.hash !== '') {
    return fail(' without query parameters or fragment (give client options in `redisOptions`)')
  }
  const path = parsed.pathname
  if (path !== '' && path !== '/' && !/^\/(0|[1-9][0-9]{0,8})$/.test(path)) {
    return fail(' whose path is empty or a database number (/0, /1, …)')
  }
  return {
    db: path.length > 1 ? Number(path.slice(1)) : undefined,
    credentials: parsed.username !== '' || parsed.password !== '',
    tls: parsed.protocol === 'rediss:',
  }
}
