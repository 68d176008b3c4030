import { identityKey } from './backfill.js'

/** One write's turn at the caches (see {@link CacheTurns.take}). */
export class CacheTurn {
  constructor(
    /** The earlier writes' turns at these objects, to wait for; `undefined` when there are none. */
    readonly before: Promise<void>[] | undefined,
    /** Ends the turn: later writes of these objects may update the caches. */
    readonly end: () => void,
  ) {}
}

/**
 * Orders the cache updates of writes of one object in this process as their database writes resolved:
 * a write that reached the database after another updates the caches after it did, so the older
 * value can never land last (a slow cache write of the first overtaken by the second's). Writes of
 * other objects never wait for each other.
 */
export class CacheTurns {
  /** The last turn taken per object (identity key), until it ends. */
  readonly #last = new Map<string, Promise<void>>()

  /**
   * Takes a turn for a write of `objs` whose database write just resolved: call it before anything is
   * awaited after that write, wait for `before`, update the caches, then `end()` (also on failure).
   */
  take(objs: readonly object[]): CacheTurn {
    const keys: string[] = []
    for (const obj of objs) {
      const key = identityKey(obj)
      if (key !== undefined) keys.push(key)
    }
    return this.takeKeys(keys)
  }

  /**
   * Every turn not yet ended, of any object: what a write must wait for when it cannot name the
   * objects it may have changed (a failed delete by an alternate key).
   */
  pending(): Promise<void>[] {
    return [...new Set(this.#last.values())]
  }

  /** {@link take} for objects known by their identity keys (record keys: lookups by primary key). */
  takeKeys(keys: readonly string[]): CacheTurn {
    let before: Promise<void>[] | undefined
    for (const key of keys) {
      const last = this.#last.get(key)
      if (last !== undefined) (before ??= []).push(last)
    }
    if (keys.length === 0) return NO_TURN
    let end = () => {}
    const turn = new Promise<void>((resolve) => {
      end = resolve
    })
    for (const key of keys) this.#last.set(key, turn)
    return new CacheTurn(before, () => {
      end()
      for (const key of keys) if (this.#last.get(key) === turn) this.#last.delete(key)
    })
  }
}

const NO_TURN = new CacheTurn(undefined, () => {})
