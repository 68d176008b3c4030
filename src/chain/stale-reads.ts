import { type GetEntriesOptions, type LookupRequest, readRequests, type StoreEntry } from '../contracts/base-store.js'
import type { Clock } from '../core/lifetime.js'
import type { ModelInfo } from '../core/registry.js'
import { type AnsweredPart, answeredPart, checkAnswer } from './layer-answer.js'
import type { LayerCalls } from './layer-calls.js'
import type { LayerGuard } from './layer-guard.js'

const STALE: GetEntriesOptions = Object.freeze({ stale: true })

/**
 * Copies past their expiry that the cache layers still keep within their `grace`, first layer first:
 * what a chain with `serveStale` answers when its authoritative layer fails on a read. A cache layer
 * that fails here is reported (operation `stale`) and passed over (when only some of its nodes failed or
 * some entries were corrupt, only their lookups are); as on any read, a fenced layer is
 * skipped and copies of objects awaiting repair in a layer are not served. A nested chain in the last
 * position is asked too: it answers from its own cache layers.
 */
export async function readStale(
  calls: LayerCalls,
  clock: Clock,
  info: ModelInfo,
  requests: readonly LookupRequest[],
): Promise<(StoreEntry | undefined)[]> {
  const out: (StoreEntry | undefined)[] = new Array(requests.length).fill(undefined)
  let pending = requests.map((_, i) => i)
  // The cache layers above the last; and the last when it is a chain whose caches keep stale copies:
  // it answers a stale read from them.
  const through = calls.nestedTail?.capabilities.staleReads === true ? calls.last : calls.last - 1
  for (let j = 0; j <= through && pending.length > 0; j++) {
    const guard = calls.guards[j] as LayerGuard
    const started = guard.readStarted()
    let found: (StoreEntry | undefined)[]
    try {
      // As for any read: a fenced layer is not read, and copies of objects awaiting repair there are
      // dropped (the chain knows them to be outdated: a put or delete that failed there resolved).
      calls.ready(j, 'stale')
      found = await calls.run(j, 'stale', (layer) =>
        readRequests(
          layer,
          info,
          pending.map((i) => requests[i] as LookupRequest),
          STALE,
        ),
      )
      checkAnswer(found, pending.length, info.model, guard.layer.name)
    } catch (err) {
      // (some nodes failed, or some entries were corrupt: the other answers stand, as on any read)
      let part: AnsweredPart | undefined
      try {
        part = answeredPart(err, pending.length, info.model, guard.layer.name)
      } catch (wrong) {
        calls.fail(j, 'stale', wrong)
        continue
      }
      calls.fail(j, 'stale', err)
      if (part === undefined) continue
      found = part.entries
    }
    if (guard.filter(found, started) > 0) calls.observer.skipped(j)
    const still: number[] = []
    const now = clock.now()
    pending.forEach((i, p) => {
      const entry = found[p]
      if (entry === undefined) still.push(i)
      else {
        out[i] = entry
        if (entry.expiresAt !== undefined && entry.expiresAt < now) calls.observer.staleAge(j, now - entry.expiresAt)
      }
    })
    pending = still
  }
  return out
}
