import type { Cluster, Redis } from 'ioredis'

/** One argument of a command. */
export type CommandArg = string | Buffer | number

/** A command's outcome, as a pipeline gives it. */
export type Reply = [error: Error | null, result: unknown]

/**
 * Whether `err` is a Redis Cluster redirection — `MOVED` (the slot has another master), `ASK` (the
 * slot is being migrated and the key has left) or `TRYAGAIN` (a multi-key command while its slot's
 * keys are split by a migration) — or ioredis giving up after too many of them. The command did not
 * run, and the master that answered is alive: its slot map was out of date.
 */
export function isRedirection(err: unknown): boolean {
  return err instanceof Error && /^(?:MOVED|ASK|TRYAGAIN) |^Too many Cluster redirections/.test(err.message)
}

/** A queued command: its name, arguments and whether its replies stay Buffers. */
interface Queued {
  readonly name: string
  readonly args: CommandArg[]
  readonly buffer: boolean
}

/**
 * ioredis' refusal to send a cluster pipeline whose keys its slot map gives to different masters. Its
 * map can disagree with the one the keys were grouped by for a few ms after a reshard: on a single
 * command's `MOVED` ioredis rewrites the node list shared by a whole slot range, until its refresh.
 */
const MIXED_GROUPS = 'All keys in the pipeline should belong to the same slots allocation group'

/**
 * The commands for one node, sent in one pipeline. On a cluster a reshard can move a slot after the
 * keys were grouped by the client's slot map: the node then answers each of that slot's commands with
 * a redirection, which ioredis follows for a pipeline only when every command got the same one. Those
 * commands did not run, so {@link exec} sends each again in a pipeline of its own, which ioredis
 * follows: to the slot's new master on `MOVED` (updating that slot in its map and refreshing the map),
 * with `ASKING` first on `ASK`, again after a short delay on `TRYAGAIN`, up to its `maxRedirections`.
 * A resent `SET NX` or script thus keeps its meaning: it runs once, on the master that holds the slot.
 */
export class NodePipeline {
  readonly #commands: Queued[] = []

  /** Commands queued. */
  get length(): number {
    return this.#commands.length
  }

  /** Queues a command whose bulk replies are decoded as UTF-8 strings. */
  call(name: string, ...args: CommandArg[]): this {
    this.#commands.push({ name, args, buffer: false })
    return this
  }

  /** Queues a command whose bulk replies stay Buffers. */
  callBuffer(name: string, ...args: CommandArg[]): this {
    this.#commands.push({ name, args, buffer: true })
    return this
  }

  /**
   * Sends the commands in one pipeline and resends, each on its own, those a cluster redirected (see
   * the class); where the client's slot map no longer puts them on one master, sends each on its own
   * at once. Resolves to each command's outcome, in order.
   * @throws Error when the client discarded the pipeline; a command's own failure is in its outcome.
   */
  async exec(client: Redis | Cluster): Promise<Reply[]> {
    const cluster = (client as { isCluster?: boolean }).isCluster === true
    let results: Reply[]
    try {
      results = await send(client, this.#commands)
    } catch (err) {
      if (!cluster || !(err instanceof Error) || err.message !== MIXED_GROUPS) throw err
      return Promise.all(this.#commands.map((command) => sendOne(client, command)))
    }
    if (!cluster) return results
    await Promise.all(
      results.map(async ([err], i) => {
        if (isRedirection(err)) results[i] = await sendOne(client, this.#commands[i] as Queued)
      }),
    )
    return results
  }
}

/** Sends `commands` in one pipeline. */
async function send(client: Redis | Cluster, commands: readonly Queued[]): Promise<Reply[]> {
  const pipeline = client.pipeline()
  for (const { name, args, buffer } of commands) {
    if (buffer) pipeline.callBuffer(name, ...args)
    else pipeline.call(name, ...args)
  }
  const results = await pipeline.exec()
  if (results === null) throw new Error('the pipeline was discarded')
  return results
}

/** Sends one command in a pipeline of its own (ioredis follows its redirections); resolves to its outcome. */
async function sendOne(client: Redis | Cluster, command: Queued): Promise<Reply> {
  try {
    return (await send(client, [command]))[0] as Reply
  } catch (err) {
    return [err instanceof Error ? err : new Error(String(err)), null]
  }
}
