/**
 * redactUrl: what a message, a log line or a saved command line shows of a connection URL — never a
 * password, whether it is in the user-info part or in a query parameter (pg and ioredis read both).
 */
import { describe, expect, it } from 'vitest'
import { redactUrl } from '../../src/core/redact-url.js'

describe('redactUrl', () => {
  it('hides the user and password before the host', () => {
    expect(redactUrl('redis://app:s3cret@10.0.0.5:6379')).toBe('redis://…@10.0.0.5:6379')
    expect(redactUrl('postgres://app@db/x')).toBe('postgres://…@db/x')
    expect(redactUrl('redis://10.0.0.5:6379/2')).toBe('redis://10.0.0.5:6379/2')
  })

  it('hides the value of password-like query parameters, and keeps the others', () => {
    expect(redactUrl('postgres://postgres@127.0.0.1:5432/postgres?password=topsecret')).toBe(
      'postgres://…@127.0.0.1:5432/postgres?password=…',
    )
    expect(redactUrl('redis://127.0.0.1:6379/?password=topsecret&connectTimeout=500')).toBe(
      'redis://127.0.0.1:6379/?password=…&connectTimeout=500',
    )
    expect(redactUrl('postgres://db/x?application_name=a&sslpassword=k1&PASSWORD=k2&pass=k3&passwd=k4&pwd=k5#top')).toBe(
      'postgres://db/x?application_name=a&sslpassword=…&PASSWORD=…&pass=…&passwd=…&pwd=…#top',
    )
    expect(redactUrl('x://h/?secret=a&client_secret=b&token=c&access_token=d&key=e&api_key=f&apiKey=g&access-key=h&auth=i')).toBe(
      'x://h/?secret=…&client_secret=…&token=…&access_token=…&key=…&api_key=…&apiKey=…&access-key=…&auth=…',
    )
    // user names are hidden as they are before the host
    expect(redactUrl('postgres://db/x?user=app&username=app2')).toBe('postgres://db/x?user=…&username=…')
    // a percent-encoded name is read as the driver reads it
    expect(redactUrl('postgres://db/x?pass%77ord=topsecret')).toBe('postgres://db/x?pass%77ord=…')
  })

  it('keeps parameters that only look alike: names, file paths and options', () => {
    for (const url of [
      'postgres://db/x?sslkey=/etc/client.key&sslcert=/etc/c.crt&sslmode=require',
      'redis://h:6379/?keepAlive=1&passive=1&keyPrefix=a&tokens=3&connectTimeout=500',
      'postgres://db/x?options=-c%20statement_timeout%3D5000',
    ]) {
      expect(redactUrl(url)).toBe(url)
    }
  })

  it('returns what is not a string as it is', () => {
    expect(redactUrl(undefined)).toBeUndefined()
    expect(redactUrl(42)).toBe(42)
  })
})
