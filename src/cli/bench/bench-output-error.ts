/**
 * The benchmark's results or profile could not be written (the output directory was removed or
 * replaced by a file during the run, the disk is full): the CLI prints its message, one line, and
 * exits with code 1.
 */
export class BenchOutputError extends Error {
  override readonly name = 'BenchOutputError'
}
