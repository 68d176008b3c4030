// A small HTTP service (node:http, no framework) storing users through a stockpyle chain:
//
//   request scope (AsyncLocalStore) → process memory → Redis → SQLite (authoritative)
//
// Every request runs in its own AsyncLocalStore scope, so reading the same user twice while handling
// one request costs one lookup below it, and nothing leaks between requests.
//
//   GET    /users/:id            200 the user, 404
//   GET    /users?email=…        200 the user, 404 (any declared key works)
//   PUT    /users/:id            200 the stored user; body {"email": "…", "name": "…"}; 409 when the email is taken
//   DELETE /users/:id            204, 404
//   GET    /stats                200 per-layer hits/misses/errors of the chain
//
// Configuration (environment): PORT (default 3000; 0 picks a free port), HOST (default 127.0.0.1),
// REDIS_URL (default redis://127.0.0.1:6379), SQLITE_PATH (default .tmp/users.db).
// Run it with `npm run build && node examples/user-service.js` (see the README's "Example service").
import { mkdirSync } from 'node:fs'
import { createServer } from 'node:http'
import { dirname } from 'node:path'
import { AsyncLocalStore, ChainedStore, isStockpyleError, ProcessMemoryStore } from 'stockpyle'
import { RedisStore } from 'stockpyle/redis'
import { createTable, SqlStore } from 'stockpyle/sql'

class User {
  static stockpyleKeys = ['id', 'email']

  constructor(id, email, name) {
    this.id = id
    this.email = email
    this.name = name
    this.updatedAt = new Date()
  }
}

const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'
const sqlitePath = process.env.SQLITE_PATH ?? '.tmp/users.db'
mkdirSync(dirname(sqlitePath), { recursive: true })

const requestScope = new AsyncLocalStore({ name: 'request' })
const sql = new SqlStore({ url: `sqlite:${sqlitePath}` })
await createTable(sql, User, {
  columns: { id: 'integer', email: 'text', name: 'text', updatedAt: 'timestamp' },
  ifNotExists: true,
})
const store = new ChainedStore(
  [
    requestScope,
    new ProcessMemoryStore({ max: 10_000, lifetime: 60 }),
    new RedisStore({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix: 'user-service', lifetime: 300 }),
    sql,
  ],
  { name: 'users' },
)
// A failing cache layer is skipped (the database still answers); say so in the log.
store.events.on('cacheError', ({ layer, operation, error }) =>
  console.error(`cache layer ${layer} failed (${operation}): ${error.message}`),
)

/** An error answered with a status code. */
class HttpError extends Error {
  constructor(status, message) {
    super(message)
    this.status = status
  }
}

function userId(text) {
  const id = Number(text)
  if (!Number.isSafeInteger(id) || id <= 0) throw new HttpError(400, `user id must be a positive integer, got ${JSON.stringify(text)}`)
  return id
}

async function readJson(req) {
  const chunks = []
  let size = 0
  for await (const chunk of req) {
    size += chunk.length
    if (size > 64 * 1024) throw new HttpError(413, 'body larger than 64 KiB')
    chunks.push(chunk)
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new HttpError(400, 'body is not JSON')
  }
}

function send(res, status, body) {
  if (body === undefined) {
    res.writeHead(status).end()
    return
  }
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

async function handle(req, res) {
  const url = new URL(req.url ?? '/', 'http://localhost')
  const [, collection, id, extra] = url.pathname.split('/')
  if (url.pathname === '/stats' && req.method === 'GET') return send(res, 200, store.stats())
  if (collection !== 'users' || extra !== undefined) throw new HttpError(404, `no route ${req.method} ${url.pathname}`)

  if (id === undefined || id === '') {
    const email = url.searchParams.get('email')
    if (req.method !== 'GET' || email === null) throw new HttpError(404, 'use GET /users?email=… or /users/:id')
    const user = await store.get(User, { email })
    return user === undefined ? send(res, 404, { error: `no user with email ${email}` }) : send(res, 200, user)
  }

  const key = { id: userId(id) }
  switch (req.method) {
    case 'GET': {
      const user = await store.get(User, key)
      return user === undefined ? send(res, 404, { error: `no user ${key.id}` }) : send(res, 200, user)
    }
    case 'PUT': {
      const body = await readJson(req)
      if (typeof body?.email !== 'string' || typeof body?.name !== 'string') {
        throw new HttpError(400, 'body must be {"email": string, "name": string}')
      }
      await store.put(new User(key.id, body.email, body.name))
      // Served by the request scope: the put left the stored copy there.
      return send(res, 200, await store.get(User, key))
    }
    case 'DELETE': {
      const user = await store.get(User, key)
      if (user === undefined) return send(res, 404, { error: `no user ${key.id}` })
      await store.delete(user) // removed under every key it has, in every layer
      return send(res, 204)
    }
    default:
      throw new HttpError(405, `${req.method} is not supported on /users/:id`)
  }
}

/** HTTP status for an error: ours, then stockpyle's codes. */
function statusOf(error) {
  if (error instanceof HttpError) return error.status
  if (isStockpyleError(error, 'E_KEY_CONFLICT')) return 409
  for (const code of ['E_INVALID_KEY', 'E_SERIALIZATION', 'E_CONSTRAINT', 'E_INVALID_ARGUMENT'])
    if (isStockpyleError(error, code)) return 400
  if (isStockpyleError(error, 'E_STORE_UNAVAILABLE')) return 503
  return 500
}

const server = createServer((req, res) => {
  requestScope
    .run(() => handle(req, res))
    .catch((error) => {
      const status = statusOf(error)
      if (status >= 500) console.error(error)
      if (!res.headersSent) send(res, status, { error: error.message })
      else res.destroy()
    })
})

server.listen(port, host, () => {
  const { port: actual } = server.address()
  console.log(`user-service listening on http://${host}:${actual}`)
})

async function shutdown() {
  server.close()
  server.closeAllConnections()
  await store.close()
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    shutdown().then(
      () => process.exit(0),
      (error) => {
        console.error(error)
        process.exit(1)
      },
    )
  })
}
