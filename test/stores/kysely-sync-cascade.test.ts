import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { describe, expect, inject, it } from 'vitest'
import { ChainedStore, keys, ProcessMemoryStore } from '../../src/index.js'
import { installInvalidationTriggers, removeInvalidationTriggers, watchDatabase } from '../../src/invalidation/index.js'
import { CacheSyncPlugin, SqlStore } from '../../src/stores/sql/index.js'
import { selectedStores } from '../harness/servers.js'

// Rows the database changes on its own — here a foreign key's ON DELETE CASCADE — never reach the
// plugin (it sees the statement, not what the database did because of it). The database triggers of
// stockpyle/invalidation do see them: docs/kysely-sync.md points there.

class CascadeAuthor {
  static readonly stockpyleName = 'KyselySyncCascadeAuthor'
  static readonly stockpyleKeys = keys('id')
  constructor(
    public id: number,
    public name: string,
  ) {}
}

class CascadePost {
  static readonly stockpyleName = 'KyselySyncCascadePost'
  static readonly stockpyleKeys = keys('id')
  constructor(
    public id: number,
    public authorId: number,
    public title: string,
  ) {}
}

describe.runIf(selectedStores().has('postgres'))('CacheSyncPlugin and foreign-key cascades (PostgreSQL)', () => {
  it('a cascaded delete is not seen by the plugin; the database triggers (watchDatabase) invalidate it', async () => {
    const url = inject('postgresUrl')
    const raw = new pg.Client({ connectionString: url })
    await raw.connect()
    const authors = `cascade_authors_${process.pid}`
    const posts = `cascade_posts_${process.pid}`
    await raw.query(`drop table if exists ${posts}, ${authors}`)
    await raw.query(`create table ${authors} (id integer primary key, name text not null)`)
    await raw.query(
      `create table ${posts} (id integer primary key, author_id integer not null references ${authors}(id) on delete cascade, title text not null)`,
    )
    const tables = { KyselySyncCascadeAuthor: authors, KyselySyncCascadePost: posts }
    const sqlStore = new SqlStore({ url }, { tables, camelCase: true })
    const memory = new ProcessMemoryStore()
    const chain = new ChainedStore([memory, sqlStore])
    const sync = new CacheSyncPlugin({ chain, models: [CascadeAuthor, CascadePost] })
    const db = new Kysely<any>({
      dialect: sync.wrapDialect(new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 2 }) })),
      plugins: [sync],
    })
    const channel = `cascade_${process.pid}`
    await installInvalidationTriggers(sqlStore, [CascadeAuthor, CascadePost], { channel })
    let watcher: ReturnType<typeof watchDatabase> | undefined
    const deleteAuthor = async (id: number) => {
      await db.transaction().execute(async (trx) => {
        await trx.deleteFrom(authors).where('id', '=', id).execute()
      })
      expect((await raw.query(`select id from ${posts} where author_id = $1`, [id])).rowCount).toBe(0) // the database cascaded
      expect(await memory.get(CascadeAuthor, { id })).toBeUndefined() // the plugin saw the author
    }
    try {
      await chain.batchPut([new CascadeAuthor(1, 'Ada'), new CascadeAuthor(2, 'Bob')])
      await chain.batchPut([new CascadePost(10, 1, 'Notes'), new CascadePost(20, 2, 'Letters')])
      await chain.batchGet(CascadePost, [{ id: 10 }, { id: 20 }])

      // the plugin alone (the limit documented in docs/kysely-sync.md): the cascaded post stays cached
      await deleteAuthor(1)
      expect(await chain.get(CascadePost, { id: 10 })).toEqual(new CascadePost(10, 1, 'Notes'))

      // with the database triggers: the row trigger on the posts table fired for the cascaded delete
      watcher = watchDatabase(chain, { url, models: [CascadeAuthor, CascadePost], channel })
      await watcher.ready()
      await deleteAuthor(2)
      for (let i = 0; i < 500 && (await memory.get(CascadePost, { id: 20 })) !== undefined; i++) await new Promise((r) => setTimeout(r, 10))
      expect(await memory.get(CascadePost, { id: 20 })).toBeUndefined()
      expect(await chain.get(CascadePost, { id: 20 })).toBeUndefined()
    } finally {
      await watcher?.close()
      await removeInvalidationTriggers(sqlStore, [CascadeAuthor, CascadePost])
      await db.destroy()
      await chain.close()
      await raw.query(`drop table ${posts}, ${authors}`)
      await raw.end()
    }
  })
})
