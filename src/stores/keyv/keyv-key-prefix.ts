import type { Keyv } from 'keyv'
import { InvalidOptionError, show } from '../../core/errors.js'
import type { KeyvAdapterTraits } from './keyv-adapter-traits.js'

/**
 * The `<namespace>:` Keyv prepends to a key on its way to the adapter, or `''` (no namespace, or
 * `useKeyPrefix: false`).
 *
 * Keyv 5.6 prepends it inconsistently: `get`, `set`, `setMany` and `delete` leave a key alone that
 * already starts with `<namespace>:`, while `getMany` and `deleteMany` always prepend it. A store whose
 * keys start with it (a namespace equal to the first part of the store's prefix) wrote to one key and
 * read and deleted another. {@link KeyvBackend} therefore hands the single-key methods the key with
 * this prefix already on (which they leave alone) and the batch methods the bare key (to which they add
 * it): both reach the adapter as `<namespace>:<key>`, whatever the key.
 */
export function keyvKeyPrefix(keyv: Keyv): string {
  const namespace = keyv.namespace
  return keyv.useKeyPrefix !== false && typeof namespace === 'string' && namespace !== '' ? `${namespace}:` : ''
}

/** Keyv 5.6's private key-prefixing methods, where this Keyv has them. */
interface KeyPrefixing {
  _getKeyPrefix?: (key: string) => string
  _getKeyPrefixArray?: (keys: string[]) => string[]
}

/**
 * Checks that this Keyv prefixes keys as {@link keyvKeyPrefix} expects (Keyv 5.6): the key handed to
 * its single-key methods and the one handed to its batch methods reach the adapter as one key, also
 * for a key that already starts with the namespace. A Keyv without these (private) methods is not
 * checked.
 * @throws InvalidOptionError when they disagree (a Keyv release that changed its key prefixing).
 */
export function checkKeyvPrefixing(keyv: Keyv, store: string): void {
  const own = keyv as unknown as KeyPrefixing
  const single = own._getKeyPrefix
  const batch = own._getKeyPrefixArray
  if (typeof single !== 'function' || typeof batch !== 'function') return
  const prefix = keyvKeyPrefix(keyv)
  for (const key of ['k', `${prefix}k`]) {
    const one = single.call(keyv, `${prefix}${key}`)
    const many = batch.call(keyv, [key])[0]
    if (one !== `${prefix}${key}` || many !== `${prefix}${key}`) {
      throw new InvalidOptionError(
        `${store}: option \`keyv\`: this Keyv prefixes keys unlike Keyv 5.6 (for the key ${show(key)} it sent ${show(one)} through get/set and ${show(many)} through getMany/deleteMany, where ${show(`${prefix}${key}`)} was expected), so the store could not find what it wrote; use keyv ^5.6 as tested`,
      )
    }
  }
}

/**
 * Why Keyv's iterator cannot list this store's keys as the store wrote them (so `clear()` cannot find
 * them), or `undefined` when it can. Keyv 5.6's iterator drops the first `:`-separated part of every
 * key it lists (meant as `<namespace>:`) whenever `useKeyPrefix` is on — also without a namespace,
 * where it is the store's own prefix, and only the first part of a namespace holding a `:`. With
 * `useKeyPrefix: false` keys are listed as the adapter gives them: as written for a `Map`, and for
 * @keyv/redis with a namespace (it adds and strips its own `<namespace>::`); without one @keyv/redis
 * lists only keys not holding its separator `::`; other adapters list only keys of `<namespace>:`,
 * which Keyv then does not write.
 * @param prefix The store's prefix as it starts every key (`'<prefix>:'`).
 */
export function unlistableReason(keyv: Keyv, traits: KeyvAdapterTraits, prefix: string): string | undefined {
  if (typeof keyv.iterator !== 'function') return 'its Keyv adapter cannot list keys'
  const namespace = keyv.namespace
  const named = typeof namespace === 'string' && namespace !== ''
  if (keyv.useKeyPrefix !== false) {
    if (!named) {
      return 'its Keyv has no namespace, and Keyv lists every key without its first `:`-separated part then (here the store’s prefix); give the Keyv a namespace'
    }
    if (namespace.includes(':')) {
      return `its Keyv namespace ${show(namespace)} holds a \`:\`, and Keyv lists keys without only the namespace’s first part; use a namespace without \`:\``
    }
    return undefined
  }
  const store = keyv.store as unknown
  if (store instanceof Map) return undefined
  if (traits.adapter === 'KeyvRedis') {
    if (named) return undefined
    const redis = store as { noNamespaceAffectsAll?: unknown; keyPrefixSeparator?: unknown }
    if (redis.noNamespaceAffectsAll === true) return undefined
    if ((redis.keyPrefixSeparator ?? '::') === '::' && !prefix.includes('::')) return undefined
    return 'its @keyv/redis adapter has no namespace and lists only keys without its separator, which this store’s keys hold; give the Keyv a namespace'
  }
  if (named) {
    return `with useKeyPrefix: false Keyv writes keys without its namespace, and its adapter lists only keys of ${show(`${namespace}:`)}`
  }
  return undefined
}
