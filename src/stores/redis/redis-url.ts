import { InvalidOptionError, show } from '../../core/errors.js'

/**
 * `url` as shown in a message: anything between `//` and the last `@` (user and password) replaced by
 * `…`, so an error about a malformed URL never prints its password.
 */
export function redactUrl(url: unknown): unknown {
  return typeof url === 'string' ? url.replace(/\/\/.*@/, '//…@') : url
}

/**
 * Checks the `url` option of a Redis store or bus: `undefined`, or a parseable redis:// or rediss://
 * URL. The message shows the URL without its user and password.
 * @param owner the store or bus named in the message.
 * @throws InvalidOptionError otherwise.
 */
export function checkRedisUrl(owner: string, url: unknown): void {
  if (url === undefined) return
  if (typeof url !== 'string' || !URL.canParse(url) || !/^rediss?:$/.test(new URL(url).protocol)) {
    throw new InvalidOptionError(`${owner}: option \`url\` must be a redis:// or rediss:// URL, got ${show(redactUrl(url))}`)
  }
}
