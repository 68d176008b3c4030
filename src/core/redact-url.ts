/**
 * Names of query parameters whose value is a secret or a user name, as drivers read them from a
 * connection URL (pg: `password`, `sslpassword`, `user`; ioredis: `password`, `username`), and the
 * usual spellings of tokens and keys (`token`, `access_token`, `client_secret`, `api_key`, `key`).
 * Not `sslkey` or `sslcert` (file paths) nor names that only begin alike (`keepAlive`, `passive`).
 */
const SECRET_PARAMETER =
  /^(?:pass|pwd|auth|key|user|username)$|pass(?:word|wd|phrase)$|secret$|token$|(?:api|access|private|secret)[_-]?key$/i

/** `name` as a driver reads it (percent-decoded), or as it is when it is not well-formed. */
function decoded(name: string): string {
  try {
    return decodeURIComponent(name)
  } catch {
    return name
  }
}

/**
 * `url` as shown in a message or a log: everything between `//` and the last `@` (user and password)
 * replaced by `…`, so that a message about a connection never prints a password — also one holding
 * `/` or `@`, as a malformed URL may — and the value of every query parameter that carries a password,
 * a token, a key or a user name (`?password=x` → `?password=…`; see {@link SECRET_PARAMETER}). Other
 * values are returned as they are.
 */
export function redactUrl<T>(url: T): T | string {
  if (typeof url !== 'string') return url
  const query = url.indexOf('?')
  const hidden = query < 0 ? url : url.slice(0, query) + hideParameters(url.slice(query))
  return hidden.replace(/\/\/.*@/, '//…@')
}

/** `search` (from its `?` to the end) with the values of {@link SECRET_PARAMETER}s replaced by `…`. */
function hideParameters(search: string): string {
  const hash = search.indexOf('#')
  const query = hash < 0 ? search : search.slice(0, hash)
  const rest = hash < 0 ? '' : search.slice(hash)
  return (
    query.replace(/([?&;])([^=&;#]*)=([^&;#]*)/g, (all, separator: string, name: string) =>
      SECRET_PARAMETER.test(decoded(name)) ? `${separator}${name}=…` : all,
    ) + rest
  )
}
