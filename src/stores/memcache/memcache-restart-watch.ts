import type { MemcacheClient } from 'memcache-client'
import { withDeadline } from './memcache-deadline.js'

/** What one `stats` of a memcached server says about the process that answered it. */
export interface ProcessStamp {
  /** `pid` as the server reports it; `undefined`: not reported. */
  readonly pid: string | undefined
  /**
   * `uptime` in seconds as memcached counts it: whole seconds, 1 to 2 s more than it ran, and behind
   * by as long as the server was frozen until its clock next ticks (within a second). NaN: not reported.
   */
  readonly uptime: number
  /** `performance.now()` when the `stats` was sent. */
  readonly sentAt: number
  /** `performance.now()` when its answer came. */
  readonly answeredAt: number
}

/** Seconds of memcached's uptime counting that {@link uptimeShowsRestart} allows for. */
const UPTIME_SLACK_S = 3

/** Ms by which memcached's uptime may exceed how long it ran (it counts 1 to 2 s more), with 0.5 s to spare. */
const UPTIME_EXCESS_MS = 2500

/**
 * Ms between two answers that both show a restart by uptime before it is believed: a server thawed
 * after a freeze may answer once with an uptime that stopped while it was frozen, then its clock ticks.
 */
export const UPTIME_CONFIRM_MS = 1500

/**
 * Whether the uptime in `now` is too short for the process of `known`: it grew less than the time
 * between the two answers allows, with {@link UPTIME_SLACK_S} to spare. Shows the restart of a
 * process that had run more than about 4 s, however soon after anything; `false` when either uptime
 * is unknown.
 */
export function uptimeShowsRestart(known: ProcessStamp, now: ProcessStamp): boolean {
  return now.uptime < known.uptime + (now.sentAt - known.answeredAt) / 1000 - UPTIME_SLACK_S
}

/**
 * Whether the process of `now` started after `time` (`performance.now()`), by its uptime: a start less
 * than about 2 s after `time` cannot be told (memcached counts 1 to 2 s more than it ran).
 */
export function startedAfter(now: ProcessStamp, time: number): boolean {
  return now.sentAt - now.uptime * 1000 > time
}

/** Whether the process of `now` was running already at `time` (`performance.now()`), by its uptime. */
export function startedBefore(now: ProcessStamp, time: number): boolean {
  return now.answeredAt - now.uptime * 1000 + UPTIME_EXCESS_MS < time
}

/**
 * Tells whether the memcached server behind one client restarted since this process last sent it
 * anything, for a server quarantined because more of its writes failed than can be repaired (it may
 * hold stale entries; a restarted one holds nothing from before). One process listens on an address
 * at a time: any process this one sent to is either gone or the one answering now.
 *
 * It keeps a {@link ProcessStamp} of the process it sent to: a `stats` answered on the connection of
 * the latest call that may have reached the server (a connection lives and dies with one process;
 * one is asked after the first answered call on each new connection), or by a process whose uptime
 * shows it was running before any call not sent to the stamp's. A quarantined server has restarted
 * when its `stats` show: another process id than the stamp's, every call since the stamp having gone
 * to it; an uptime shorter than the stamp's process would have by now (container restarts keep pid
 * 1); or a start after the quarantine began. The uptime signs must show twice,
 * {@link UPTIME_CONFIRM_MS} apart (a thawed server's clock lags). A server never reached before holds
 * nothing of ours: any answer lifts the quarantine.
 */
export class MemcacheRestartWatch {
  readonly #client: MemcacheClient
  readonly #address: string
  readonly #timeout: number
  readonly #retryDelay: number
  /** A call may have reached the server (answered, or failed other than by failing to connect). */
  #contacted = false
  /** memcache-client's `socketID` (the next connection's number) when the latest such call ended. */
  #contactSocket = 0
  /** The process the calls went to; `undefined`: not known. */
  #stamp: ProcessStamp | undefined
  /** memcache-client's `socketID` when {@link #stamp} was taken. */
  #stampSocket = 0
  /** When (`performance.now()`) the first call since the stamp that may have gone to another process began. */
  #unstampedSince: number | undefined
  #asking = false
  /** `performance.now()` when the quarantine began; `undefined`: not quarantined. */
  #since: number | undefined
  /** `performance.now()` before which no check is sent. */
  #nextCheck = 0
  /** The first answer in a row whose uptime showed a restart, awaiting confirmation. */
  #suspect: ProcessStamp | undefined

  constructor(client: MemcacheClient, address: string, timeout: number, retryDelay: number) {
    this.#client = client
    this.#address = address
    this.#timeout = timeout
    this.#retryDelay = retryDelay
  }

  /** Whether the server is quarantined. */
  get quarantined(): boolean {
    return this.#since !== undefined
  }

  /** Quarantines the server (from now; a quarantine already begun keeps its start). */
  quarantine(): void {
    if (this.#since !== undefined) return
    this.#since = performance.now()
    this.#nextCheck = 0
    this.#suspect = undefined
  }

  /**
   * A call that began at `start` (`performance.now()`) was answered: on a connection without a stamp,
   * the process is asked for one.
   */
  answered(start: number): void {
    if (this.#contact(start) && !this.#asking) void this.#ask().then(() => undefined, noStamp)
  }

  /** A call that began at `start` failed with `err`: unless it failed to connect, it may have reached the server. */
  failed(start: number, err: unknown): void {
    if ((err as { connecting?: unknown } | undefined)?.connecting !== true) this.#contact(start)
  }

  /** Notes a call that may have reached the server; `true` when it may have gone to another process than the stamp's. */
  #contact(start: number): boolean {
    const socket = this.#client.socketID
    this.#contacted = true
    this.#contactSocket = socket
    if (this.#stamp !== undefined && socket === this.#stampSocket) return false
    this.#unstampedSince ??= start
    return true
  }

  /**
   * Whether the quarantined server has restarted, asked with `stats` at most once per `retryDelay`
   * (otherwise, and while it does not answer, `false`). `true` lifts the quarantine.
   */
  async restarted(): Promise<boolean> {
    const since = this.#since
    if (since === undefined) return true
    if (performance.now() < this.#nextCheck || this.#asking) return false
    this.#nextCheck = performance.now() + this.#retryDelay
    let answer: { readonly now: ProcessStamp; readonly ours: boolean }
    try {
      answer = await this.#ask()
    } catch {
      return false // not answering yet: still quarantined
    }
    if (this.#since === undefined) return true
    if (answer.ours) this.#suspect = undefined
    if (answer.ours || !this.#shows(answer.now, since)) return false
    this.#since = undefined
    this.#suspect = undefined
    // only `stats` were sent since the quarantine began: no live process holds anything of ours
    this.#contacted = false
    this.#stamp = undefined
    this.#unstampedSince = undefined
    return true
  }

  #shows(now: ProcessStamp, since: number): boolean {
    if (!this.#contacted) return true
    const known = this.#unstampedSince === undefined ? this.#stamp : undefined
    if (known !== undefined && now.pid !== undefined && now.pid !== known.pid) return true
    if (!((known !== undefined && uptimeShowsRestart(known, now)) || startedAfter(now, since))) {
      this.#suspect = undefined
      return false
    }
    if (this.#suspect === undefined || this.#suspect.pid !== now.pid) {
      this.#suspect = now
      return false
    }
    return now.sentAt - this.#suspect.answeredAt >= UPTIME_CONFIRM_MS
  }

  /**
   * Sends `stats`. The answer is `ours`, and becomes the stamp, when it comes from the process the
   * calls went to: on the connection of the latest call that may have reached the server, or from a
   * process already running when the first call not known to have gone to the stamp's began.
   */
  async #ask(): Promise<{ readonly now: ProcessStamp; readonly ours: boolean }> {
    this.#asking = true
    try {
      const socket = this.#client.socketID
      const sentAt = performance.now()
      const reply = await withDeadline(this.#client.cmd<{ STAT?: string[][] }>('stats'), this.#timeout, this.#address)
      const stat = (name: string): string | undefined => reply.STAT?.find(([key]) => key === name)?.[1]
      const now: ProcessStamp = { pid: stat('pid'), uptime: Number(stat('uptime') ?? Number.NaN), sentAt, answeredAt: performance.now() }
      const sameConnection = this.#client.socketID === socket && socket === this.#contactSocket
      const ours = this.#contacted && (sameConnection || (this.#unstampedSince !== undefined && startedBefore(now, this.#unstampedSince)))
      if (ours) {
        this.#stamp = now
        this.#stampSocket = socket
        this.#unstampedSince = undefined
      }
      return { now, ours }
    } finally {
      this.#asking = false
    }
  }
}

function noStamp(): void {
  // none this time: the next answered call on a connection without one asks again, and a quarantine
  // meanwhile believes no process id
}
