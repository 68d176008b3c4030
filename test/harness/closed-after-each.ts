import { afterEach } from 'vitest'

/**
 * Registers an `afterEach` (in the describe block it is called in) that closes every store handed to
 * the returned function during a test, last opened first; the function returns the store it is given.
 */
export function closedAfterEach(): <S extends { close(): Promise<void> }>(store: S) => S {
  const open: { close(): Promise<void> }[] = []
  afterEach(async () => {
    for (const store of open.splice(0).reverse()) await store.close()
  })
  return (store) => {
    open.push(store)
    return store
  }
}
