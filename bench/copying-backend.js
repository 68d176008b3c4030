/**
 * A KeyValueBackend over an in-process Map that copies bytes in and out, as a network client would (a
 * read gets a fresh Buffer, a write keeps its own copy): the chain-overhead benches' stand-in for a server.
 * `clearAll()` empties it.
 */
export function copyingBackend() {
  const held = new Map()
  return {
    name: 'map',
    clearAll: () => held.clear(),
    async getMany(keys) {
      return keys.map((k) => {
        const v = held.get(k)
        return v === undefined ? undefined : Buffer.from(v)
      })
    },
    async setMany(entries) {
      for (const e of entries) held.set(e.key, Buffer.from(e.value))
    },
    async addMany(entries) {
      return entries.map((e) => {
        if (held.has(e.key)) return false
        held.set(e.key, Buffer.from(e.value))
        return true
      })
    },
    async deleteMany(keys) {
      for (const k of keys) held.delete(k)
    },
    async close() {},
  }
}
