/**
 * Test harness: starts REAL native servers (memcached, redis-server, a Redis Cluster, PostgreSQL) on
 * free 127.0.0.1 ports and hands back handles to stop, signal and restart them.
 *
 * Binaries are looked up on PATH (PostgreSQL also under `/usr/lib/postgresql/<v>/bin`). When one is
 * missing and we run as root, the Debian packages are installed with apt-get; otherwise the start
 * fails with an Error naming the exact command to run. Every server is stopped by PID in `stop()`, and
 * a process `exit` hook SIGKILLs any child still running, so nothing outlives the test process.
 *
 * Safe to import from vitest's globalSetup (main process) and from test files (workers): it imports
 * only Node built-ins.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process'
import { chownSync, closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { promisify } from 'node:util'

declare module 'vitest' {
  /**
   * Connection info handed from the global setup to tests (`inject('…')`). A key is provided only
   * when a store that needs it is selected (see {@link selectedStores}); gate tests with
   * `describe.runIf(selectedStores().has('redis'))`.
   */
  export interface ProvidedContext {
    /** The selected stores, e.g. `['memory', 'redis']`. */
    stockpyleStores: string[]
    /** Three memcached servers as `'127.0.0.1:port'`. */
    memcachedServers: string[]
    /** A single Redis node. */
    redis: { host: string; port: number; url: string }
    /** The master nodes of a Redis Cluster (3 masters, no replicas). */
    redisCluster: { host: string; port: number }[]
    /** `postgres://postgres@127.0.0.1:port/postgres` (trust auth). */
    postgresUrl: string
  }
}

/** Every store the test matrix knows; the default of `STOCKPYLE_STORES`. */
export const ALL_STORES = ['memory', 'sqlite', 'memcached', 'redis', 'redis-cluster', 'postgres'] as const

/**
 * The stores selected for this run: `STOCKPYLE_STORES` (comma list, case-insensitive), default all of
 * {@link ALL_STORES}. Unknown names throw, so a typo never silently skips a store.
 */
export function selectedStores(): Set<string> {
  const raw = process.env.STOCKPYLE_STORES?.trim()
  if (raw === undefined || raw === '' || raw.toLowerCase() === 'all') return new Set(ALL_STORES)
  const names = raw
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '')
  const unknown = names.filter((n) => !(ALL_STORES as readonly string[]).includes(n))
  if (unknown.length > 0) {
    throw new Error(`STOCKPYLE_STORES names unknown store(s) ${unknown.join(', ')}; known: ${ALL_STORES.join(', ')}`)
  }
  return new Set(names)
}

// ---------------------------------------------------------------------------------------------------
// Process bookkeeping

const HOST = '127.0.0.1'
const live = new Set<ChildProcess>()
const liveDirs = new Set<string>()
let exitHookInstalled = false

/** On process exit, SIGKILLs every child still running and removes every temp dir not yet removed. */
function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const c of live) {
      if (c.pid !== undefined) {
        try {
          process.kill(c.pid, 'SIGKILL')
        } catch {}
      }
    }
    for (const dir of liveDirs) {
      try {
        rmSync(dir, { recursive: true, force: true })
      } catch {}
    }
  })
}

function track(child: ChildProcess): void {
  installExitHook()
  live.add(child)
  child.once('exit', () => live.delete(child))
}

/** True while a process with this PID exists (signal 0 probe). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

const isRoot = (): boolean => process.getuid?.() === 0

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

// ---------------------------------------------------------------------------------------------------
// Binaries and apt

/** apt packages that provide each binary. */
const aptPackageOf: Record<string, string> = {
  memcached: 'memcached',
  'redis-server': 'redis-server',
  'redis-cli': 'redis-tools',
  postgres: 'postgresql',
  initdb: 'postgresql',
  pg_isready: 'postgresql',
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue
    const file = join(dir, name)
    try {
      if (statSync(file).isFile()) return file
    } catch {}
  }
  return undefined
}

function postgresBinDir(): string | undefined {
  const base = '/usr/lib/postgresql'
  if (!existsSync(base)) return undefined
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin', 'postgres')) && existsSync(join(base, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a))
  return versions[0] === undefined ? undefined : join(base, versions[0], 'bin')
}

function locate(name: string): string | undefined {
  if (name === 'postgres' || name === 'initdb' || name === 'pg_isready') {
    const dir = postgresBinDir()
    if (dir !== undefined && existsSync(join(dir, name))) return join(dir, name)
  }
  return onPath(name)
}

let aptUpdated = false

/**
 * Absolute paths of the named binaries. Missing ones are installed with apt-get when running as
 * root; otherwise this throws an Error naming the command to run.
 */
export function requireBinaries<const N extends string>(...names: N[]): Record<N, string> {
  const missing = names.filter((n) => locate(n) === undefined)
  if (missing.length > 0) {
    const packages = [...new Set(missing.map((n) => aptPackageOf[n] ?? n))]
    const command = `apt-get update && apt-get install -y ${packages.join(' ')}`
    if (!isRoot() || onPath('apt-get') === undefined) {
      throw new Error(`test harness: ${missing.join(', ')} not found on PATH or in /usr/lib/postgresql/*/bin; run as root: ${command}`)
    }
    // apt-get's log is kept quiet: one line while it runs, the whole output only when it fails
    console.log(`test harness: installing ${packages.join(' ')} with apt-get ...`)
    try {
      const opts = {
        stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'],
        encoding: 'utf8' as const,
        maxBuffer: 64 * 1024 * 1024,
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      }
      if (!aptUpdated) execFileSync('apt-get', ['-q', 'update'], opts)
      aptUpdated = true
      execFileSync('apt-get', ['-q', 'install', '-y', '--no-install-recommends', ...packages], opts)
    } catch (err) {
      const { stdout, stderr } = err as { stdout?: string; stderr?: string }
      process.stderr.write(`${stdout ?? ''}${stderr ?? ''}`)
      throw new Error(`test harness: installing ${packages.join(' ')} failed (${(err as Error).message}); run: ${command}`, { cause: err })
    }
    const still = names.filter((n) => locate(n) === undefined)
    if (still.length > 0) throw new Error(`test harness: ${still.join(', ')} still missing after apt-get; run: ${command}`)
  }
  return Object.fromEntries(names.map((n) => [n, locate(n) as string])) as Record<N, string>
}

// ---------------------------------------------------------------------------------------------------
// Ports and probes

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer()
    srv.once('error', () => resolve(false))
    srv.listen({ port, host: HOST, exclusive: true }, () => srv.close(() => resolve(true)))
  })
}

/**
 * A currently free loopback port in 20000–31999 (below Linux's ephemeral range). With `bus`, port +
 * 10000 must be free too (Redis Cluster's bus port). Ports already handed out by this process are
 * not reused.
 */
const handedOut = new Set<number>()
export async function freePort(bus = false): Promise<number> {
  for (let i = 0; i < 500; i++) {
    const port = 20000 + Math.floor(Math.random() * 12000)
    if (handedOut.has(port)) continue
    if (!(await portFree(port))) continue
    if (bus && !(await portFree(port + 10000))) continue
    handedOut.add(port)
    return port
  }
  throw new Error('test harness: no free loopback port found')
}

/** Sends `payload` to 127.0.0.1:port and resolves with the reply once `done(reply)`; rejects on error/timeout. */
function ask(port: number, payload: string, done: (text: string) => boolean, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    const socket = connect({ host: HOST, port })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no complete reply from port ${port} within ${timeoutMs} ms: ${JSON.stringify(text.slice(0, 200))}`))
    }, timeoutMs)
    socket.setEncoding('utf8')
    socket.once('connect', () => socket.write(payload))
    socket.on('data', (chunk: string) => {
      text += chunk
      if (done(text)) {
        clearTimeout(timer)
        socket.destroy()
        resolve(text)
      }
    })
    socket.once('error', (err) => {
      clearTimeout(timer)
      socket.destroy()
      reject(err)
    })
    socket.once('close', () => {
      clearTimeout(timer)
      reject(new Error(`port ${port} closed the connection: ${JSON.stringify(text.slice(0, 200))}`))
    })
  })
}

/** True once `text` holds a whole RESP reply that is a bulk string or a one-line reply. */
function bulkComplete(text: string): boolean {
  const eol = text.indexOf('\r\n')
  if (eol < 0) return false
  if (text[0] !== '$') return true
  return Buffer.byteLength(text.slice(eol + 2)) >= Number(text.slice(1, eol)) + 2
}

function tail(file: string, bytes = 3000): string {
  try {
    const text = readFileSync(file, 'utf8')
    return text.length > bytes ? `…${text.slice(-bytes)}` : text
  } catch {
    return '(no log)'
  }
}

// ---------------------------------------------------------------------------------------------------
// One supervised server process

/** A started server process. */
export interface ServerProcess {
  readonly host: string
  readonly port: number
  /** PID of the server process itself (not a wrapper); changes on `restart()`. */
  readonly pid: number
  /** Sends a signal by PID: `'SIGSTOP'` freezes (returns once every thread is stopped), `'SIGCONT'` thaws, `'SIGKILL'` crashes it. */
  kill(signal?: NodeJS.Signals): void
  /** Kills the current process if it is still running, then starts it again on the same port and waits until ready. */
  restart(): Promise<void>
  /** Stops it by PID (SIGCONT first, so a frozen process can exit) and waits for it to be gone. Idempotent. */
  stop(): Promise<void>
  /** The last few KB of the server's stdout/stderr. */
  logTail(): string
}

interface ServerSpec {
  /** What to call it in messages. */
  readonly label: string
  readonly command: string
  readonly args: (port: number) => string[]
  readonly dir: string
  /** Resolves once the server answers; called repeatedly until it does. */
  readonly ready: (port: number) => Promise<unknown>
  readonly readyTimeoutMs: number
  readonly stopSignal: NodeJS.Signals
  readonly uid?: number | undefined
  readonly gid?: number | undefined
  /** Needs port + 10000 free as well. */
  readonly bus?: boolean
}

/** The server process exited before it became ready (port taken, bad config, …). */
class ExitedEarly extends Error {}

function spawnServer(spec: ServerSpec, port: number, log: string): ChildProcess {
  const fd = openSync(log, 'a')
  try {
    const child = spawn(spec.command, spec.args(port), {
      cwd: spec.dir,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
      ...(spec.uid === undefined ? {} : { uid: spec.uid }),
      ...(spec.gid === undefined ? {} : { gid: spec.gid }),
    })
    child.on('error', () => {}) // reported through waitReady
    if (child.pid !== undefined) track(child)
    return child
  } finally {
    closeSync(fd)
  }
}

async function waitReady(spec: ServerSpec, child: ChildProcess, port: number, log: string): Promise<void> {
  const deadline = Date.now() + spec.readyTimeoutMs
  let spawnError: Error | undefined
  child.once('error', (err) => (spawnError = err))
  let lastError: unknown
  for (;;) {
    if (spawnError !== undefined) {
      throw new Error(`test harness: ${spec.label} could not be spawned (${spec.command}): ${spawnError.message}`, { cause: spawnError })
    }
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new ExitedEarly(
        `test harness: ${spec.label} on port ${port} exited (${child.exitCode ?? child.signalCode}) before it was ready; log:\n${tail(log)}`,
      )
    }
    try {
      await spec.ready(port)
      return
    } catch (err) {
      lastError = err
    }
    if (Date.now() > deadline) {
      throw new Error(
        `test harness: ${spec.label} on port ${port} not ready within ${spec.readyTimeoutMs} ms (${(lastError as Error)?.message}); log:\n${tail(log)}`,
      )
    }
    await sleep(25)
  }
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}

async function terminate(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  const pid = child.pid
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  const send = (sig: NodeJS.Signals): void => {
    try {
      process.kill(pid, sig)
    } catch {}
  }
  send(signal)
  send('SIGCONT')
  if (await waitExit(child, 10_000)) return
  send('SIGKILL')
  await waitExit(child, 5_000)
}

/**
 * Returns once every thread of `pid` is stopped. A signal is delivered asynchronously: a server
 * thread already handling a request may still answer it (seen with memcached: a batch sent right after
 * SIGSTOP answered in 6–15 ms in 2 runs of 15), and a test of a frozen server must not start before it
 * is frozen. Reads /proc (Linux); elsewhere it returns at once.
 */
function waitStopped(pid: number, label: string): void {
  const tasks = `/proc/${pid}/task`
  if (!existsSync(tasks)) return
  const deadline = performance.now() + 2000
  for (;;) {
    let running = 0
    for (const tid of readdirSync(tasks)) {
      try {
        const stat = readFileSync(`${tasks}/${tid}/stat`, 'utf8')
        // "tid (comm) S …": the state follows the last ')'
        const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
        if (state !== 'T' && state !== 't') running++
      } catch {}
    }
    if (running === 0) return
    if (performance.now() > deadline) throw new Error(`test harness: ${label} (pid ${pid}) not stopped 2 s after SIGSTOP`)
  }
}

/** Starts a server (retrying on another port if the chosen one was taken meanwhile). */
async function startServer(spec: ServerSpec, fixedPort?: number): Promise<ServerProcess> {
  const log = join(spec.dir, `${spec.label.replace(/\W+/g, '-')}.log`)
  let port = fixedPort ?? (await freePort(spec.bus))
  let child: ChildProcess | undefined
  for (let attempt = 0; ; attempt++) {
    child = spawnServer(spec, port, log)
    try {
      await waitReady(spec, child, port, log)
      break
    } catch (err) {
      await terminate(child, 'SIGKILL')
      const taken = err instanceof ExitedEarly && /in use|already|could not bind|Could not create/i.test(err.message)
      if (!taken || fixedPort !== undefined || attempt >= 4) throw err
      port = await freePort(spec.bus)
    }
  }
  let current: ChildProcess = child
  let stopped = false
  return {
    host: HOST,
    port,
    get pid() {
      return current.pid as number
    },
    kill(signal = 'SIGTERM') {
      if (current.exitCode !== null || current.signalCode !== null) return
      process.kill(current.pid as number, signal)
      if (signal === 'SIGSTOP') waitStopped(current.pid as number, spec.label)
    },
    async restart() {
      if (stopped) throw new Error(`test harness: ${spec.label} was stopped; restart() is for a running or killed server`)
      await terminate(current, 'SIGKILL')
      for (let attempt = 0; ; attempt++) {
        current = spawnServer(spec, port, log)
        try {
          await waitReady(spec, current, port, log)
          return
        } catch (err) {
          await terminate(current, 'SIGKILL')
          // the old process's port or shared memory may take a moment to be released
          if (!(err instanceof ExitedEarly) || attempt >= 20) throw err
          await sleep(250)
        }
      }
    },
    async stop() {
      stopped = true
      await terminate(current, spec.stopSignal)
    },
    logTail: () => tail(log),
  }
}

function tempDir(kind: string): string {
  installExitHook()
  const dir = mkdtempSync(join(tmpdir(), `stockpyle-${kind}-`))
  liveDirs.add(dir)
  return dir
}

function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
  liveDirs.delete(dir)
}

// ---------------------------------------------------------------------------------------------------
// memcached

/** One memcached node of {@link startMemcached}. */
export type MemcachedNode = ServerProcess

/** Handle of {@link startMemcached}. */
export interface MemcachedServers {
  /** `'127.0.0.1:port'` per node. */
  readonly servers: string[]
  readonly nodes: MemcachedNode[]
  /** What each node says of lost items and of its clock (memcached `stats`), in node order. */
  stats(): Promise<MemcachedStats[]>
  /** Stops every node by PID and removes the temp dir. Idempotent. */
  stop(): Promise<void>
}

/** The `stats` of a memcached server that tell why an item went early. */
export interface MemcachedStats {
  /** Items evicted from the LRU to make room. */
  readonly evictions: number
  /** Items evicted by the slab mover (a page moved to another size class) without a free chunk to move them to. */
  readonly slabMoverEvictions: number
  /** `flush_all` commands received. */
  readonly flushes: number
  /** The server's clock (whole seconds, ticks once a second) minus `Date.now()`, in ms: how far it lags. */
  readonly clockMs: number
}

/** Reads {@link MemcachedStats} from the memcached server on loopback `port`. */
export async function memcachedStats(port: number): Promise<MemcachedStats> {
  const text = await ask(port, 'stats\r\n', (t) => t.includes('END\r\n'))
  const now = Date.now()
  const stat = (name: string): number => Number(new RegExp(`STAT ${name} (\\d+)`).exec(text)?.[1] ?? Number.NaN)
  return {
    evictions: stat('evictions'),
    slabMoverEvictions: stat('slab_reassign_evictions_nomem'),
    flushes: stat('cmd_flush'),
    clockMs: stat('time') * 1000 - now,
  }
}

/** Starts `count` memcached servers (`-m 64 -I 1m`, UDP off) on free loopback ports. */
export async function startMemcached(count = 1): Promise<MemcachedServers> {
  const { memcached } = requireBinaries('memcached')
  const dir = tempDir('memcached')
  const nodes: MemcachedNode[] = []
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.stop()))
    removeDir(dir)
  }
  try {
    for (let i = 0; i < count; i++) {
      nodes.push(
        await startServer({
          label: `memcached-${i}`,
          command: memcached,
          args: (port) => ['-l', HOST, '-p', String(port), '-U', '0', '-m', '64', '-I', '1m', ...(isRoot() ? ['-u', 'nobody'] : [])],
          dir,
          ready: (port) => ask(port, 'version\r\n', (t) => t.includes('\r\n')),
          readyTimeoutMs: 10_000,
          stopSignal: 'SIGTERM',
        }),
      )
    }
  } catch (err) {
    await stop()
    throw err
  }
  const stats = (): Promise<MemcachedStats[]> => Promise.all(nodes.map((n) => memcachedStats(n.port)))
  return { servers: nodes.map((n) => `${n.host}:${n.port}`), nodes, stats, stop }
}

// ---------------------------------------------------------------------------------------------------
// Redis

/** Handle of {@link startRedis}. */
export interface RedisServer extends ServerProcess {
  /** `redis://127.0.0.1:port` */
  readonly url: string
}

function redisArgs(port: number, extra: string[] = []): string[] {
  return ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--logfile', '', ...extra]
}

const execFileAsync = promisify(execFile)

const redisPing = (port: number): Promise<string> => ask(port, 'PING\r\n', (t) => t.includes('\r\n')).then(expect(/^\+PONG/))

function expect(pattern: RegExp): (text: string) => string {
  return (text) => {
    if (!pattern.test(text)) throw new Error(`unexpected reply ${JSON.stringify(text.slice(0, 200))}`)
    return text
  }
}

/** Starts one redis-server (no persistence) on a free loopback port. */
export async function startRedis(): Promise<RedisServer> {
  const bin = requireBinaries('redis-server')
  const dir = tempDir('redis')
  let server: ServerProcess
  try {
    server = await startServer({
      label: 'redis',
      command: bin['redis-server'],
      args: (port) => redisArgs(port, ['--dir', dir]),
      dir,
      ready: redisPing,
      readyTimeoutMs: 10_000,
      stopSignal: 'SIGTERM',
    })
  } catch (err) {
    removeDir(dir)
    throw err
  }
  return {
    host: server.host,
    port: server.port,
    url: `redis://${server.host}:${server.port}`,
    get pid() {
      return server.pid
    },
    kill: (signal) => server.kill(signal),
    restart: () => server.restart(),
    async stop() {
      await server.stop()
      removeDir(dir)
    },
    logTail: () => server.logTail(),
  }
}

/** Handle of {@link startRedisCluster}. */
export interface RedisCluster {
  /** Startup nodes for `new Cluster(nodes)`. */
  readonly nodes: { host: string; port: number }[]
  /** The master processes, same order as `nodes`. */
  readonly servers: ServerProcess[]
  /** The replicas asked for (`replicas` of {@link startRedisCluster}): replica `i` replicates master `i % masters`. */
  readonly replicas: { host: string; port: number }[]
  /**
   * Resolves once every node reports `cluster_state:ok` and flags no node `fail` or `fail?` (use
   * after restarting or thawing a node, before failing another one).
   */
  waitHealthy(timeoutMs?: number): Promise<void>
  /** Stops every node by PID and removes the temp dir. Idempotent. */
  stop(): Promise<void>
}

/**
 * Starts a Redis Cluster of `masters` masters on free loopback ports, creates it with
 * `redis-cli --cluster create` and waits for `cluster_state:ok` on every node. The nodes run with
 * `cluster-require-full-coverage no`: while one master is down the others serve their slots. With
 * `replicas` (default 0), that many more nodes join as replicas (replica `i` of master `i % masters`)
 * and are in sync (`master_link_status:up`) when it resolves.
 */
export async function startRedisCluster(masters = 3, replicas = 0): Promise<RedisCluster> {
  const bin = requireBinaries('redis-server', 'redis-cli')
  const dir = tempDir('redis-cluster')
  const servers: ServerProcess[] = []
  const replicaServers: ServerProcess[] = []
  const stop = async (): Promise<void> => {
    await Promise.all([...servers, ...replicaServers].map((s) => s.stop()))
    removeDir(dir)
  }
  /** `ok`, or what is not yet healthy in the node's view: its cluster state, or nodes it flags failing. */
  const nodeHealth = async (port: number): Promise<string> => {
    const state = /cluster_state:(\w+)/.exec(await ask(port, 'CLUSTER INFO\r\n', bulkComplete))?.[1] ?? 'unknown'
    if (state !== 'ok') return `cluster_state ${state}`
    // A master flagged `fail` stays flagged for a while after it is back (measured: 2.3 s after every
    // node said cluster_state:ok); if another master fails meanwhile, the flagging node finds itself
    // in a minority and refuses every command (CLUSTERDOWN) for the rejoin delay.
    const flagged = (await ask(port, 'CLUSTER NODES\r\n', bulkComplete))
      .split('\n')
      .map((line) => line.split(' '))
      .filter((f) => /(^|,)(fail|fail\?)(,|$)/.test(f[2] ?? ''))
      .map((f) => `${f[1]?.split('@')[0]} ${f[2]}`)
    return flagged.length === 0 ? 'ok' : `flags ${flagged.join(', ')}`
  }
  const waitHealthy = async (timeoutMs = 30_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs
    let states: string[] = []
    for (;;) {
      try {
        states = await Promise.all(servers.map((s) => nodeHealth(s.port)))
        if (states.every((s) => s === 'ok')) return
      } catch (err) {
        states = [(err as Error).message]
      }
      if (Date.now() > deadline) {
        throw new Error(
          `test harness: redis cluster not healthy within ${timeoutMs} ms (per node: ${states.join('; ')}); log of node 0:\n${servers[0]?.logTail()}`,
        )
      }
      await sleep(50)
    }
  }
  try {
    const startNode = (label: string): Promise<ServerProcess> =>
      startServer({
        label,
        command: bin['redis-server'],
        args: (port) =>
          redisArgs(port, [
            '--dir',
            dir,
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            join(dir, `nodes-${port}.conf`),
            '--cluster-node-timeout',
            '2000',
            // the other masters keep serving their slots while one is down (a cache cluster's usual setting)
            '--cluster-require-full-coverage',
            'no',
          ]),
        dir,
        ready: redisPing,
        readyTimeoutMs: 10_000,
        stopSignal: 'SIGTERM',
        bus: true,
      })
    for (let i = 0; i < masters; i++) servers.push(await startNode(`redis-cluster-${i}`))
    const output = await new Promise<string>((resolve, reject) => {
      execFile(
        bin['redis-cli'],
        ['--cluster', 'create', ...servers.map((s) => `${HOST}:${s.port}`), '--cluster-replicas', '0', '--cluster-yes'],
        { timeout: 60_000 },
        (err, stdout, stderr) =>
          err ? reject(new Error(`redis-cli --cluster create failed: ${err.message}\n${stdout}\n${stderr}`)) : resolve(stdout),
      )
    })
    if (!/All 16384 slots covered/.test(output)) throw new Error(`redis-cli --cluster create did not cover all slots:\n${output}`)
    await waitHealthy()
    for (let i = 0; i < replicas; i++) {
      const replica = await startNode(`redis-cluster-replica-${i}`)
      replicaServers.push(replica)
      const master = servers[i % masters] as ServerProcess
      const id = (await ask(master.port, 'CLUSTER MYID\r\n', bulkComplete)).split('\r\n')[1] as string
      await execFileAsync(
        bin['redis-cli'],
        ['--cluster', 'add-node', `${HOST}:${replica.port}`, `${HOST}:${master.port}`, '--cluster-slave', '--cluster-master-id', id],
        { timeout: 60_000 },
      )
      const deadline = Date.now() + 30_000
      while (!/master_link_status:up/.test(await ask(replica.port, 'INFO replication\r\n', bulkComplete))) {
        if (Date.now() > deadline) throw new Error(`test harness: redis cluster replica ${replica.port} not in sync within 30 s`)
        await sleep(50)
      }
    }
    await waitHealthy()
  } catch (err) {
    await stop()
    throw err
  }
  return {
    nodes: servers.map((s) => ({ host: s.host, port: s.port })),
    servers,
    replicas: replicaServers.map((s) => ({ host: s.host, port: s.port })),
    waitHealthy,
    stop,
  }
}

// ---------------------------------------------------------------------------------------------------
// PostgreSQL

/** Handle of {@link startPostgres}. */
export interface PostgresServer extends ServerProcess {
  /** `postgres://postgres@127.0.0.1:port/postgres` (trust auth, no password). */
  readonly url: string
  /** The data directory (removed by `stop()`). */
  readonly dataDir: string
}

function postgresUser(): { uid: number; gid: number } | undefined {
  if (!isRoot()) return undefined
  try {
    const line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('postgres:'))
    const [, , uid, gid] = line?.split(':') ?? []
    if (uid === undefined || gid === undefined) throw new Error('no postgres user')
    return { uid: Number(uid), gid: Number(gid) }
  } catch {
    throw new Error(
      'test harness: running as root, PostgreSQL must run as the `postgres` OS user, which does not exist; run: apt-get install -y postgresql',
    )
  }
}

/**
 * Initializes a throw-away cluster (initdb `-A trust`, `fsync=off`) in a temp dir and starts
 * `postgres` on a free loopback port (as the `postgres` OS user when running as root). Ready once
 * `pg_isready` says so. Stopped with SIGINT (fast shutdown); `stop()` removes the data dir.
 */
export async function startPostgres(): Promise<PostgresServer> {
  const bin = requireBinaries('postgres', 'initdb', 'pg_isready')
  const user = postgresUser()
  const dir = tempDir('postgres')
  const data = join(dir, 'data')
  if (user !== undefined) chownSync(dir, user.uid, user.gid)
  let server: ServerProcess
  try {
    await new Promise<void>((resolve, reject) => {
      execFile(
        bin.initdb,
        ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync'],
        { cwd: dir, env: { ...process.env, LC_ALL: 'C', LANG: 'C' }, timeout: 120_000, ...(user ?? {}) },
        (err, stdout, stderr) => (err ? reject(new Error(`test harness: initdb failed: ${err.message}\n${stdout}\n${stderr}`)) : resolve()),
      )
    })
    server = await startServer({
      label: 'postgres',
      command: bin.postgres,
      args: (port) => [
        '-D',
        data,
        '-h',
        HOST,
        '-p',
        String(port),
        '-k',
        dir,
        '-c',
        'fsync=off',
        '-c',
        'synchronous_commit=off',
        '-c',
        'full_page_writes=off',
        '-c',
        'max_connections=200',
      ],
      dir,
      ready: (port) =>
        new Promise<void>((resolve, reject) => {
          execFile(bin.pg_isready, ['-q', '-h', HOST, '-p', String(port), '-U', 'postgres', '-t', '1'], { timeout: 5000 }, (err) =>
            err ? reject(new Error(`pg_isready: ${err.message}`)) : resolve(),
          )
        }),
      readyTimeoutMs: 60_000,
      stopSignal: 'SIGINT',
      uid: user?.uid,
      gid: user?.gid,
    })
  } catch (err) {
    removeDir(dir)
    throw err
  }
  return {
    host: server.host,
    port: server.port,
    url: `postgres://postgres@${server.host}:${server.port}/postgres`,
    dataDir: data,
    get pid() {
      return server.pid
    },
    kill: (signal) => server.kill(signal),
    restart: () => server.restart(),
    async stop() {
      await server.stop()
      removeDir(dir)
    },
    logTail: () => server.logTail(),
  }
}
