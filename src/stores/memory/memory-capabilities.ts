import { capabilities, type StoreCapabilities } from '../../contracts/base-store.js'

/** What a ProcessMemoryStore with these (checked) cache settings does: see `Store.capabilities`. */
export function memoryCapabilities(settings: { polymorphic: boolean; tombstoneMs: number; graceMs: number }): StoreCapabilities {
  return capabilities({
    polymorphic: settings.polymorphic,
    inProcess: true,
    clearable: true,
    addOnlyBackfills: true,
    tombstones: settings.tombstoneMs > 0,
    staleReads: settings.graceMs > 0,
    refillsExpired: true,
  })
}
