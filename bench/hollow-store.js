// The `hollow` first layer of bench/fine-ab.js and bench/gc-s3.js: the chain's machinery without a
// memory layer's lookups and backfills (chain − hollow is the memory layer's share).

/**
 * An in-process store class that holds nothing: every read misses, every write and backfill is
 * dropped, `clear()` does nothing. Built on `BaseStore` and `capabilities` of the stockpyle build
 * under test (passed in, so that it extends the same classes the chain checks).
 */
export function hollowStoreClass({ BaseStore, capabilities }) {
  return class HollowStore extends BaseStore {
    name = 'hollow'
    capabilities = capabilities({ inProcess: true, addOnlyBackfills: true, clearable: true })
    getNow() {
      return undefined
    }
    backfillNow() {}
    async readMany(_info, requests) {
      return requests.map(() => undefined)
    }
    async writeMany() {}
    async removeMany() {}
    async clear() {}
  }
}
