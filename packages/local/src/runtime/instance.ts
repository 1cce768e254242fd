// One instance of a revision — the local stand-in for a pod: the app process
// plus its own queue-proxy process, wired with the environment Knative's
// revision reconciler would give them. Ready once the queue-proxy answers its
// kubelet-style probe (which runs the user readiness probe).

import http from 'node:http'
import net from 'node:net'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { freePort } from './ports.ts'
import { spawnChild, stopChild } from './processes.ts'
import type { RevisionSpec } from './spec.ts'

export type InstanceState = 'starting' | 'ready' | 'restarting' | 'stopping' | 'stopped'

export interface InstanceEvents {
  onState(inst: Instance, state: InstanceState): void
  log(line: string): void
  /** One line the app or the instance's queue-proxy wrote (stdout or stderr). */
  output?(inst: Instance, from: 'app' | 'queue-proxy', line: string): void
}

export interface InstanceOptions {
  root: string
  nodePath: string
  /** Show app and queue-proxy output, prefixed. */
  showOutput: boolean
  /** Queue-proxy drain quiet period: locally endpoints are removed first, so it can be short. */
  drainQuiet: string
  /** Queue-proxies serve Knative's request metrics in Prometheus text (SERVING_REQUEST_METRICS_BACKEND=prometheus). */
  requestMetrics?: boolean
  /** Extra queue-proxy environment (the TRACING_CONFIG_* of config-tracing). */
  queueProxyEnv?: Record<string, string>
}

let nextId = 1

export class Instance {
  readonly id: string
  readonly rev: RevisionSpec
  state: InstanceState = 'starting'
  appPort = 0
  servingPort = 0
  metricsPort = 0
  adminPort = 0
  /** The queue-proxy's Prometheus port (0: request metrics off). */
  userMetricsPort = 0
  /** Milliseconds from spawning the app to its port accepting connections (its own start time). */
  appStartMs = -1
  /** performance.now() when the instance was started, and when it first became ready (0 until then). */
  startedAt = 0
  readyAt = 0
  /** Started while its revision had no ready instance: a cold start. */
  cold = false
  restarts = 0
  private app: ChildProcess | null = null
  private qp: ChildProcess | null = null
  private readonly events: InstanceEvents
  private readonly opts: InstanceOptions
  private probeTimer: NodeJS.Timeout | null = null
  /** Aborts the probe in flight: the queue-proxy holds it until the app answers, and would not drain before. */
  private readonly probeAbort = new AbortController()

  constructor(rev: RevisionSpec, events: InstanceEvents, opts: InstanceOptions) {
    this.id = `${rev.name}-${String(nextId++).padStart(3, '0')}`
    this.rev = rev
    this.events = events
    this.opts = opts
  }

  get dest(): string {
    return `127.0.0.1:${this.servingPort}`
  }

  async start(): Promise<void> {
    if (this.startedAt === 0) this.startedAt = performance.now()
    ;[this.appPort, this.servingPort, this.metricsPort, this.adminPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()])
    if (this.opts.requestMetrics === true) this.userMetricsPort = await freePort()
    // Stopped while the ports were found (a delete or scale-down right after a scale-up): start nothing.
    if (this.state === 'stopping' || this.state === 'stopped') return
    this.spawnApp()
    this.spawnQueueProxy()
    this.pollReady()
  }

  private spawnApp(): void {
    const { rev, opts } = this
    const spawnedAt = performance.now()
    this.appStartMs = -1
    const app = spawnChild({
      command: rev.app.command,
      args: rev.app.args,
      cwd: rev.app.cwd,
      env: {
        ...inheritedEnv(),
        ...rev.app.env,
        PORT: String(this.appPort),
        K_SERVICE: rev.service,
        K_CONFIGURATION: rev.configuration,
        K_REVISION: rev.name,
      },
      label: opts.showOutput ? `[${this.id}]` : null,
      onLine: this.events.output === undefined ? undefined : (line) => this.events.output!(this, 'app', line),
    })
    this.app = app
    app.once('exit', (code, signal) => this.appExited(app, code, signal))
    void this.measureAppStart(spawnedAt, app)
  }

  /** The app's own time to listen, measured independently of the proxies. */
  private async measureAppStart(spawnedAt: number, app: ChildProcess): Promise<void> {
    while (this.app === app && app.exitCode === null) {
      if (await canConnect(this.appPort)) {
        this.appStartMs = performance.now() - spawnedAt
        return
      }
      await new Promise((r) => setTimeout(r, 2))
    }
  }

  private spawnQueueProxy(): void {
    const { rev, opts } = this
    const probe = rev.app.readinessProbe === null
      ? { tcpSocket: { port: this.appPort, host: '127.0.0.1' }, successThreshold: 1 }
      : withPort(rev.app.readinessProbe, this.appPort)
    const qp = spawnChild({
      command: opts.nodePath,
      args: [join(opts.root, 'packages/queue-proxy/dist/main.js')],
      cwd: opts.root,
      env: {
        ...inheritedEnv(),
        SERVING_NAMESPACE: rev.namespace,
        SERVING_SERVICE: rev.service,
        SERVING_CONFIGURATION: rev.configuration,
        SERVING_REVISION: rev.name,
        SERVING_POD: this.id,
        SERVING_POD_IP: '127.0.0.1',
        QUEUE_SERVING_PORT: String(this.servingPort),
        QUEUE_SERVING_TLS_PORT: '8112',
        USER_PORT: String(this.appPort),
        CONTAINER_CONCURRENCY: String(rev.containerConcurrency),
        REVISION_TIMEOUT_SECONDS: String(rev.timeoutSeconds),
        REVISION_RESPONSE_START_TIMEOUT_SECONDS: String(rev.responseStartTimeoutSeconds),
        REVISION_IDLE_TIMEOUT_SECONDS: String(rev.idleTimeoutSeconds),
        SERVING_LOGGING_CONFIG: '',
        SERVING_LOGGING_LEVEL: 'warn',
        SERVING_READINESS_PROBE: JSON.stringify(probe),
        SLUICE_ADMIN_PORT: String(this.adminPort),
        SLUICE_METRICS_PORT: String(this.metricsPort),
        SLUICE_BIND_ADDRESS: '127.0.0.1',
        SLUICE_DRAIN_QUIET_PERIOD: opts.drainQuiet,
        SLUICE_DRAIN_WEBSOCKET_TIMEOUT: '5s',
        ...(this.userMetricsPort === 0 ? {} : { SERVING_REQUEST_METRICS_BACKEND: 'prometheus', SLUICE_USER_METRICS_PORT: String(this.userMetricsPort) }),
        ...opts.queueProxyEnv,
      },
      label: opts.showOutput ? `[${this.id} queue-proxy]` : null,
      onLine: this.events.output === undefined ? undefined : (line) => this.events.output!(this, 'queue-proxy', line),
    })
    this.qp = qp
    qp.once('exit', (code, signal) => {
      if (this.qp === qp && this.state !== 'stopping' && this.state !== 'stopped') {
        // The sidecar died: the whole "pod" restarts.
        this.events.log(`instance ${this.id}: queue-proxy exited (${code ?? signal}); restarting the instance`)
        void this.restart()
      }
    })
  }

  private pollReady(): void {
    if (this.probeTimer !== null) clearTimeout(this.probeTimer)
    const tick = (): void => {
      this.probeTimer = null
      if (this.state === 'stopping' || this.state === 'stopped') return
      probeQueueProxy(this.servingPort, this.probeAbort.signal).then((ok) => {
        if (this.state === 'stopping' || this.state === 'stopped') return
        if (ok) {
          if (this.readyAt === 0) this.readyAt = performance.now()
          this.setState('ready')
        } else this.probeTimer = setTimeout(tick, 20)
      }, () => { this.probeTimer = setTimeout(tick, 20) })
    }
    tick()
  }

  private appExited(app: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.app !== app || this.state === 'stopping' || this.state === 'stopped') return
    this.events.log(`instance ${this.id}: app exited (${code ?? signal}); restarting it`)
    this.restarts++
    this.setState('restarting')
    // Crash-loop back-off, as kubelet does (capped low: this is a local runtime).
    const delay = Math.min(100 * 2 ** Math.min(this.restarts - 1, 5), 3000)
    setTimeout(() => {
      if (this.state !== 'restarting') return
      this.spawnApp()
      this.pollReady()
    }, delay).unref()
  }

  private async restart(): Promise<void> {
    this.restarts++
    this.setState('restarting')
    // Forget the app first: its exit is ours, not a crash to restart it for.
    const app = this.app
    this.app = null
    if (app !== null) await stopChild(app, 2000)
    await this.start()
  }

  async stop(graceMs: number): Promise<void> {
    if (this.state === 'stopped') return
    this.setState('stopping')
    if (this.probeTimer !== null) clearTimeout(this.probeTimer)
    this.probeAbort.abort()
    // As kubelet: the queue-proxy drains first; the app is stopped after it.
    if (this.qp !== null) await stopChild(this.qp, graceMs)
    if (this.app !== null) await stopChild(this.app, 2000)
    this.setState('stopped')
  }

  private setState(s: InstanceState): void {
    if (this.state === s) return
    this.state = s
    this.events.onState(this, s)
  }
}

/** What child processes inherit: PATH and the like, not the runtime's own settings. */
function inheritedEnv(): Record<string, string> {
  const out: Record<string, string> = {}
  for (const k of ['PATH', 'HOME', 'LANG', 'TZ', 'TMPDIR', 'NODE_OPTIONS']) {
    const v = process.env[k]
    if (v !== undefined) out[k] = v
  }
  return out
}

function withPort(probe: Record<string, unknown>, port: number): Record<string, unknown> {
  const p = structuredClone(probe) as Record<string, Record<string, unknown> | unknown>
  for (const k of ['httpGet', 'tcpSocket', 'grpc']) {
    const h = p[k] as Record<string, unknown> | undefined
    if (h !== undefined && h !== null) {
      h.port = port
      if (k !== 'grpc') h.host = '127.0.0.1'
    }
  }
  return p as Record<string, unknown>
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

/** The kubelet readiness probe Knative puts on the queue-proxy container. */
function probeQueueProxy(port: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 12_000, signal, headers: { 'user-agent': 'kube-probe/1.30', 'k-network-probe': 'queue' } }, (res) => {
      res.resume()
      resolve(res.statusCode === 200)
    })
    req.once('timeout', () => req.destroy())
    req.once('error', () => resolve(false))
  })
}
