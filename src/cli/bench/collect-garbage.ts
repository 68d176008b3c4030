import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

let gc: (() => void) | undefined

/**
 * Runs a full garbage collection now. The suite calls it before each scenario, so that no scenario
 * pays, in whichever contender's round the collector happens to run, for the garbage the scenarios
 * before it left (S2 and S3's peers fill memory tiers of up to 70,000 objects each). Within a
 * scenario every contender pays for its own garbage.
 */
export function collectGarbage(): void {
  if (gc === undefined) {
    // Exposes `gc` to contexts made from now on (the flag is read when a context is created).
    setFlagsFromString('--expose-gc')
    gc = runInNewContext('gc') as () => void
  }
  gc()
}
