import type { OtherArgument } from '../../core/options.js'

/** The names SqlStore's second argument takes (`lifetime` and `polymorphic` only to refuse them with a reason). */
export const SQL_STORE_OPTIONS = [
  'name',
  'tables',
  'camelCase',
  'checkUniqueKeys',
  'bytes',
  'dialect',
  'maxConnections',
  'timeout',
  'clock',
  'prefix',
  'lifetime',
  'polymorphic',
] as const

/** The names SqlStore's first argument, the connection, takes. */
export const SQL_CONNECTION_SETTINGS = ['url', 'db'] as const

/**
 * For the connection's check: a store option given in it is refused naming the second argument.
 * (`lifetime` and `polymorphic` are left out: the second argument refuses them too.)
 */
export const OPTIONS_ARGUMENT: OtherArgument = {
  known: SQL_STORE_OPTIONS.filter((name) => name !== 'lifetime' && name !== 'polymorphic'),
  describe: (name) => `an option of the second argument: new SqlStore(connection, { ${name} })`,
}

/** For the options' check: a connection setting given in them is refused naming the first argument. */
export const CONNECTION_ARGUMENT: OtherArgument = {
  known: SQL_CONNECTION_SETTINGS,
  describe: (name) => `a setting of the connection, the first argument: new SqlStore({ ${name} }, options)`,
}
