import { describe, it } from 'vitest'
import type { InvalidationBus } from '../../src/invalidation/index.js'
import { type BusConformanceOptions, twoProcesses } from '../../src/testing/index.js'
import type { ServerProcess } from '../harness/servers.js'

/** A bus as the contract tests see it. */
export type TestBus = InvalidationBus & { readonly subscribed: boolean; readonly channel: string }

/** Options the contract passes when it makes a bus. */
export interface TestBusOptions {
  heartbeatInterval?: number
  timeout?: number
  channel?: string
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
