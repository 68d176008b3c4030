/**
 * What every scenario shares: the shape of a row of the table, how a row's target is judged (ratios
 * of stockpyle ÷ floor and ÷ best peer, paired by round), and small helpers.
 */
import type { BenchEnv } from '../env.js'
import type { MemoryChild, PeerCache, PeerLibrary } from '../peer.js'
import { type BenchCase, type CaseResult, pairedRatio, type Timing } from '../runner.js'

/** The result of one row of the table: one stockpyle case compared with one floor. */
export interface RowResult {
  /** `'S1'` … `'S7'`. */
  readonly scenario: string
  /** Row name, e.g. `'S2 redis'`. */
  readonly row: string
  readonly title: string
  /** Unit of the ops/s figures: `'gets/s'`, `'batches/s'`, `'puts/s'`, `'storms/s'`. */
  readonly unit: string
  /** Every case measured in the row's group (rows of one group share them). */
  readonly cases: CaseResult[]
  /** The floor case this row compares with (its `library`); `undefined` for S7. */
  readonly floor: string | undefined
  /** The stockpyle case the row is about (its `library`). */
  readonly headline: string
  /** Whether the row's best peer is compared (peers do not apply to layer-alone rows). */
  readonly withPeers: boolean
  /** A layer measured alone (no chain): an extra reference, not one of the like-for-like rows. */
  readonly layerAlone: boolean
  /** The least stockpyle ÷ floor the target accepts, when the target is such a ratio (for the chart). */
  readonly minVsFloor?: number | undefined
  readonly target: TargetResult
  readonly notes: string[]
}

/** A target and whether this run met it. */
export interface TargetResult {
  readonly text: string
  /** `undefined` when a figure is missing, or for a reference without a target. */
  readonly met: boolean | undefined
  /** The figures behind the verdict. */
  readonly detail: string
}

/** What a scenario gets besides the environment. */
export interface ScenarioContext {
  readonly timing: Timing
  /** Measures a group of cases interleaved (or profiles one of them; see `runScenarios`). */
  measure(cases: readonly BenchCase[]): Promise<CaseResult[]>
  /** Peers (empty without Redis). */
  readonly peers: readonly PeerLibrary[]
  readonly memoryChildren?: readonly MemoryChild[] | undefined
  readonly s7Count?: number | undefined
  readonly s7MaxSize?: number | undefined
  readonly log: (line: string) => void
  /** Aborts the run (SIGINT): S7 kills its child and stops. */
  readonly signal?: AbortSignal | undefined
}

/** Throws when a contender missed: every case must return what it was asked for. */
export function ok(value: unknown, what: string): void {
  if (value === undefined || value === null) throw new Error(`${what}: unexpected miss`)
}

/** Checks that a batch has no miss. */
export function okAll(values: readonly unknown[], what: string): void {
  for (const v of values) ok(v, what)
}

/** `from`, `from + 1`, … (`count` numbers). */
export function range(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => from + i)
}

/** Runs `fn` over `items`, `size` at a time. */
export async function inChunks<T>(items: readonly T[], size: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn))
}

/** Closes everything, ignoring failures (the run is over). */
export async function closeAll(items: readonly { close(): Promise<void> }[]): Promise<void> {
  await Promise.allSettled(items.map((i) => i.close()))
}

/**
 * Decodes what a floor read (its work), after checking that it is not a miss — `unpack` of a miss
 * would fail with a TypeError that does not say what happened.
 * @throws Error `<what>: unexpected miss` when `bytes` is null or undefined
 */
export function decodeHit(env: BenchEnv, bytes: Buffer | null | undefined, what: string): unknown {
  if (bytes === null || bytes === undefined) throw new Error(`${what}: unexpected miss`)
  return env.packr.unpack(bytes)
}

/** Decodes every value of a multi-get (the floor's work) and checks there was no miss. */
export function decodeAll(env: BenchEnv, values: readonly (Buffer | null | undefined)[]): void {
  for (const v of values) {
    if (v === null || v === undefined) throw new Error('floor: unexpected miss')
    env.packr.unpack(v)
  }
}

/** A peer's batch read: its own when it has one, else `Promise.all` of gets. */
export function peerMulti(cache: PeerCache, keys: string[]): Promise<unknown[]> {
  return cache.getMany === undefined ? Promise.all(keys.map((k) => cache.get(k))) : cache.getMany(keys)
}

/** Counts the commands an ioredis client sends, by name. */
export function countCommands(client: unknown): Map<string, number> {
  const counts = new Map<string, number>()
  const c = client as { sendCommand: (command: { name: string }, ...rest: unknown[]) => unknown }
  const original = c.sendCommand.bind(c)
  c.sendCommand = (command, ...rest) => {
    counts.set(command.name, (counts.get(command.name) ?? 0) + 1)
    return original(command, ...rest)
  }
  return counts
}

/** The case of `library` among `cases`. */
export function byLibrary(cases: readonly CaseResult[], library: string | undefined): CaseResult | undefined {
  return library === undefined ? undefined : cases.find((c) => c.library === library)
}

/** The peer with the most ops/s. */
export function bestPeer(cases: readonly CaseResult[]): CaseResult | undefined {
  let best: CaseResult | undefined
  for (const c of cases) if (c.role === 'peer' && c.opsPerSec !== undefined && (best?.opsPerSec ?? 0) < c.opsPerSec) best = c
  return best
}

/** `0.684` → `'0.68x'`. */
export const x = (v: number): string => `${v >= 10 ? v.toFixed(1) : v.toFixed(v < 1 ? 3 : 2)}x`

/** How a row is judged. */
export interface RowSpec {
  readonly scenario: string
  readonly row: string
  readonly title: string
  readonly unit: string
  /** The floor case's library; default `'floor'`. */
  readonly floor?: string
  /** The stockpyle case's library; default `'stockpyle'`. */
  readonly headline?: string
  /** Stockpyle ÷ floor must be at least this. */
  readonly minVsFloor: number
  /** Stockpyle ÷ best peer must be at least this (when a peer ran). Leave out: peers shown, no target. */
  readonly minVsPeer?: number | undefined
  /** Default `true`. */
  readonly withPeers?: boolean
  readonly layerAlone?: boolean
  /** A further condition (request counts). */
  readonly extra?: { readonly met: boolean | undefined; readonly text: string; readonly detail: string } | undefined
  readonly notes?: readonly string[]
}

/** Judges a row on the paired ratios of this run. */
export function judgeRow(spec: RowSpec, cases: CaseResult[]): RowResult {
  const floor = spec.floor ?? 'floor'
  const headline = spec.headline ?? 'stockpyle'
  const withPeers = spec.withPeers ?? true
  const mine = byLibrary(cases, headline)
  const vsFloor = pairedRatio(mine, byLibrary(cases, floor))
  const best = withPeers ? bestPeer(cases) : undefined
  const vsPeer = best === undefined ? undefined : pairedRatio(mine, best)
  const texts = [`>= ${spec.minVsFloor}x floor`]
  const details = [`stockpyle/floor = ${vsFloor === undefined ? '?' : x(vsFloor)} (>= ${spec.minVsFloor}x wanted)`]
  let met: boolean | undefined = vsFloor === undefined ? undefined : vsFloor >= spec.minVsFloor
  if (spec.minVsPeer !== undefined) {
    texts.push(`>= ${spec.minVsPeer}x best peer`)
    if (best !== undefined) {
      details.push(`stockpyle/best peer (${best.library}) = ${vsPeer === undefined ? '?' : x(vsPeer)} (>= ${spec.minVsPeer}x wanted)`)
      if (met !== undefined) met = vsPeer === undefined ? undefined : met && vsPeer >= spec.minVsPeer
    } else details.push('no peer measured')
  }
  if (spec.extra !== undefined) {
    texts.push(spec.extra.text)
    details.push(spec.extra.detail)
    if (met !== undefined) met = spec.extra.met === undefined ? undefined : met && spec.extra.met
  }
  return {
    scenario: spec.scenario,
    row: spec.row,
    title: spec.title,
    unit: spec.unit,
    cases,
    floor,
    headline,
    withPeers,
    layerAlone: spec.layerAlone ?? false,
    minVsFloor: spec.minVsFloor,
    target: { text: texts.join(', '), met, detail: details.join('; ') },
    notes: [...(spec.notes ?? [])],
  }
}

/** A layer-alone reference row: the layer compared with the same floor, no target. */
export function referenceRow(
  spec: Omit<RowSpec, 'minVsFloor' | 'minVsPeer' | 'extra' | 'layerAlone'> & { headline: string },
  cases: CaseResult[],
): RowResult {
  const vs = pairedRatio(byLibrary(cases, spec.headline), byLibrary(cases, spec.floor ?? 'floor'))
  return {
    scenario: spec.scenario,
    row: spec.row,
    title: spec.title,
    unit: spec.unit,
    cases,
    floor: spec.floor ?? 'floor',
    headline: spec.headline,
    withPeers: spec.withPeers ?? false,
    layerAlone: true,
    target: { text: 'reference (layer alone, no target)', met: undefined, detail: `layer/floor = ${vs === undefined ? '?' : x(vs)}` },
    notes: [...(spec.notes ?? [])],
  }
}
