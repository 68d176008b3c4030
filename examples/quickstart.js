// The README's quickstart: a write-through cache of process memory over SQLite (the embedded default).
// Run it with `npm start`.
import { mkdirSync, rmSync } from 'node:fs'
import { ChainedStore, ProcessMemoryStore } from 'stockpyle'
import { createTable, SqlStore } from 'stockpyle/sql'

class User {
  // Unique keys: the primary key `id`, an alternate key `email`, a composite key (orgId, slug).
  static stockpyleKeys = ['id', 'email', ['orgId', 'slug']]

  constructor(id, email, orgId, slug, name) {
    this.id = id
    this.email = email
    this.orgId = orgId
    this.slug = slug
    this.name = name
    this.joined = new Date('2024-05-01T12:00:00Z')
    this.tags = new Set(['admin'])
  }
}

mkdirSync('.tmp', { recursive: true })
rmSync('.tmp/quickstart.db', { force: true })

const memory = new ProcessMemoryStore({ max: 10_000, lifetime: 300 })
const sql = new SqlStore({ url: 'sqlite:.tmp/quickstart.db' })
await createTable(sql, User, {
  columns: { id: 'integer', email: 'text', orgId: 'integer', slug: 'text', name: 'text', joined: 'timestamp', tags: 'json' },
  generated: true, // the database assigns ids
})
const store = new ChainedStore([memory, sql])

// Which layer answered a read: compare the chain's per-layer hit counters before and after.
async function show(label, read) {
  const before = store.stats()
  const result = await read()
  const layer = store.stats().find((s, i) => s.hits > before[i].hits)?.name ?? 'none (miss)'
  const shown = Array.isArray(result) ? result.map((u) => u?.name) : result?.name
  console.log(`${label.padEnd(44)} -> ${JSON.stringify(shown)} served by ${layer}`)
  return result
}

const ada = new User(undefined, 'ada@example.com', 1, 'ada', 'Ada Lovelace')
await store.put(ada) // SQLite first (it assigns the id), then memory
console.log(`put Ada: SQLite assigned id ${ada.id}; the memory layer holds the same object`)

await show('get by id', () => store.get(User, { id: ada.id }))
memory.clear()
console.log('memory cleared')
const fromDb = await show('get by email', () => store.get(User, { email: 'ada@example.com' }))
await show('get by (orgId, slug), after the backfill', () => store.get(User, { orgId: 1, slug: 'ada' }))
console.log(
  `class instance: ${fromDb instanceof User}; joined is a Date: ${fromDb.joined instanceof Date}; tags is a Set: ${fromDb.tags instanceof Set}`,
)

ada.email = 'countess@example.com'
await store.put(ada)
await show('get by the old email after a change', () => store.get(User, { email: 'ada@example.com' }))
await show('get by the new email', () => store.get(User, { email: 'countess@example.com' }))

const grace = new User(undefined, 'grace@example.com', 1, 'grace', 'Grace Hopper')
await store.batchPut([grace])
await show('batchGet [grace, nobody, ada]', () => store.batchGet(User, [{ id: grace.id }, { id: 999 }, { id: ada.id }]))

await store.delete(ada)
await show('get after delete', () => store.get(User, { id: ada.id }))
console.log('per-layer stats:', JSON.stringify(store.stats()))
await store.close()
