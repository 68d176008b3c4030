import type { PostgresCursor, PostgresPool, PostgresPoolClient, PostgresQueryResult } from 'kysely'
import type { Pool, PoolClient } from 'pg'
import { messageOf } from '../../core/unavailable-unless-ours.js'
import { withTimeout } from '../../core/with-timeout.js'

/** SQLSTATE query_canceled (by statement_timeout, or by someone's cancel request). */
const QUERY_CANCELED = '57014'
/** What pg-pool reports when `connectionTimeoutMillis` passed. */
const CONNECT_TIMEOUT = /timeout exceeded when trying to connect|Connection terminated due to connection timeout/

/**
 * An error naming the option: `code` ETIMEDOUT, so `translateError` turns it into a
 * StoreUnavailableError whose message names the store and the call.
 */
function timedOut(what: string, timeout: number, cause: unknown, more = ''): Error {
  return Object.assign(new Error(`${what} within ${timeout} ms (option \`timeout\`)${more}`, { cause }), { code: 'ETIMEDOUT' })
}

/** Errors of statements that were never sent to the database (see {@link wasNotSent}). */
const notSent = new WeakSet<object>()

function unsent(broken: Error): Error {
  const err = Object.assign(new Error(`${broken.message}, before this statement, which was not sent`, { cause: broken }), {
    code: 'ETIMEDOUT',
  })
  notSent.add(err)
  return err
}

/**
 * Whether a statement failed without reaching the database: its connection was broken by an earlier
 * timeout (the pool SqlStore opens), or pg refused it on a connection it knows is lost or closed
 * ("… is not queryable").
 */
export function wasNotSent(err: unknown): boolean {
  return (typeof err === 'object' && err !== null && notSent.has(err)) || /is not queryable/.test(messageOf(err))
}

/**
 * One pooled pg client as Kysely sees it. After a query of it timed out, the client is not usable:
 * the statement may still be running and pg would queue the next one behind it (a ROLLBACK would
 * wait for a frozen server too). Its later queries reject at once, and it is destroyed on release
 * instead of going back to the pool (a transaction it had begun then ends with its connection).
 */
class TimedClient implements PostgresPoolClient {
  readonly #client: PoolClient
  readonly #timeout: number
  readonly #grace: number
  #broken: Error | undefined

  constructor(client: PoolClient, timeout: number, grace: number) {
    this.#client = client
    this.#timeout = timeout
    this.#grace = grace
  }

  query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>>
  query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>
  query<R>(
    statement: string | PostgresCursor<R>,
    parameters?: ReadonlyArray<unknown>,
  ): Promise<PostgresQueryResult<R>> | PostgresCursor<R> {
    const client = this.#client as unknown as PostgresPoolClient
    const limit = Math.min(this.#timeout + this.#grace, 2 ** 31 - 1)
    if (typeof statement !== 'string') {
      // a cursor keeps pg's own bound (rare: a caller's stream through tx.kysely())
      ;(statement as { query_timeout?: number }).query_timeout ??= limit
      return client.query(statement)
    }
    if (this.#broken !== undefined) return Promise.reject(unsent(this.#broken))
    // The store's shared deadlines bound the reply (core/with-timeout.ts), not a timer of pg's per query.
    let late = false
    const reply = withTimeout(client.query<R>(statement, parameters ?? []), limit, () => {
      late = true
      this.#broken = timedOut(
        'the database did not answer',
        this.#timeout,
        undefined,
        ` nor cancel the statement in the ${this.#grace} ms after`,
      )
      return this.#broken
    })
    return reply.catch((err: unknown) => {
      if (late) throw err
      // the server cancelled it (statement_timeout): the connection is usable
      if ((err as { code?: unknown } | null)?.code === QUERY_CANCELED && /statement timeout/.test(messageOf(err))) {
        throw timedOut('the statement did not finish', this.#timeout, err, '; the database cancelled it')
      }
      throw err
    })
  }

  release(destroy?: boolean): void {
    this.#client.release(destroy === true || this.#broken !== undefined)
  }
}

/**
 * The pool Kysely gets for a pool SqlStore created with `connectionTimeoutMillis` and
 * `statement_timeout` of `timeout` ms (see connect.ts): each statement's reply is bounded at
 * `timeout + grace` ms by the store's shared deadlines (core/with-timeout.ts: no timer per statement);
 * a client whose query timed out on the client side never returns to the pool (see
 * {@link TimedClient}), and every timeout (also the server's cancel) rejects with an error naming the option.
 */
export function timedPool(pool: Pool, timeout: number, grace: number): PostgresPool {
  const clients = new WeakMap<PoolClient, TimedClient>()
  return {
    async connect() {
      let client: PoolClient
      try {
        client = await pool.connect()
      } catch (err) {
        if (CONNECT_TIMEOUT.test(messageOf(err))) throw timedOut('no connection to the database', timeout, err)
        throw err
      }
      // one wrapper per client: Kysely keeps its connection object per client
      let timed = clients.get(client)
      if (timed === undefined) clients.set(client, (timed = new TimedClient(client, timeout, grace)))
      return timed
    },
    end: () => pool.end(),
  }
}
