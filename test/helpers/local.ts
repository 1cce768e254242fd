// The local runtime for tests: LocalRuntime in-process on free ports (its
// activator, queue-proxies and apps are real processes from the packages'
// dist folders: build with `npx tsc -b` first), the `sluice` CLI as a process,
// service manifests written on the fly, a bounded keep-alive load, and /proc
// scans for processes left behind.

import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { LocalRuntime, type RuntimeOptions } from '@sluice/local/runtime/runtime'
import type { RuntimeStatus } from '@sluice/local/runtime/status-server'
import { waitFor as pollFor } from './servers.ts'

export const ROOT = join(import.meta.dirname, '../..')
export const FIXTURES = join(ROOT, 'test/local/fixtures')
export const TEST_AUTOSCALER_CONFIG = join(FIXTURES, 'config-autoscaler.yaml')
export const CLI_JS = join(ROOT, 'packages/local/dist/cli.js')

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** A temporary directory removed at teardown. */
export function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-local-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

export interface ServiceOptions {
  name: string
  namespace?: string
  containerConcurrency?: number
  timeoutSeconds?: number
  annotations?: Record<string, string>
  env?: Record<string, string>
  /** Extra app arguments: a unique marker makes the app findable in /proc. */
  args?: string[]
  /** spec.traffic; absent: Knative's default (100% to the latest ready revision). */
  traffic?: { revisionName?: string; latestRevision?: boolean; percent: number; tag?: string }[]
  /** File name in `dir` (default "<name>.yaml"). */
  file?: string
}

/** A Service as YAML text (see writeService). */
export function serviceYaml(o: ServiceOptions): string {
  return serviceLines(o).join('\n') + '\n'
}

/** Writes a Service running test/local/fixtures/app.js; returns its path. */
export function writeService(dir: string, o: ServiceOptions): string {
  const path = join(dir, o.file ?? `${o.name}.yaml`)
  writeFileSync(path, serviceYaml(o))
  return path
}

function serviceLines(o: ServiceOptions): string[] {
  const q = (v: string) => JSON.stringify(v)
  const lines = [
    'apiVersion: serving.knative.dev/v1',
    'kind: Service',
    'metadata:',
    `  name: ${o.name}`,
    `  namespace: ${o.namespace ?? 'default'}`,
    'spec:',
    '  template:',
  ]
  const annotations = Object.entries(o.annotations ?? {})
  if (annotations.length > 0) {
    lines.push('    metadata:', '      annotations:')
    for (const [k, v] of annotations) lines.push(`        ${k}: ${q(v)}`)
  }
  lines.push('    spec:')
  if (o.containerConcurrency !== undefined) lines.push(`      containerConcurrency: ${o.containerConcurrency}`)
  if (o.timeoutSeconds !== undefined) lines.push(`      timeoutSeconds: ${o.timeoutSeconds}`)
  lines.push(
    '      containers:',
    `        - image: example.com/${o.name}`,
    '          command: ["node"]',
    `          args: ${JSON.stringify(['test/local/fixtures/app.js', ...(o.args ?? [])])}`,
  )
  const env = Object.entries(o.env ?? {})
  if (env.length > 0) {
    lines.push('          env:')
    for (const [k, v] of env) lines.push(`            - name: ${k}`, `              value: ${q(v)}`)
  }
  if (o.traffic !== undefined) {
    lines.push('  traffic:')
    for (const tr of o.traffic) {
      lines.push(tr.revisionName !== undefined ? `    - revisionName: ${tr.revisionName}` : '    - latestRevision: true', `      percent: ${tr.percent}`)
      if (tr.tag !== undefined) lines.push(`      tag: ${tr.tag}`)
    }
  }
  return lines
}

export interface RunningRuntime {
  rt: LocalRuntime
  /** The ingress, e.g. http://127.0.0.1:41234. */
  url: string
  /** Every line the runtime logged, in order. */
  lines: string[]
  stop(): Promise<void>
}

/** Builds the runtime's options: free ports, the test autoscaler config, output captured. */
export function runtimeOptions(manifestPath: string, lines: string[], o: Partial<RuntimeOptions> = {}): RuntimeOptions {
  return {
    manifestPath,
    root: ROOT,
    nodePath: process.execPath,
    ingressPort: 0,
    ingressHost: '127.0.0.1',
    statusPort: 0,
    autoscalerConfigPath: TEST_AUTOSCALER_CONFIG,
    log: (l) => lines.push(l),
    ...o,
  }
}

/** Starts LocalRuntime in this process and waits until every service has a route (a ready revision). */
export async function startRuntime(manifestPath: string, o: Partial<RuntimeOptions> = {}, readyTimeoutMs = 15_000): Promise<RunningRuntime> {
  const lines: string[] = []
  const rt = new LocalRuntime(runtimeOptions(manifestPath, lines, o))
  let stopped: Promise<void> | null = null
  const stop = () => (stopped ??= rt.stop())
  try {
    await rt.start()
    if (!(await waitFor(() => rt.status().services.every((s) => s.ready), readyTimeoutMs))) {
      throw new Error(`services not ready within ${readyTimeoutMs} ms:\n${lines.join('\n')}`)
    }
  } catch (err) {
    await stop()
    throw err
  }
  return { rt, url: rt.ingressUrl, lines, stop }
}

/** Polls `cond` every `stepMs` until it holds (true) or `timeoutMs` passes (false). */
export function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 25): Promise<boolean> {
  return pollFor(cond, timeoutMs, stepMs)
}

export type RevisionStatus = RuntimeStatus['services'][number]['revisions'][number]

/** One revision's status by name. */
export function revision(rt: LocalRuntime, name: string): RevisionStatus {
  for (const s of rt.status().services) {
    const r = s.revisions.find((x) => x.name === name)
    if (r !== undefined) return r
  }
  throw new Error(`no revision ${name}`)
}

export interface Reply {
  status: number
  body: string
  /** Milliseconds from sending to the end of the response. */
  ms: number
}

/** One GET through the ingress with the given Host; a client timeout rejects. */
export function send(url: string, o: { host?: string; path?: string; agent?: http.Agent | false; timeoutMs?: number } = {}): Promise<Reply> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}${o.path ?? '/'}`, { agent: o.agent ?? false, headers: o.host === undefined ? {} : { host: o.host } }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode!, body, ms: performance.now() - started }))
      res.on('error', reject)
    })
    req.setTimeout(o.timeoutMs ?? 30_000, () => req.destroy(new Error(`client timeout after ${o.timeoutMs ?? 30_000} ms`)))
    req.on('error', reject)
  })
}

export interface LoadResult {
  ok: number
  failed: number
  /** Failures by status code or error message, for the assertion message. */
  failures: Record<string, number>
  /** Answers by the revision the test app names in its JSON body ('?' for other bodies). */
  byRevision: Record<string, number>
}

export interface Load {
  /** Stops sending, waits for the requests in flight and returns the totals. */
  stop(): Promise<LoadResult>
  /** The totals so far (a copy). */
  now(): LoadResult
}

/**
 * A closed-loop load: `concurrency` workers over keep-alive connections, each
 * sending its next request as soon as the last one is answered, until stop().
 */
export function startLoad(url: string, o: { concurrency: number; host?: string; path?: string }): Load {
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.concurrency })
  const result: LoadResult = { ok: 0, failed: 0, failures: {}, byRevision: {} }
  let running = true
  const fail = (why: string) => {
    result.failed++
    result.failures[why] = (result.failures[why] ?? 0) + 1
  }
  const worker = async () => {
    while (running) {
      try {
        const r = await send(url, { host: o.host, path: o.path, agent, timeoutMs: 20_000 })
        if (r.status === 200) {
          result.ok++
          const rev = r.body.startsWith('{') ? (JSON.parse(r.body) as { revision?: string }).revision ?? '?' : '?'
          result.byRevision[rev] = (result.byRevision[rev] ?? 0) + 1
        } else fail(`${r.status} ${r.body.trim().slice(0, 80)}`)
      } catch (err) {
        fail((err as Error).message)
      }
    }
  }
  const workers = Array.from({ length: o.concurrency }, worker)
  return {
    async stop() {
      running = false
      await Promise.all(workers)
      agent.destroy()
      return result
    },
    now: () => structuredClone(result),
  }
}

export interface CliProcess {
  child: ChildProcess
  lines: string[]
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Resolves with the first output line matching `re` (stdout or stderr), rejects after `timeoutMs`. */
  waitForLine(re: RegExp, timeoutMs?: number): Promise<string>
}

/** Runs `node packages/local/dist/cli.js ...args` with the given environment added; output collected by line. */
export function spawnCli(args: string[], env: Record<string, string>): CliProcess {
  const child = spawn(process.execPath, [CLI_JS, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  const waiters = new Set<() => void>()
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (l) => {
      lines.push(l)
      for (const w of waiters) w()
    })
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  const waitForLine = (re: RegExp, timeoutMs = 20_000) => new Promise<string>((resolve, reject) => {
    const check = () => {
      const hit = lines.find((l) => re.test(l))
      if (hit === undefined) return
      done()
      resolve(hit)
    }
    const timer = setTimeout(() => {
      done()
      reject(new Error(`no line matching ${re} within ${timeoutMs} ms; output:\n${lines.join('\n')}`))
    }, timeoutMs)
    const done = () => {
      clearTimeout(timer)
      waiters.delete(check)
    }
    waiters.add(check)
    check()
  })
  return { child, lines, exited, waitForLine }
}

/** Runs the CLI to completion; stdout, stderr and the exit code. */
export function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_JS, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** Kills the CLI (by its pid) and the processes it started, if still running; for teardowns. */
export async function killCli(cli: CliProcess, started: readonly ProcessInfo[]): Promise<void> {
  for (const p of stillAlive(started)) {
    try {
      process.kill(p.pid, 'SIGKILL')
    } catch {}
  }
  if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL')
  await cli.exited
}

function readProc(pid: string, file: string): string | null {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8')
  } catch {
    return null
  }
}

export interface ProcessInfo {
  pid: number
  cmdline: string
}

/** The process's command line, or null when no such process lives (zombies count as gone). */
export function cmdlineOf(pid: number): string | null {
  const stat = readProc(String(pid), 'stat')
  if (stat === null || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return null
  return (readProc(String(pid), 'cmdline') ?? '').replaceAll('\0', ' ').trim()
}

/** Processes of a snapshot still alive: same pid, same command line (pids get reused). */
export function stillAlive(snapshot: readonly ProcessInfo[]): ProcessInfo[] {
  return snapshot.filter((p) => cmdlineOf(p.pid) === p.cmdline)
}

/** Every live process below `pid` (children, grandchildren, ...), from /proc/<pid>/stat parent links. */
export function descendants(pid: number): ProcessInfo[] {
  const parentOf = new Map<number, number>()
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue
    const stat = readProc(e, 'stat')
    if (stat === null) continue
    // Fields after the command (which may hold spaces) start after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (rest[0] === 'Z') continue
    parentOf.set(Number(e), Number(rest[1]))
  }
  const out: ProcessInfo[] = []
  const walk = (p: number) => {
    for (const [child, parent] of parentOf) {
      if (parent !== p) continue
      const cmdline = cmdlineOf(child)
      if (cmdline !== null) out.push({ pid: child, cmdline })
      walk(child)
    }
  }
  walk(pid)
  return out
}

/** Live processes whose command line or environment mentions `text` (a unique path, port or marker); with `ancestor`, only its descendants. */
export function processesMentioning(text: string, ancestor?: number): ProcessInfo[] {
  const out: ProcessInfo[] = []
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue
    const cmdline = cmdlineOf(Number(e))
    if (cmdline === null) continue
    if (!cmdline.includes(text) && !(readProc(e, 'environ') ?? '').includes(text)) continue
    if (ancestor !== undefined && !descendsFrom(Number(e), ancestor)) continue
    out.push({ pid: Number(e), cmdline })
  }
  return out
}

/** Whether `ancestor` is among pid's parents (another test run may have processes with the same names). */
function descendsFrom(pid: number, ancestor: number): boolean {
  for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
    const stat = readProc(String(p), 'stat')
    if (stat === null) return false
    p = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
    if (p === ancestor) return true
  }
  return false
}
