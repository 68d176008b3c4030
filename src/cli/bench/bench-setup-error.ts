/**
 * A server of the run could not be reached or set up. The CLI prints its message alone (one line,
 * no stack) and exits with code 1; every URL in it is shown without its user and password (see
 * `redactUrl`).
 */
export class BenchSetupError extends Error {
  override readonly name = 'BenchSetupError'
}

/**
 * Imports what a store of the run needs (an optional peer, or the store's subpath that loads one);
 * a package that is not installed fails the run with one line naming what to install.
 * @throws BenchSetupError when the package is not installed; what `load` throws otherwise
 */
export async function needed<T>(load: () => Promise<T>, packages: string, store: string): Promise<T> {
  try {
    return await load()
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ERR_MODULE_NOT_FOUND') throw err
    throw new BenchSetupError(`the ${store} store needs ${packages}, which is not installed: npm install ${packages}`)
  }
}
