/** Backoff before reconnect attempt `attempt` (1-based): doubling from 100 ms up to `max` ms, with ±20 % jitter. */
export function backoff(attempt: number, max: number): number {
  const base = Math.min(max, 100 * 2 ** Math.min(attempt - 1, 16))
  return Math.round(base * (0.8 + Math.random() * 0.4))
}
