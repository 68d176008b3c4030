// A chain in front of sources that are not databases: a computed value and a REST-like HTTP API.
// Run it with `npm run build && node examples/loader.js` (it starts its own HTTP server on loopback).
import { once } from 'node:events'
import { createServer } from 'node:http'
import { ChainedStore, LoaderStore, ProcessMemoryStore } from 'stockpyle'

// 1. A computed value: an expensive function memoized per key, with single-flight.
class Fibonacci {
  static stockpyleKeys = ['n']
  constructor(n, value) {
    this.n = n
    this.value = value
  }
}
let computations = 0
const fib = (n) => (n < 2n ? n : fib(n - 1n) + fib(n - 2n))
const numbers = new ChainedStore([
  new ProcessMemoryStore({ max: 1_000 }),
  new LoaderStore({
    model: Fibonacci,
    load: (lookups) =>
      lookups.map(({ n }) => {
        computations++
        return new Fibonacci(n, fib(BigInt(n)))
      }),
  }),
])
const results = await Promise.all([25, 25, 25, 26].map((n) => numbers.get(Fibonacci, { n })))
console.log(
  'fib:',
  results.map((r) => `${r.n}→${r.value}`),
  `computed ${computations} times for 4 gets`,
)

// 2. A REST source: GET /users/:id and /users?email=… answer JSON; PUT and DELETE write.
const rows = new Map([
  [1, { id: 1, email: 'ada@example.com', name: 'Ada' }],
  [2, { id: 2, email: 'alan@example.com', name: 'Alan' }],
])
let requests = 0
const server = createServer((req, res) => {
  requests++
  const url = new URL(req.url, 'http://localhost')
  const id = Number(url.pathname.split('/')[2])
  const send = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(body === undefined ? '' : JSON.stringify(body))
  }
  if (req.method === 'GET') {
    const row = url.searchParams.has('email') ? [...rows.values()].find((r) => r.email === url.searchParams.get('email')) : rows.get(id)
    return row === undefined ? send(404) : send(200, row)
  }
  if (req.method === 'DELETE') {
    rows.delete(id)
    return send(204)
  }
  let body = ''
  req.on('data', (chunk) => {
    body += chunk
  })
  req.on('end', () => {
    rows.set(id, JSON.parse(body))
    send(204)
  })
})
server.listen(0, '127.0.0.1')
await once(server, 'listening')
const base = `http://127.0.0.1:${server.address().port}`

class User {
  static stockpyleKeys = ['id', 'email']
  constructor(id, email, name) {
    this.id = id
    this.email = email
    this.name = name
  }
}
const toUser = (row) => new User(row.id, row.email, row.name)

async function fetchUser(lookup) {
  const url = 'id' in lookup ? `${base}/users/${lookup.id}` : `${base}/users?email=${encodeURIComponent(lookup.email)}`
  const res = await fetch(url)
  if (res.status === 404) return undefined
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`)
  return toUser(await res.json())
}

const users = new ChainedStore(
  [
    new ProcessMemoryStore({ max: 10_000, lifetime: 60, grace: 3600 }),
    new LoaderStore({
      model: User,
      load: (lookups) => Promise.all(lookups.map(fetchUser)),
      save: (list) =>
        Promise.all(
          list.map((u) =>
            fetch(`${base}/users/${u.id}`, { method: 'PUT', body: JSON.stringify({ id: u.id, email: u.email, name: u.name }) }),
          ),
        ),
      remove: (list) => Promise.all(list.map((u) => fetch(`${base}/users/${u.id}`, { method: 'DELETE' }))),
    }),
  ],
  { serveStale: true, missLifetime: 5 },
)

console.log('by id:', await users.get(User, { id: 1 }))
console.log('by email (alias of the same object):', await users.get(User, { email: 'ada@example.com' }))
console.log('absent:', await users.get(User, { id: 404 }), '— and again, from the miss cache:', await users.get(User, { id: 404 }))
await users.put(new User(3, 'grace@example.com', 'Grace'))
console.log('written through:', rows.get(3))
await users.delete(User, { email: 'alan@example.com' })
console.log('deleted by key:', rows.has(2) ? 'still there' : 'gone from the API', '/', await users.get(User, { id: 2 }))
console.log(`${requests} HTTP requests in all`)

server.close()
await Promise.all([numbers.close(), users.close()])
