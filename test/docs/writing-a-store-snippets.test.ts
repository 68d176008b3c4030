/**
 * The TypeScript snippets of docs/writing-a-store.md type-check against the package's own types (the
 * conformance snippet passed options `ConformanceOptions` does not have, so it failed to compile in
 * a user's strict project).
 */
import { describe, expect, it } from 'vitest'
import { example, typeErrors } from './snippet-types.js'

describe('docs/writing-a-store.md snippets', () => {
  it('the MapBackend and its conformance run compile (strict, as this repository is)', () => {
    const source = `${example('writing-a-store.md', 'map-backend')}\n${example('writing-a-store.md', 'conformance')}`
    expect(typeErrors(source)).toEqual([])
  }, 60_000)

  it('a decorator with options of its own (static optionNames) compiles', () => {
    expect(typeErrors(example('writing-a-store.md', 'decorator-options'))).toEqual([])
  }, 60_000)
})
