import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'

/** The code block that follows `<!-- example: NAME -->` in a doc. */
function example(doc: string, name: string): string {
  const text = readFileSync(new URL(`../../docs/${doc}`, import.meta.url), 'utf8')
  const match = new RegExp(`<!-- example: ${name} -->\\n\`\`\`ts\\n([\\s\\S]*?)\`\`\``).exec(text)
  if (match === null) throw new Error(`docs/${doc} has no example ${name}`)
  return match[1] as string
}

describe('docs/writing-a-store.md: the logging decorator inside a chain (run as written, on the built package)', () => {
  it('runs, logs what the chain asks of the wrapped layer, and the chain behaves as without it', async () => {
    const dir = join(process.cwd(), '.tmp')
    mkdirSync(dir, { recursive: true })
    const file = join(dir, `docs-logging-decorator-${process.pid}.ts`)
    writeFileSync(file, example('writing-a-store.md', 'logging-decorator'))
    const loaded = import(/* @vite-ignore */ pathToFileURL(file).href)
    // Once imported, the copy of the example is no longer needed: .tmp/ does not fill up run after run.
    await loaded.finally(() => rmSync(file, { force: true }))
    const { chain, log, Book, LoggingStore } = await loaded
    try {
      // What the example itself did: a put written through, then a hit in the logged memory layer.
      expect(log).toHaveLength(2)
      expect(log[0]).toMatch(/^logged\(memory\) batchPutEntries ok in \d+\.\d\d ms$/)
      expect(log[1]).toMatch(/^logged\(memory\) get ok in /)
      const memory = chain.layers[0]
      expect(memory).toBeInstanceOf(LoggingStore)
      expect(memory.capabilities.inProcess).toBe(true) // forwarded from the ProcessMemoryStore
      // A miss in memory: the chain reads the database and backfills the memory layer, add-only.
      memory.inner.clear()
      log.length = 0
      expect(await chain.get(Book, { id: 1 })).toEqual(new Book(1, '978-0', 'Dune'))
      expect(log.map((line: string) => line.split(' ').slice(0, 3).join(' '))).toEqual([
        'logged(memory) get ok',
        'logged(memory) batchPutEntries ok',
      ])
      expect(chain.stats()[0]).toMatchObject({ name: 'logged(memory)', backfills: 1 })
      expect(await memory.inner.get(Book, { isbn: '978-0' })).toEqual(new Book(1, '978-0', 'Dune'))
      // Invalidation reaches the wrapped layer; a failure is logged and rethrown to the chain.
      log.length = 0
      await chain.batchInvalidate(Book, [{ id: 1 }])
      expect(log[0]).toMatch(/^logged\(memory\) batchInvalidate ok/)
      await memory.inner.close()
      log.length = 0
      expect(await chain.get(Book, { id: 1 })).toEqual(new Book(1, '978-0', 'Dune')) // the database answers
      expect(log.filter((line: string) => / failed \(memory store is closed/.test(line)).length).toBeGreaterThan(0)
      expect(log[0]).toMatch(/^logged\(memory\) get failed \(memory store is closed/)
    } finally {
      await chain.close()
    }
  })
})
