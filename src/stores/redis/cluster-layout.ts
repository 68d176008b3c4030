import type { Redis } from 'ioredis'
import { SLOT_COUNT } from './redis-slot.js'

/** One line of `CLUSTER NODES`, the fields a layout needs. */
interface NodeLine {
  readonly id: string
  readonly address: string
  readonly flags: readonly string[]
  readonly epoch: number
  /** Slots and ranges served (`0-5460`, `7000`) and, on the node's own line, migration marks (`[93->-<id>]`, `[93-<-<id>]`). */
  readonly slots: readonly string[]
}

function parse(text: string): NodeLine[] {
  const lines: NodeLine[] = []
  for (const line of text.split('\n')) {
    const f = line.trim().split(' ')
    if (f.length < 8) continue
    lines.push({
      id: f[0] as string,
      address: (f[1] as string).split('@')[0] as string,
      flags: (f[2] as string).split(','),
      epoch: Number(f[6]),
      slots: f.slice(8),
    })
  }
  return lines
}

const MARK = /^\[(\d+)-([<>])-([0-9a-f]+)\]$/
const RANGE = /^(\d+)(?:-(\d+))?$/

/** A master read: its connection, id and config epoch. */
interface Master {
  readonly node: Redis
  readonly id: string
  readonly epoch: number
}

/** A slot being migrated: its source and target, `undefined` where not among the masters read. */
interface Migration {
  readonly source: Master | undefined
  readonly target: Master | undefined
}

/** `servedBy` of a slot no master read serves. */
const NONE = -1
/** `servedBy` of a slot that several masters read say they serve (see `claims`). */
const SEVERAL = -2

/**
 * How a set of masters of a Redis Cluster said, each on its own line of `CLUSTER NODES`, that its hash
 * slots were laid out at one moment ({@link readLayout}): which master serves each slot, with its
 * config epoch, and which slots are being migrated (a migration's marks appear only on the lines of
 * its source and target). A key moves between masters only while its slot is being migrated, so a
 * slot whose state is the same in two layouts read before and after some work, and that was not being
 * migrated in either, kept its keys where they were meanwhile: a migration that ended meanwhile gave
 * the slot to another master, or back to its master, whose epoch then grew (a master taking a slot
 * bumps its epoch unless it holds the greatest one, and the master the slot left now holds it).
 */
export class ClusterLayout {
  /** `host:port` (or id, where no line names its address) of each master serving slots or taking part in a migration that was not read. */
  readonly unread: readonly string[]
  /** The masters read, in the order given to {@link readLayout}. */
  readonly #masters: readonly (Master | undefined)[]
  /** Per slot: the index in `#masters` of the master serving it, {@link NONE} or {@link SEVERAL}. */
  readonly #servedBy: Int32Array
  /** The masters serving each slot several of them claim. */
  readonly #claims: ReadonlyMap<number, readonly Master[]>
  readonly #migrations: ReadonlyMap<number, Migration>

  /** @internal built by {@link readLayout}. */
  constructor(
    unread: string[],
    masters: (Master | undefined)[],
    servedBy: Int32Array,
    claims: Map<number, Master[]>,
    migrations: Map<number, Migration>,
  ) {
    this.unread = unread
    this.#masters = masters
    this.#servedBy = servedBy
    this.#claims = claims
    this.#migrations = migrations
  }

  /** Whether `slot` was being migrated (marked on its source or target). */
  migrating(slot: number): boolean {
    return this.#migrations.has(slot)
  }

  /**
   * Whether `slot`'s state differs in `later`, a layout read from the same masters (same order): the
   * master serving it, that master's id or epoch, or its migration (see the class).
   */
  changed(later: ClusterLayout, slot: number): boolean {
    const at = this.#servedBy[slot] as number
    if (at !== later.#servedBy[slot]) return true
    if (at >= 0 && !same(this.#masters[at], later.#masters[at])) return true
    if (at === SEVERAL) {
      const a = this.#claims.get(slot) ?? []
      const b = later.#claims.get(slot) ?? []
      if (a.length !== b.length || a.some((m, i) => !same(m, b[i]))) return true
    }
    const m = this.#migrations.get(slot)
    const n = later.#migrations.get(slot)
    if (m === undefined || n === undefined) return m !== n
    return m.source?.id !== n.source?.id || m.target?.id !== n.target?.id
  }

  /**
   * The masters that may hold keys of `slot`, in the order its keys move: the masters serving it
   * (the lower epoch first: the one it is leaving), then a migration's source and target.
   */
  holders(slot: number): Redis[] {
    const at = this.#servedBy[slot] as number
    const serving = at >= 0 ? [this.#masters[at] as Master] : at === SEVERAL ? [...(this.#claims.get(slot) ?? [])] : []
    const out = serving.sort((a, b) => a.epoch - b.epoch)
    const migration = this.#migrations.get(slot)
    for (const m of [migration?.source, migration?.target]) if (m !== undefined && !out.includes(m)) out.push(m)
    return out.map((m) => m.node)
  }
}

/** The same node with the same config epoch. */
function same(a: Master | undefined, b: Master | undefined): boolean {
  return a?.id === b?.id && a?.epoch === b?.epoch
}

/**
 * Reads `CLUSTER NODES` from each of `masters` (`read` sends it, bounded by the caller) and returns
 * the {@link ClusterLayout} they report.
 * @throws whatever `read` throws.
 */
export async function readLayout(masters: readonly Redis[], read: (node: Redis) => Promise<string>): Promise<ClusterLayout> {
  const views = await Promise.all(masters.map(async (node) => parse(await read(node))))
  const byId = new Map<string, Master>()
  const addresses = new Map<string, string>()
  /** Ids of masters serving slots or taking part in a migration, by any view. */
  const needed = new Set<string>()
  const own: (Master | undefined)[] = []
  const servedBy = new Int32Array(SLOT_COUNT).fill(NONE)
  const claims = new Map<number, Master[]>()
  const marks: { slot: number; source: string; target: string }[] = []
  views.forEach((lines, index) => {
    own.push(undefined)
    for (const line of lines) {
      if (line.address !== '' && !line.address.startsWith(':')) addresses.set(line.id, line.address)
      if (line.flags.includes('master') && line.slots.some((s) => !s.startsWith('['))) needed.add(line.id)
      if (!line.flags.includes('myself')) continue
      // a node's own line: what it serves and migrates (a replica read by mistake serves nothing)
      const master: Master = { node: masters[index] as Redis, id: line.id, epoch: line.epoch }
      own[index] = master
      byId.set(line.id, master)
      for (const token of line.slots) {
        const range = RANGE.exec(token)
        if (range !== null) {
          const last = Math.min(Number(range[2] ?? range[1]), SLOT_COUNT - 1)
          for (let slot = Number(range[1]); slot <= last; slot++) {
            const at = servedBy[slot] as number
            if (at === NONE) servedBy[slot] = index
            else {
              // two masters say they serve it: one was given the slot, the other not yet told
              claims.set(slot, [...(at === SEVERAL ? (claims.get(slot) ?? []) : [own[at] as Master]), master])
              servedBy[slot] = SEVERAL
            }
          }
          continue
        }
        const mark = MARK.exec(token)
        if (mark === null) continue
        const [, slot, dir, peer] = mark as unknown as [string, string, string, string]
        needed.add(peer)
        // `->-` on the source (migrating to peer), `-<-` on the target (importing from peer)
        marks.push(
          dir === '>' ? { slot: Number(slot), source: line.id, target: peer } : { slot: Number(slot), source: peer, target: line.id },
        )
      }
    }
  })
  const migrations = new Map<number, Migration>()
  for (const { slot, source, target } of marks) migrations.set(slot, { source: byId.get(source), target: byId.get(target) })
  const unread = [...needed].filter((id) => !byId.has(id)).map((id) => addresses.get(id) ?? id)
  return new ClusterLayout(unread, own, servedBy, claims, migrations)
}
