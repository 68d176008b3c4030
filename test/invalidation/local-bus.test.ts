import { describe, it } from 'vitest'
import { LocalBusHub, runBusConformance } from '../../src/testing/index.js'

/** One hub per channel: buses on a channel share its hub. */
const hubs = new Map<string, LocalBusHub>()
const hubOf = (channel: string): LocalBusHub => {
  let hub = hubs.get(channel)
  if (hub === undefined) hubs.set(channel, (hub = new LocalBusHub()))
  return hub
}

runBusConformance({
  name: 'LocalBusHub (in-process)',
  describe,
  test: it,
  createBus: ({ channel }) => hubOf(channel).connect(),
  outage: async () => {
    const hub = new LocalBusHub()
    return {
      createBus: () => hub.connect(),
      down: async () => hub.down(),
      up: async () => hub.up(),
      close: async () => {},
    }
  },
})
