/** Why each placeholder {@link notBytes} made stands for no bytes (weakly held: placeholders live per read). */
const reasons = new WeakMap<Uint8Array, string>()

/**
 * An empty byte array standing for a value a backend's storage answered that is not bytes at all (a
 * string another user of a Keyv wrote under a stockpyle key, say). A backend's `getMany` answers it in
 * that key's place: the store then treats the entry as corrupt, as it treats bytes that are not an
 * envelope — replaces it by a tombstone and rejects with `CorruptEntryError`, so a chain reports the
 * layer and reads the one below — and `envelopeProblem` gives `reason` as the message.
 * @param reason Why the entry is corrupt, e.g. "Keyv returned `\"hello\"`, not bytes".
 */
export function notBytes(reason: string): Uint8Array {
  const placeholder = new Uint8Array(0)
  reasons.set(placeholder, reason)
  return placeholder
}

/** The reason given to {@link notBytes} when `bytes` is such a placeholder, else `undefined`. */
export function notBytesReason(bytes: Uint8Array): string | undefined {
  return reasons.get(bytes)
}
