// SqlStore.batchGet of 1,000 objects on SQLite and PostgreSQL, by primary key and by a composite key,
// against 1,000 sequential SqlStore.get calls and against one hand-written Kysely query for the same rows.
//
//   npm run build && node bench/sql-batch-get.js [rounds=7]
//
// PostgreSQL: STOCKPYLE_BENCH_PG_URL if set, else a throw-away cluster (initdb -A trust, fsync=off) on a
// free loopback port, run as the `postgres` OS user when root, stopped by PID at the end.
// The table holds 10,000 rows; each measurement fetches 1,000 of them (a different slice each run).
// Times are the best of `rounds` after 3 warm-up rounds, all in the same process; statements are
// counted with Kysely's log.
import { execFileSync, spawn } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely'
import pg from 'pg'
import { createTable, SqlStore } from '../dist/stores/sql/index.js'

const rounds = Number(process.argv[2] ?? 7)
const WARMUP = 3
const ROWS = 10_000
const BATCH = 1_000

class BenchAccount {
  static stockpyleName = 'BenchAccount'
  static stockpyleKeys = ['id', ['orgId', 'slug']]
  constructor(id) {
    this.id = id
    this.orgId = id % 50
    this.slug = `account-${id}`
    this.email = `user${id}@example.com`
    this.name = `Account number ${id} with a reasonably long display name`
    this.createdAt = new Date(Date.UTC(2024, 0, 1) + id)
    this.tags = ['alpha', 'beta', `t${id}`]
    this.score = id * 1.5
    this.active = id % 2 === 0
  }
}
const columns = {
  id: 'integer',
  orgId: 'integer',
  slug: 'text',
  email: 'text',
  name: 'text',
  createdAt: 'timestamp',
  tags: 'json',
  score: 'real',
  active: 'boolean',
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

/** Starts a throw-away PostgreSQL; returns { url, stop }. */
async function startPostgres() {
  const base = '/usr/lib/postgresql'
  const version = readdirSync(base).sort((a, b) => Number(b) - Number(a))[0]
  const bin = join(base, version, 'bin')
  if (!existsSync(join(bin, 'postgres'))) throw new Error(`no PostgreSQL under ${base}: apt-get install -y postgresql`)
  const dir = mkdtempSync(join(tmpdir(), 'stockpyle-bench-pg-'))
  const ids =
    process.getuid?.() === 0
      ? { uid: Number(execFileSync('id', ['-u', 'postgres'])), gid: Number(execFileSync('id', ['-g', 'postgres'])) }
      : {}
  if (ids.uid !== undefined) chownSync(dir, ids.uid, ids.gid)
  execFileSync(join(bin, 'initdb'), ['-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync'], { stdio: 'ignore', ...ids })
  const port = await freePort()
  const args = [
    '-D',
    join(dir, 'data'),
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-k',
    dir,
    '-c',
    'fsync=off',
    '-c',
    'synchronous_commit=off',
  ]
  const child = spawn(join(bin, 'postgres'), args, { stdio: 'ignore', ...ids })
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`
  for (let i = 0; ; i++) {
    try {
      const c = new pg.Client({ connectionString: url })
      await c.connect()
      await c.end()
      break
    } catch (err) {
      if (i > 100) throw err
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  return {
    url,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r))
      process.kill(child.pid, 'SIGINT')
      await exited
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

function counted(dialect, counter) {
  const log = (event) => {
    if (event.level === 'query') counter.n++
  }
  if (dialect.sqlite !== undefined) {
    const database = new Database(dialect.sqlite)
    database.defaultSafeIntegers(true)
    return new Kysely({ dialect: new SqliteDialect({ database }), log })
  }
  return new Kysely({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: dialect.pg, max: 4 }) }), log })
}

async function time(fn) {
  const start = process.hrtime.bigint()
  await fn()
  return Number(process.hrtime.bigint() - start) / 1e6
}

async function benchDialect(label, target, isSqlite) {
  const counter = { n: 0 }
  const db = counted(target, counter)
  const store = new SqlStore({ db })
  await createTable(store, BenchAccount, { columns })
  const all = Array.from({ length: ROWS }, (_, i) => new BenchAccount(i + 1))
  for (let i = 0; i < ROWS; i += 2000) await store.batchPut(all.slice(i, i + 2000))
  const table = store.tableOf(BenchAccount)
  await store.get(BenchAccount, { id: 1 }) // introspection done before timing

  const slice = (r) => all.slice((r * BATCH) % ROWS, ((r * BATCH) % ROWS) + BATCH)
  const shapes = {
    'primary key': {
      lookups: (objs) => objs.map((o) => ({ id: o.id })),
      raw: (objs) =>
        db
          .selectFrom(table)
          .selectAll()
          .where(
            'id',
            'in',
            objs.map((o) => o.id),
          )
          .execute(),
    },
    'composite (orgId, slug)': {
      lookups: (objs) => objs.map((o) => ({ orgId: o.orgId, slug: o.slug })),
      // The same query shape SqlStore sends: a VALUES list on SQLite; on PostgreSQL unnest() of two
      // arrays (a literal list of 1,000 row tuples takes ~125 ms to plan and run there).
      raw: (objs) => {
        const where = isSqlite
          ? sql`("orgId", "slug") in (values ${sql.join(objs.map((o) => sql`(${o.orgId}, ${o.slug})`))})`
          : sql`("orgId", "slug") in (select * from unnest(${objs.map((o) => o.orgId)}::integer[], ${objs.map((o) => o.slug)}::text[]))`
        return sql`select * from ${sql.table(table)} where ${where}`.execute(db)
      },
    },
  }
  const results = []
  for (const [shape, { lookups, raw }] of Object.entries(shapes)) {
    const best = { batch: Infinity, sequential: Infinity, raw: Infinity }
    const statements = {}
    for (let r = -WARMUP; r < rounds; r++) {
      const objs = slice(r + WARMUP)
      const ls = lookups(objs)
      counter.n = 0
      let got
      const tBatch = await time(async () => {
        got = await store.batchGet(BenchAccount, ls)
      })
      statements.batch = counter.n
      if (got.length !== BATCH || got.some((g, i) => g?.id !== objs[i].id)) throw new Error('batchGet returned wrong rows')
      counter.n = 0
      const tRaw = await time(async () => {
        const res = await raw(objs)
        if ((res.rows ?? res).length !== BATCH) throw new Error('raw query returned wrong rows')
      })
      statements.raw = counter.n
      counter.n = 0
      const tSeq = await time(async () => {
        for (const l of ls) await store.get(BenchAccount, l)
      })
      statements.sequential = counter.n
      if (r < 0) continue
      best.batch = Math.min(best.batch, tBatch)
      best.raw = Math.min(best.raw, tRaw)
      best.sequential = Math.min(best.sequential, tSeq)
    }
    results.push({ label, shape, best, statements })
  }
  await store.close()
  await db.destroy()
  return results
}

const pgUrl = process.env.STOCKPYLE_BENCH_PG_URL
const server = pgUrl === undefined ? await startPostgres() : undefined
try {
  const out = []
  out.push(...(await benchDialect('SQLite (better-sqlite3, :memory:)', { sqlite: ':memory:' }, true)))
  const pgTarget = { pg: pgUrl ?? server.url }
  {
    const c = new pg.Client({ connectionString: pgTarget.pg })
    await c.connect()
    await c.query('drop table if exists bench_accounts')
    await c.end()
  }
  out.push(...(await benchDialect('PostgreSQL 15 (pg, 127.0.0.1)', pgTarget, false)))
  console.log(`SqlStore.batchGet of ${BATCH} objects (table of ${ROWS} rows), best of ${rounds} rounds after ${WARMUP} warm-up rounds`)
  console.log(
    '| database | key | batchGet ms (statements) | 1000 × get ms (statements) | hand-written Kysely ms (statements) | batchGet / sequential | batchGet / hand-written |',
  )
  console.log('|---|---|---|---|---|---|---|')
  for (const { label, shape, best, statements } of out) {
    console.log(
      `| ${label} | ${shape} | ${best.batch.toFixed(2)} (${statements.batch}) | ${best.sequential.toFixed(1)} (${statements.sequential}) | ${best.raw.toFixed(2)} (${statements.raw}) | ${(best.batch / best.sequential).toFixed(3)} | ${(best.batch / best.raw).toFixed(2)} |`,
    )
  }
} finally {
  await server?.stop()
}
