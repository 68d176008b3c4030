/**
 * msgpackr keeps one table of extension readers per process: a second copy of stockpyle (two versions
 * under node_modules) used to put its readers in place of the first copy's, whose reads then revived
 * objects with the other copy's registry — a silent miss for a model of the same name, UnknownModelError
 * for the others. The child (fixtures/two-copies.mjs) loads two copies with models of their own and
 * reads each copy's objects back; then a third party registers a reader for stockpyle's model type.
 */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'

const fixture = fileURLToPath(new URL('./fixtures/two-copies.mjs', import.meta.url))

it('two copies of stockpyle in one process each read their own objects back exactly; a taken-over extension type fails loudly', async () => {
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, [fixture], { env: { ...process.env, NODE_OPTIONS: '' }, timeout: 60_000 }, (error, out, stderr) =>
      error === null ? resolve(out) : reject(new Error(`${error.message}\n${stderr}`)),
    )
  })
  const out = JSON.parse(stdout.trim())
  expect(out.distinctCopies).toBe(true)
  expect(out.order).toEqual({
    class: 'Order',
    fields: [
      ['id', 1],
      ['lines', ['-0', 'a\uD800b', 'null:{"k":1}', 'hole', 'hole']],
    ],
  })
  expect(out.firstUser).toEqual({ class: 'FirstUser', fields: [['id', 7]] })
  expect(out.invoice).toEqual({
    class: 'Invoice',
    fields: [
      ['id', 2],
      ['total', 9.5],
    ],
  })
  expect(out.secondUser).toEqual({ class: 'SecondUser', fields: [['id', 8]] })
  expect(out.takenOver.error).toBe('E_STOCKPYLE')
  expect(out.takenOver.message).toContain('another registration took msgpack extension type 83 (0x53)')
}, 90_000)
