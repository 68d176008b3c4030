/**
 * `url` as shown in a message or a log: everything between `//` and the last `@` (user and password)
 * replaced by `…`, so that a message about a connection never prints a password — also one holding
 * `/` or `@`, as a malformed URL may. Other values are returned as they are.
 */
export function redactUrl<T>(url: T): T | string {
  return typeof url === 'string' ? url.replace(/\/\/.*@/, '//…@') : url
}
