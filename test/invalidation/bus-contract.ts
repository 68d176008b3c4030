import { describe, expect, it } from 'vitest'
import { StockpyleError, StoreUnavailableError } from '../../src/index.js'
import type { InvalidationBus } from '../../src/invalidation/index.js'
import { type BusConformanceOptions, twoProcesses } from '../../src/testing/index.js'
import type { ServerProcess } from '../harness/servers.js'
import { nextTurn, poll, Recorder, UNREPORTED, warningsNaming } from './helpers.js'

/** A bus as the contract tests see it. */
export type TestBus = InvalidationBus & { readonly subscribed: boolean; readonly channel: string }

/** Options the contract passes when it makes a bus. */
export interface TestBusOptions {
  heartbeatInterval?: number
  timeout?: number
  channel?: string
  maxBackoff?: number
  name?: string
  onError?: (error: unknown) => void
}

/** How a test makes buses of one implementation (the contract itself is `runBusConformance` in stockpyle/testing). */
export interface BusContract {
  readonly name: string
  readonly makeBus: (url: string, options?: TestBusOptions) => TestBus
  /** Sends a raw message on the channel, bypassing the bus (for malformed input). */
  readonly publishRaw: (url: string, channel: string, text: string) => Promise<void>
}

/**
 * `runBusConformance` options for `contract` on the harness server at `url()`, with a private server
 * from `startServer` for the outage case (SIGKILL, then restart).
 */
export function busConformance(
  contract: BusContract,
  url: () => string,
  startServer: () => Promise<ServerProcess & { readonly url: string }>,
  withinMs: number,
): BusConformanceOptions {
  return {
    name: contract.name,
    describe,
    test: it,
    createBus: (options) => contract.makeBus(url(), options),
    publishRaw: (channel, text) => contract.publishRaw(url(), channel, text),
    outage: async () => {
      const server = await startServer()
      return {
        createBus: (options) => contract.makeBus(server.url, options),
        down: async () => server.kill('SIGKILL'),
        up: () => server.restart(),
        withinMs,
        close: () => server.stop(),
      }
    },
  }
}

/** Two simulated processes (see `twoProcesses` of stockpyle/testing), each on its own bus of `contract` to `url`. */
export function processesOn(contract: BusContract, url: string, options: TestBusOptions = {}) {
  return twoProcesses(contract.makeBus(url, options), contract.makeBus(url, options))
}

/**
 * Errors a bus cannot throw to a caller (a lost connection, a listener that throws or rejects): given
 * `onError`, each goes to it and nothing is warned; without it, the first is one process warning
 * `STOCKPYLE_INVALIDATION_ERROR` naming the bus and the error, and later ones are dropped. `server()`
 * is a private server, killed (SIGKILL) and restarted here.
 */
export function unreportedErrorCases(contract: BusContract, server: () => ServerProcess & { readonly url: string }): void {
  for (const how of ['throws', 'rejects'] as const) {
    for (const withOnError of [false, true]) {
      const title = withOnError
        ? 'with onError: it receives every error, and nothing is warned'
        : `without onError: the first error is one ${UNREPORTED} warning naming the bus, later ones are dropped`
      it(`${title} (a lost connection, then a listener that ${how})`, async () => {
        const name = `${contract.name}-unreported-${how}-${withOnError}`
        const reported: unknown[] = []
        const warnings = warningsNaming(name)
        const bus = contract.makeBus(server().url, {
          name,
          timeout: 300,
          heartbeatInterval: 200,
          maxBackoff: 100,
          ...(withOnError ? { onError: (e: unknown) => reported.push(e) } : {}),
        })
        let calls = 0
        const fail = (): void => {
          calls++
          throw new Error(`listener failure ${calls}`)
        }
        bus.subscribe({ onInvalidate: how === 'throws' ? fail : async () => fail(), onDown: () => {}, onUp: () => {} })
        let other: TestBus | undefined
        let killed = false
        try {
          await poll(() => bus.subscribed, 'the subscription')
          server().kill('SIGKILL')
          killed = true
          await poll(() => (withOnError ? reported : warnings.messages).length > 0, 'the lost connection to be reported')
          await server().restart()
          killed = false
          await poll(() => bus.subscribed, 'the subscription again')
          other = contract.makeBus(server().url, { onError: () => {} })
          for (const key of ['a', 'b']) {
            await other.publish([key])
            await poll(() => calls === (key === 'a' ? 1 : 2), `the delivery of ${key}`)
          }
          await nextTurn()
          if (withOnError) {
            expect(warnings.messages).toEqual([])
            expect(reported.length).toBeGreaterThanOrEqual(3)
            expect(reported.slice(-2).map((e) => (e as Error).message)).toEqual(['listener failure 1', 'listener failure 2'])
          } else {
            expect(warnings.messages).toHaveLength(1)
            expect(warnings.messages[0]).toMatch(new RegExp(`^${name}: .*\\bonError\\b`))
            expect(warnings.messages[0]).not.toContain('listener failure')
          }
        } finally {
          warnings.stop()
          await Promise.all([bus.close(), other?.close()])
          if (killed) await server().restart()
        }
      })
    }
  }
}

/**
 * A malformed message from a third party on the channel is reported as what it is — a
 * `StockpyleError` `E_STOCKPYLE` saying it was ignored — never as `StoreUnavailableError`, which an
 * `onError` counting outages by class would count as the server being down (review).
 */
export function malformedMessageCase(contract: BusContract, url: () => string): void {
  it('reports a malformed message as StockpyleError E_STOCKPYLE, not as the server being unavailable', async () => {
    const channel = `stockpyle_bus_malformed_${process.pid}`
    const errors: unknown[] = []
    const bus = contract.makeBus(url(), { channel, onError: (e) => errors.push(e) })
    const r = new Recorder()
    bus.subscribe(r)
    try {
      await poll(() => bus.subscribed, 'the subscription')
      await contract.publishRaw(url(), channel, '{"o":"x","k":"not an array"}')
      await poll(() => errors.length > 0, 'the report')
      expect(errors).toHaveLength(1)
      expect(errors[0]).toBeInstanceOf(StockpyleError)
      expect(errors[0]).not.toBeInstanceOf(StoreUnavailableError)
      expect((errors[0] as StockpyleError).code).toBe('E_STOCKPYLE')
      expect((errors[0] as Error).message).toContain('ignored a malformed')
      expect(r.keys).toEqual([])
      expect(bus.subscribed).toBe(true)
    } finally {
      await bus.close()
    }
  })
}
