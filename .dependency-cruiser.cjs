/**
 * The architectural walls of stockpyle (issue 11), checked by dependency-cruiser in `npm run lint`.
 *
 *   src/core  →  src/contracts  →  src/stores/<one folder each>  →  src/chain, src/invalidation, src/testing, src/cli
 *
 * Arrows only run to the left. Each store folder loads only its own client library, so a user of
 * `stockpyle` (memory only) never loads a database driver, and `testing` sees the package only through
 * its public entry points, as a third-party store author would. Type-only imports count
 * (`tsPreCompilationDeps`), also for cycles.
 */

/** Third-party packages (and anything resolved outside src/): what `to.dependencyTypes` calls npm. */
const NPM = ['npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-bundled', 'npm-no-pkg', 'npm-unknown', 'unknown', 'undetermined']

/** Each store folder and the client libraries it may load (besides node: built-ins). */
const STORE_CLIENTS = {
  sql: ['kysely', 'pg', 'better-sqlite3'],
  redis: ['ioredis'],
  memcache: ['memcache-client', 'hashring'],
  keyv: ['keyv'],
  memory: ['lru-cache'],
}

/** `node_modules/<name>/…` (also `@types/<name>`), for `to.path`. */
const pkg = (names) => `(^|/)node_modules/(@types/)?(${names.join('|')})/`

/** The bench CLI measures the raw clients as its floor (DESIGN §7.17), so it may load them. */
const BENCH = '^src/cli/bench/'

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No import cycles between modules, type-only imports included.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'core-imports-only-core',
      severity: 'error',
      comment: 'src/core is the bottom layer: it imports no contracts, store, chain, invalidation, testing or cli module.',
      from: { path: '^src/core/' },
      to: { path: '^src/', pathNot: '^src/core/' },
    },
    {
      name: 'contracts-import-only-core',
      severity: 'error',
      comment: 'src/contracts (Store, BaseStore, KeyValueStore, KeyValueBackend, InvalidationBus, StoreDecorator) import only core.',
      from: { path: '^src/contracts/' },
      to: { path: '^src/', pathNot: ['^src/core/', '^src/contracts/'] },
    },
    {
      name: 'store-imports-core-contracts-and-itself',
      severity: 'error',
      comment: 'A store folder imports only core, contracts and its own files: no other store, chain, invalidation, testing or cli.',
      from: { path: '^src/stores/([^/]+)/' },
      to: { path: '^src/', pathNot: ['^src/core/', '^src/contracts/', '^src/stores/$1/'] },
    },
    ...Object.entries(STORE_CLIENTS).map(([store, clients]) => ({
      name: `store-${store}-loads-only-its-client`,
      severity: 'error',
      comment: `src/stores/${store} loads no third-party package but ${clients.join(', ')} (node: built-ins are fine).`,
      from: { path: `^src/stores/${store}/` },
      to: { dependencyTypes: NPM, pathNot: pkg(clients) },
    })),
    {
      name: 'only-the-sql-store-loads-sql-drivers',
      severity: 'error',
      comment: 'kysely, pg and better-sqlite3 are loaded only by src/stores/sql (invalidation reuses its connection code).',
      from: { pathNot: ['^src/stores/sql/', BENCH] },
      to: { path: pkg(['kysely', 'pg', 'better-sqlite3']) },
    },
    {
      name: 'only-the-redis-store-and-bus-load-ioredis',
      severity: 'error',
      comment: 'ioredis is loaded only by src/stores/redis and the Redis bus.',
      from: { pathNot: ['^src/stores/redis/', '^src/invalidation/redis-(bus|bus-options|connection)\\.ts$', BENCH] },
      to: { path: pkg(['ioredis']) },
    },
    {
      name: 'only-the-memcache-store-loads-memcache-clients',
      severity: 'error',
      comment: 'memcache-client and hashring are loaded only by src/stores/memcache.',
      from: { pathNot: ['^src/stores/memcache/', BENCH] },
      to: { path: pkg(['memcache-client', 'hashring']) },
    },
    {
      name: 'only-the-keyv-store-loads-keyv',
      severity: 'error',
      comment: 'keyv is loaded only by src/stores/keyv.',
      from: { pathNot: ['^src/stores/keyv/', BENCH] },
      to: { path: pkg(['keyv']) },
    },
    {
      name: 'testing-imports-only-public-entry-points',
      severity: 'error',
      comment:
        'src/testing (stockpyle/testing) uses the package as a third party would: only src/index.ts and the subpath index files (stockpyle/sql, …).',
      from: { path: '^src/testing/' },
      to: {
        path: '^src/',
        pathNot: ['^src/testing/', '^src/index\\.ts$', '^src/stores/[^/]+/index\\.ts$', '^src/invalidation/index\\.ts$'],
      },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports are dependencies too: `import type` and imports erased by the compiler.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
      extensions: ['.ts', '.js', '.d.ts', '.json'],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
}
