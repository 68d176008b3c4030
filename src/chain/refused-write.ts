import type { Store } from '../contracts/base-store.js'
import { UnsupportedOperationError } from '../core/errors.js'

/**
 * The error a chain rejects a put or a delete with when its authoritative layer `tail` declares that
 * it refuses that write (`capabilities.refusesPuts` / `refusesDeletes`: a LoaderStore without `save` /
 * `remove`). The chain raises it before touching any layer: the refusal is known, so — unlike after a
 * failed database write, whose outcome is unknown — no cache copy is invalidated and no error is
 * counted against the layer.
 * @param name the chain, named in the message.
 */
export function refusedWrite(name: string, tail: Store, operation: 'put' | 'delete'): UnsupportedOperationError {
  const [writes, capability, option] = operation === 'put' ? ['puts', 'refusesPuts', 'save'] : ['deletes', 'refusesDeletes', 'remove']
  return new UnsupportedOperationError(
    `${name} store ${operation}: its authoritative layer \`${tail.name}\` refuses ${writes} (it declares capabilities.${capability}, as a LoaderStore without \`${option}\` does); nothing was written, removed or invalidated`,
  )
}
