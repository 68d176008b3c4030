import { InvalidOptionError, show } from '../../core/errors.js'
import { redactUrl } from '../../core/redact-url.js'

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
