// The activator for tests: in-process on loopback with a LocalSource
// (startActivator), or as its own process from packages/activator/dist/main.js
// (spawnActivator, built with `npx tsc -b packages/activator`); plus a pod —
// a real queue-proxy in front of a test app — whose requests can be watched.

import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, openSync } from 'node:fs'
import http from 'node:http'
import type http2 from 'node:http2'
import type net from 'node:net'
import { join } from 'node:path'
import { Activator } from '@sluice/activator/activator'
import { loadConfig } from '@sluice/activator/config'
import { LocalSource } from '@sluice/activator/endpoints/local-source'
import type { RevisionInfo } from '@sluice/activator/revision'
import type { ConfigMapFeed } from '@sluice/activator/endpoints/source'
import type { DualListener } from '@sluice/core/http/listener'
import { createLogger } from '@sluice/core/logging'
import { freePort, type Exit } from './process.ts'
import { knativeEnv, sleep, startQueueProxy, waitFor } from './servers.ts'

export const NAMESPACE = 'default'
export const POD_NAME = 'activator-5d7c9b8f6-x2x9k'

/** A revision as the local source takes it; service/configuration from the name. */
export function revisionInfo(name: string, o: Partial<RevisionInfo> = {}): RevisionInfo {
  const service = name.replace(/-\d+$/, '')
  return {
    namespace: NAMESPACE,
    name,
    containerConcurrency: 0,
    protocol: 'http1',
    timeoutSeconds: 300,
    responseStartTimeoutSeconds: 0,
    idleTimeoutSeconds: 0,
    serviceName: service,
    configurationName: service,
    execReadinessProbe: false,
    ...o,
  }
}

/** The activator's environment for tests: every port ephemeral, loopback only, no drain wait. */
export function activatorEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    POD_NAME,
    POD_IP: '127.0.0.1',
    SYSTEM_NAMESPACE: 'knative-serving',
    SLUICE_HTTP_PORT: '0',
    SLUICE_H2C_PORT: '0',
    SLUICE_METRICS_PORT: '0',
    SLUICE_PROFILING_PORT: '0',
    SLUICE_LOCAL_API_PORT: '0',
    SLUICE_BIND_ADDRESS: '127.0.0.1',
    SLUICE_ENDPOINT_SOURCE: 'local',
    SLUICE_DRAIN_PERIOD: '0s',
    SLUICE_LOG_LEVEL: 'fatal',
    ...extra,
  }
}

export interface StartActivatorOptions {
  env?: Record<string, string>
  /** The stat server; by default a port nothing listens on (autoscaler unreachable). */
  autoscalerUrl?: string
  /** Upserted before start. */
  revisions?: RevisionInfo[]
  source?: LocalSource
  /** ConfigMaps of SYSTEM_NAMESPACE (config-network, config-tracing); none by default. */
  configMaps?: ConfigMapFeed | null
}

export interface RunningActivator {
  activator: Activator
  source: LocalSource
  ports: { http: number; h2c: number; metrics: number; profiling: number }
  /** http://127.0.0.1:<http1 port> */
  url: string
  /** http://127.0.0.1:<h2c port> */
  h2cUrl: string
  metricsUrl: string
  /** Shutdown (drain period from the env, 0 by default); waits for in-flight requests. */
  stop(): Promise<void>
}

/** Resolves once a request waits in the throttler for capacity of `rev` (a cold start's clock runs from here); throws after 10 s. */
export async function waitingInThrottler(act: RunningActivator, rev: string, namespace = NAMESPACE): Promise<void> {
  if (!(await waitFor(() => (act.activator.ctx.throttler.get(`${namespace}/${rev}`)?.queue.length ?? 0) > 0, 10_000))) throw new Error(`no request waiting in the throttler for ${namespace}/${rev}`)
}

let devNull: number | undefined

/** An activator in this process, with a LocalSource (revisions and endpoints set by the test). */
export async function startActivator(opts: StartActivatorOptions = {}): Promise<RunningActivator> {
  const env = activatorEnv(opts.env)
  const cfg = loadConfig(env)
  devNull ??= openSync('/dev/null', 'w')
  // SLUICE_TEST_LOGS=1 shows the activator's log on stderr while debugging a test.
  const log = createLogger({ name: 'activator', level: process.env.SLUICE_TEST_LOGS ? 'debug' : cfg.loggingLevel, fd: process.env.SLUICE_TEST_LOGS ? 2 : devNull })
  const source = opts.source ?? new LocalSource()
  for (const r of opts.revisions ?? []) source.upsertRevision(r)
  const autoscalerUrl = opts.autoscalerUrl ?? `ws://127.0.0.1:${await freePort()}`
  const activator = new Activator(cfg, log, { source, autoscalerUrl, clusterDomain: 'cluster.local', configMaps: opts.configMaps })
  const ports = await activator.start()
  return {
    activator,
    source,
    ports,
    url: `http://127.0.0.1:${ports.http}`,
    h2cUrl: `http://127.0.0.1:${ports.h2c}`,
    metricsUrl: `http://127.0.0.1:${ports.metrics}/metrics`,
    stop: () => activator.shutdown(),
  }
}

// ---- pods ------------------------------------------------------------------

/** A request as the queue-proxy received it. */
export interface SeenRequest {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
  httpVersion: string
}

export interface Pod {
  qp: Awaited<ReturnType<typeof startQueueProxy>>
  /** "127.0.0.1:<queue-proxy serving port>": what the endpoints list. */
  dest: string
  /** Every request the queue-proxy received (probes included), in order. */
  seen: SeenRequest[]
  stop(): Promise<void>
  /** As SIGKILL would: the port closes and every connection to it is cut at once. */
  kill(): Promise<void>
}

export interface PodOptions {
  containerConcurrency?: number
  revision?: string
  env?: Record<string, string>
}

/** A real queue-proxy in front of the app on `userPort`, recording what reaches it. */
export async function startPod(userPort: number, o: PodOptions = {}): Promise<Pod> {
  const qp = await startQueueProxy(knativeEnv(userPort, {
    CONTAINER_CONCURRENCY: String(o.containerConcurrency ?? 0),
    SERVING_REVISION: o.revision ?? 'hello-00001',
    ...o.env,
  }))
  const seen: SeenRequest[] = []
  // Watch the queue-proxy's own listener: it answers probes itself, so the app never sees them.
  const listener = (qp.qp as unknown as { listener: DualListener }).listener
  const record = (req: http.IncomingMessage | http2.Http2ServerRequest): void => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers as http.IncomingHttpHeaders, httpVersion: req.httpVersion })
  }
  listener.h1.prependListener('request', record)
  listener.h1.prependListener('upgrade', record)
  listener.h2.prependListener('request', record)
  const sockets = new Set<net.Socket>()
  listener.tcp.on('connection', (s: net.Socket) => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
  })
  const kill = async (): Promise<void> => {
    listener.tcp.close()
    for (const s of sockets) s.destroy()
    await qp.stop()
  }
  return { qp, dest: `127.0.0.1:${qp.ports.serving}`, seen, stop: () => qp.stop(), kill }
}

// ---- metrics ---------------------------------------------------------------

/** The Prometheus text of the activator's metrics port. */
export async function scrapeMetrics(metricsUrl: string): Promise<string> {
  const res = await fetch(metricsUrl)
  return res.text()
}

/**
 * The value of the sample `name` whose labels include all of `labels`
 * (undefined if none); e.g. metricValue(text, 'activator_request_count', { response_code: '200' }).
 */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line)
    if (m === null || m[1] !== name) continue
    const have = parseLabels(m[3] ?? '')
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4])
  }
  return undefined
}

/** The label sets of every sample named `name`. */
export function metricLabels(text: string, name: string): Array<Record<string, string>> {
  const out: Array<Record<string, string>> = []
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line)
    if (m !== null && m[1] === name) out.push(parseLabels(m[3] ?? ''))
  }
  return out
}

function parseLabels(s: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const m of s.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) out[m[1]!] = m[2]!
  return out
}

// ---- the process -------------------------------------------------------------

export const ACTIVATOR_MAIN_JS = join(import.meta.dirname, '../../packages/activator/dist/main.js')

export interface ActivatorProcess {
  child: ChildProcess
  exited: Promise<Exit>
  stdout(): string
  stderr(): string
  /** Ports from the "activator started" log line (and the local API's, in local mode). */
  ports: { http: number; h2c: number; metrics: number; profiling: number; localApi: number | null }
  url: string
}

/** Runs main.js with exactly `env` (nothing inherited); output is collected. */
export function runActivatorMain(env: Record<string, string>): Omit<ActivatorProcess, 'ports' | 'url'> {
  if (!existsSync(ACTIVATOR_MAIN_JS)) throw new Error(`${ACTIVATOR_MAIN_JS} is missing: build it with npx tsc -b packages/activator`)
  const child = spawn(process.execPath, [ACTIVATOR_MAIN_JS], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d })
  const exited = new Promise<Exit>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal, at: performance.now() }))
  })
  return { child, exited, stdout: () => out, stderr: () => err }
}

/** JSON log lines of a process's stdout (non-JSON lines skipped). */
export function logLines(stdout: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = []
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue
    try {
      out.push(JSON.parse(line) as Record<string, unknown>)
    } catch { /* a partial line */ }
  }
  return out
}

/**
 * Starts main.js with `env` (on ephemeral ports from activatorEnv()) and
 * resolves once it logged that it started. The log level is forced to info:
 * the start-up lines carry the ports.
 */
export async function spawnActivator(env: Record<string, string>, startTimeoutMs = 20_000): Promise<ActivatorProcess> {
  const run = runActivatorMain({ ...env, SLUICE_LOG_LEVEL: 'info' })
  let exit: Exit | null = null
  void run.exited.then((e) => { exit = e })
  const deadline = Date.now() + startTimeoutMs
  for (;;) {
    const lines = logLines(run.stdout())
    const started = lines.find((l) => l.message === 'activator started')
    if (started !== undefined) {
      const p = started.ports as { http: number; h2c: number; metrics: number; profiling: number }
      const api = lines.find((l) => l.message === 'local endpoint API listening')
      return { ...run, ports: { ...p, localApi: api === undefined ? null : api.port as number }, url: `http://127.0.0.1:${p.http}` }
    }
    if (exit !== null) throw new Error(`activator exited during start-up (${JSON.stringify(exit)}): ${run.stderr()}${run.stdout()}`)
    if (Date.now() > deadline) {
      run.child.kill('SIGKILL')
      throw new Error(`activator did not start within ${startTimeoutMs} ms: ${run.stderr()}${run.stdout()}`)
    }
    await sleep(20)
  }
}
