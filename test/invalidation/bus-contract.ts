import { describe, it } from 'vitest'
import { ChainedStore, ProcessMemoryStore } from '../../src/index.js'
import type { InvalidationBus } from '../../src/invalidation/index.js'
import { type BusConformanceOptions, ConformanceUser } from '../../src/testing/index.js'
import type { ServerProcess } from '../harness/servers.js'
import { poll } from './helpers.js'

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

/** Two simulated processes: each a memory layer on its own bus over one shared "database". */
export function twoProcesses(contract: BusContract, url: string, options: TestBusOptions = {}) {
  const busA = contract.makeBus(url, options)
  const busB = contract.makeBus(url, options)
  const db = new ProcessMemoryStore({ tombstoneLifetime: 0, name: 'db' })
  // Evictions leave tombstones that refuse backfills for tombstoneLifetime: short here, so tests can re-cache quickly.
  const memA = new ProcessMemoryStore({ bus: busA, name: 'memA', tombstoneLifetime: 0.1 })
  const memB = new ProcessMemoryStore({ bus: busB, name: 'memB', tombstoneLifetime: 0.1 })
  const a = new ChainedStore([memA, db])
  const b = new ChainedStore([memB, db])
  const close = async (): Promise<void> => {
    await Promise.all([a.close(), b.close()])
    await Promise.all([busA.close(), busB.close()])
  }
  return { busA, busB, db, memA, memB, a, b, close }
}

/** Reads through `chain` until the object is cached in `memory` (an eviction's tombstone may refuse the first backfills). */
export async function cacheIn(chain: ChainedStore, memory: ProcessMemoryStore, id: number): Promise<void> {
  await poll(async () => {
    await chain.get(ConformanceUser, { id })
    return (await memory.get(ConformanceUser, { id })) !== undefined
  }, `user ${id} to be cached in ${memory.name}`)
}
