// The real queue-proxy as its own process (packages/queue-proxy/dist/main.js,
// built with `npx tsc -b packages/queue-proxy`), for what only a process can
// show: signals, exit codes, stdout and stderr.

import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import { close, listen, request, sleep } from './servers.ts'

export const MAIN_JS = join(import.meta.dirname, '../../packages/queue-proxy/dist/main.js')

/**
 * A port nothing listens on right now, below the kernel's ephemeral range
 * (32768+): a port from that range can be taken meanwhile by any outgoing
 * connection on the machine, or by a client that retries against it and
 * connects to itself (same source and destination port), which then holds it.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000)
    const s = http.createServer()
    try {
      await listen(s, port)
      await close(s)
      return port
    } catch (err) {
      if (attempt >= 50) throw err
    }
  }
}

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
  /** performance.now() when the process exited. */
  at: number
}

export interface QueueProxyProcess {
  child: ChildProcess
  ports: { serving: number; tls: number; admin: number; metrics: number; userMetrics: number }
  url: string
  exited: Promise<Exit>
  stdout(): string
  stderr(): string
  /** Sends a signal to the process (by its pid). */
  signal(sig: NodeJS.Signals): void
}

/** Runs main.js with exactly `env` (nothing inherited); output is collected. */
export function runMain(env: Record<string, string>): { child: ChildProcess; exited: Promise<Exit>; stdout(): string; stderr(): string } {
  if (!existsSync(MAIN_JS)) throw new Error(`${MAIN_JS} is missing: build it with npx tsc -b packages/queue-proxy`)
  const child = spawn(process.execPath, [MAIN_JS], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d })
  const exited = new Promise<Exit>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal, at: performance.now() }))
  })
  return { child, exited, stdout: () => out, stderr: () => err }
}

/**
 * Starts main.js with the given Knative environment, on free ports for every
 * listener, and resolves once the metrics port answers (it is opened after
 * the serving and admin ports).
 */
export async function spawnQueueProxy(env: Record<string, string>, startTimeoutMs = 5000): Promise<QueueProxyProcess> {
  // A free port can be taken by someone else before the child binds it: try again on fresh ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await spawnOnFreePorts(env, startTimeoutMs)
    } catch (err) {
      if (attempt === 3 || !/EADDRINUSE/.test((err as Error).message)) throw err
    }
  }
}

async function spawnOnFreePorts(env: Record<string, string>, startTimeoutMs: number): Promise<QueueProxyProcess> {
  const ports = { serving: await freePort(), tls: await freePort(), admin: await freePort(), metrics: await freePort(), userMetrics: await freePort() }
  const run = runMain({
    ...env,
    QUEUE_SERVING_PORT: String(ports.serving),
    QUEUE_SERVING_TLS_PORT: String(ports.tls),
    SLUICE_ADMIN_PORT: String(ports.admin),
    SLUICE_METRICS_PORT: String(ports.metrics),
    SLUICE_USER_METRICS_PORT: String(ports.userMetrics),
  })
  let exit: Exit | null = null
  void run.exited.then((e) => { exit = e })
  const deadline = Date.now() + startTimeoutMs
  for (;;) {
    if (exit !== null) throw new Error(`queue-proxy exited during start-up (${JSON.stringify(exit)}): ${run.stderr()}`)
    try {
      if ((await request(`http://127.0.0.1:${ports.metrics}/metrics`)).status === 200) break
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      run.child.kill('SIGKILL')
      throw new Error(`queue-proxy did not start within ${startTimeoutMs} ms: ${run.stderr()}`)
    }
    await sleep(20)
  }
  return {
    ...run,
    ports,
    url: `http://127.0.0.1:${ports.serving}`,
    signal: (sig) => { run.child.kill(sig) },
  }
}

/** Kills the process (by its own pid) if it is still running; for teardowns. */
export async function ensureStopped(p: { child: ChildProcess; exited: Promise<Exit> }): Promise<void> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL')
  await p.exited
}
