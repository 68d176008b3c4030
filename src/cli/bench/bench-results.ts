import type { MemoryReport } from './peer.js'
import type { RowResult } from './scenarios/common.js'

/** The machine and software a run measured. */
export interface MachineInfo {
  readonly cpus: number
  readonly cpuModel: string
  readonly memoryGiB: number
  readonly node: string
  readonly platform: string
  /** Server versions, e.g. `Redis 7.0.15`. */
  readonly servers: string[]
  /** Extra lines (e.g. CPU pinning). */
  readonly notes: string[]
}

/** Everything a run produced. */
export interface BenchResults {
  readonly date: string
  readonly command: string
  readonly machine: MachineInfo
  /** Peer libraries measured, with versions and configurations. */
  readonly peers: { name: string; version: string; config: string }[]
  readonly timing: { rounds: number; roundMs: number; warmupMs: number; warmupCalls?: number; warmupMaxMs?: number }
  readonly rows: RowResult[]
  readonly memory: MemoryReport[]
  readonly seconds: number
}
