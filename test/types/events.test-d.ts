import { describe, expectTypeOf, it } from 'vitest'
import { type CacheErrorEvent, ChainedStore, type LayerOperation, ProcessMemoryStore } from '../../src/index.js'

const chain = new ChainedStore([new ProcessMemoryStore(), new ProcessMemoryStore()])

describe('chain events', () => {
  it('cacheError listeners get a CacheErrorEvent', () => {
    chain.events.on('cacheError', (event) => {
      expectTypeOf(event).toEqualTypeOf<CacheErrorEvent>()
      expectTypeOf(event.operation).toEqualTypeOf<LayerOperation>()
      expectTypeOf(event.layer).toEqualTypeOf<string>()
    })
    chain.events.once('cacheError', (event: CacheErrorEvent) => void event.index)
    expectTypeOf(chain.events.listenerCount('cacheError')).toEqualTypeOf<number>()
  })

  it('a misspelt event or field is a compile error', () => {
    // @ts-expect-error no such event
    chain.events.on('cacheEror', () => {})
    chain.events.on('cacheError', (event) => {
      // @ts-expect-error no such field
      void event.definitelyNotAField
    })
    // @ts-expect-error the listener's parameter is not a CacheErrorEvent
    chain.events.on('cacheError', (event: { layer: number }) => void event)
    // @ts-expect-error the chain emits it; emitting another payload is wrong
    chain.events.emit('cacheError', 'boom')
  })
})
