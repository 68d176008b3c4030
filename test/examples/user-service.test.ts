/**
 * Smoke test of examples/user-service.js as the README runs it: `node examples/user-service.js` in a
 * child process (against the built package, `dist/`), pointed at the harness's Redis and a temporary
 * SQLite file, exercised over real HTTP, then stopped with SIGTERM by PID.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { selectedStores } from '../harness/servers.js'

describe.runIf(selectedStores().has('redis') && selectedStores().has('sqlite'))('examples/user-service.js', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stockpyle-user-service-'))
  let child: ChildProcess | undefined
  let base = ''
  let output = ''

  beforeAll(async () => {
    const started = spawn(process.execPath, ['examples/user-service.js'], {
      env: { ...process.env, PORT: '0', REDIS_URL: inject('redis').url, SQLITE_PATH: join(dir, 'users.db') },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    child = started
    started.stdout?.setEncoding('utf8')
    started.stderr?.setEncoding('utf8')
    started.stderr?.on('data', (chunk: string) => {
      output += chunk
    })
    base = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`user-service did not start within 20 s: ${output}`)), 20_000)
      started.stdout?.on('data', (chunk: string) => {
        output += chunk
        const listening = /listening on (http:\/\/\S+)/.exec(output)
        if (listening !== null) {
          clearTimeout(timer)
          resolve(listening[1] as string)
        }
      })
      started.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`user-service exited with ${code} before listening: ${output}`))
      })
    })
  })

  afterAll(async () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      const exited = new Promise((resolve) => child?.once('exit', resolve))
      process.kill(child.pid, 'SIGKILL')
      await exited
    }
    rmSync(dir, { recursive: true, force: true })
  })

  const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> => {
    const res = await fetch(`${base}${path}`, {
      method,
      ...(body === undefined
        ? {}
        : { body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    })
    const text = await res.text()
    return { status: res.status, json: text === '' ? undefined : JSON.parse(text) }
  }

  it('PUT, GET by id and by email, change of email, DELETE, errors, stats, then a clean SIGTERM', async () => {
    expect(await call('GET', '/users/1')).toMatchObject({ status: 404 })
    const put = await call('PUT', '/users/1', { email: 'ada@example.com', name: 'Ada Lovelace' })
    expect(put).toMatchObject({ status: 200, json: { id: 1, email: 'ada@example.com', name: 'Ada Lovelace' } })
    expect(await call('GET', '/users/1')).toMatchObject({ status: 200, json: { id: 1, name: 'Ada Lovelace' } })
    expect(await call('GET', '/users?email=ada%40example.com')).toMatchObject({ status: 200, json: { id: 1 } })

    await call('PUT', '/users/1', { email: 'countess@example.com', name: 'Ada' })
    expect(await call('GET', '/users?email=ada%40example.com')).toMatchObject({ status: 404 })
    expect(await call('GET', '/users?email=countess%40example.com')).toMatchObject({ status: 200, json: { id: 1, name: 'Ada' } })

    expect(await call('PUT', '/users/2', { email: 'countess@example.com', name: 'Copy' })).toMatchObject({ status: 409 })
    expect(await call('PUT', '/users/2', '{not json')).toMatchObject({ status: 400 })
    expect(await call('PUT', '/users/x', { email: 'x@example.com', name: 'X' })).toMatchObject({ status: 400 })
    expect(await call('POST', '/users/2', {})).toMatchObject({ status: 405 })

    const stats = (await call('GET', '/stats')).json as { name: string; hits: number; errors: number }[]
    expect(stats.map((s) => s.name)).toEqual(['request', 'memory', expect.stringMatching(/^redis\(/), 'sql'])
    expect(stats.every((s) => s.errors === 0)).toBe(true)
    expect((stats[0]?.hits ?? 0) + (stats[1]?.hits ?? 0)).toBeGreaterThan(0)

    expect(await call('DELETE', '/users/1')).toMatchObject({ status: 204 })
    expect(await call('GET', '/users/1')).toMatchObject({ status: 404 })
    expect(await call('GET', '/users?email=countess%40example.com')).toMatchObject({ status: 404 })
    expect(await call('DELETE', '/users/1')).toMatchObject({ status: 404 })

    const exited = new Promise<number | null>((resolve) => child?.once('exit', (code) => resolve(code)))
    process.kill(child?.pid as number, 'SIGTERM')
    expect(await exited, output).toBe(0)
  })
})
