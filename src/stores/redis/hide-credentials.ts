/** Commands whose arguments carry a password: AUTH, HELLO … AUTH, MIGRATE … AUTH, CONFIG SET masterauth. */
const SECRET_COMMANDS = new Set(['auth', 'hello', 'migrate', 'config'])

/**
 * Blanks the arguments of the command an ioredis error carries (`error.command.args`) when that
 * command sends a password — in the error, its `cause`, its `errors` (AggregateError) and a cluster's
 * `lastNodeError` — so that logging it, or a StoreUnavailableError whose `cause` it is, never prints
 * one. Changes the errors in place (they are ours: the client made them for this failure).
 * @returns `error`, for chaining.
 */
export function hideCredentials<E>(error: E, depth = 0): E {
  if (typeof error !== 'object' || error === null || depth > 4) return error
  const e = error as { command?: { name?: unknown; args?: unknown }; cause?: unknown; errors?: unknown; lastNodeError?: unknown }
  const command = e.command
  if (typeof command === 'object' && command !== null && SECRET_COMMANDS.has(String(command.name).toLowerCase())) {
    if (Array.isArray(command.args)) command.args = command.args.map(() => '(hidden)')
  }
  hideCredentials(e.cause, depth + 1)
  hideCredentials(e.lastNodeError, depth + 1)
  if (Array.isArray(e.errors)) for (const inner of e.errors) hideCredentials(inner, depth + 1)
  return error
}
