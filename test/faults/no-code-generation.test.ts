/**
 * Where code generation from strings is not allowed (a Content-Security-Policy without
 * 'unsafe-eval', or `node --disallow-code-generation-from-strings`), the objects the codec decodes and
 * the rows SqlStore reads are built without compiled constructors, and come back the same: instances
 * of their class with the same own data properties.
 */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const fixture = fileURLToPath(new URL('./fixtures/no-code-generation.mjs', import.meta.url))

function runChild(flags: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...flags, fixture],
      { env: { ...process.env, NODE_OPTIONS: '' }, timeout: 60_000 },
      (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : ((error as { code?: number }).code ?? null), stdout, stderr })
      },
    )
  })
}

describe('without code generation from strings', () => {
  it('the codec and SqlStore build the same instances as with it', async () => {
    const [withEval, withoutEval] = await Promise.all([runChild([]), runChild(['--disallow-code-generation-from-strings'])])
    expect(withEval.stderr).toBe('')
    expect(withoutEval.stderr).toBe('')
    const a = JSON.parse(withEval.stdout)
    const b = JSON.parse(withoutEval.stdout)
    expect(a.compiled).toBe(true)
    expect(b.compiled).toBe(false)
    const expected = [
      { instance: true, own: ['id', 'label', 'score'], text: '1:one', values: { id: 1, label: 'one', score: 1.5 } },
      { instance: true, own: ['id', 'label', 'score'], text: '2:two', values: { id: 2, label: 'two', score: 2.5 } },
    ]
    for (const run of [a, b]) {
      expect(run.sql).toEqual(expected)
      expect(run.memory).toEqual(expected)
    }
  })
})
