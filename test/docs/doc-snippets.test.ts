/**
 * Code blocks of the docs type-check against the package's own types, under this repository's strict
 * tsconfig (with `exactOptionalPropertyTypes`), as they would in a user's strict project.
 */
import { describe, expect, it } from 'vitest'
import { example, typeErrors } from './snippet-types.js'

describe('doc snippets compile', () => {
  it('docs/stores/loader.md: the weather chain, with `url: process.env.REDIS_URL` (string | undefined)', () => {
    const prelude = `class Weather {
  static readonly stockpyleKeys = ['city'] as const
  constructor(public city: string, public celsius: number) {}
}
declare function fetchWeather(lookup: { readonly city: string }): Promise<Weather | undefined>
`
    expect(typeErrors(`${prelude}${example('stores/loader.md', 'weather')}`)).toEqual([])
  }, 60_000)

  it('docs/errors.md: isStockpyleError(err, code) narrows to the class of the code', () => {
    const prelude = `class User {
  static readonly stockpyleKeys = ['id', 'email'] as const
  constructor(public id: number, public email: string) {}
}
`
    expect(typeErrors(`${prelude}${example('errors.md', 'narrowing')}`)).toEqual([])
  }, 60_000)
})
