/**
 * Lets `work` run without anyone awaiting it — on purpose: a background repair, a lease release, a
 * reconnect — and ends it in a handler, so a failure goes to `report` and never becomes an unhandled
 * rejection (which would end a Node process under the default `--unhandled-rejections=throw`).
 * A `report` that throws is ignored for the same reason.
 */
export function detach(work: Promise<unknown>, report: (err: unknown) => void): void {
  work.catch((err: unknown) => {
    try {
      report(err)
    } catch {
      // a failing reporter must not crash the host either
    }
  })
}
