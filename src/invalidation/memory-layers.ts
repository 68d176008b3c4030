import type { Store } from '../contracts/base-store.js'
import { ProcessMemoryStore } from '../stores/memory/process-memory-store.js'

/**
 * The in-process cache layers among the stores, which the watcher clears when changes may have been
 * missed: inside (nested) chains (`layers`) and behind decorators (`inner`: logging, metrics,
 * FaultStore — whatever capabilities they declare), every ProcessMemoryStore, and every other store
 * that declares `capabilities.inProcess` and has `clear()`.
 */
export function memoryLayers(stores: readonly Store[]): Store[] {
  const out: Store[] = []
  const seen = new Set<unknown>()
  const visit = (store: Store): void => {
    if (seen.has(store)) return
    seen.add(store)
    const { layers, inner } = store as { layers?: unknown; inner?: unknown }
    if (Array.isArray(layers)) for (const layer of layers) visit(layer as Store)
    else if (isStore(inner)) visit(inner)
    else if (store instanceof ProcessMemoryStore || (store.capabilities?.inProcess === true && typeof store.clear === 'function'))
      out.push(store)
  }
  for (const store of stores) visit(store)
  return out
}

/** True when `value` looks like a store (what a decorator's `inner` holds). */
function isStore(value: unknown): value is Store {
  const s = value as Partial<Store> | null
  return typeof s === 'object' && s !== null && typeof s.batchGetEntries === 'function' && typeof s.batchPutEntries === 'function'
}
