// Wires the queue-proxy's parts (Knative's sharedmain, spec §1.1): builds
// them from the config, starts every listener, and runs the drain sequence.

import type http from 'node:http'
import type net from 'node:net'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { Breaker } from '@sluice/core/breaker'
import { Body } from '@sluice/core/constants'
import type { Logger } from '@sluice/core/logging'
import { RequestStats } from '@sluice/core/request-stats'
import { createAdminServer, type AdminState } from './admin-server.ts'
import type { QueueConfig } from './config.ts'
import type { QueueContext, Prober } from './context.ts'
import { Drainer } from './drainer.ts'
import { createMainHandler } from './handler.ts'
import { createDualListener, type DualListener } from '@sluice/core/http/listener'
import { createMetricsServer } from './metrics-server.ts'
import { createObserver } from './observer.ts'
import { parseReadinessProbe } from './readiness/probe-spec.ts'
import { ReadinessProber } from './readiness/prober.ts'
import type { RequestLogWriter } from './request-log-writer.ts'
import { RequestMetrics } from './request-metrics.ts'
import { StatsReporter } from './stats-reporter.ts'
import { createUpstreams } from './upstream.ts'
import { createUpgradeHandler, type Tunnel } from './websocket-tunnel.ts'
import type { QueueTracing } from './request-tracing.ts'
import type { SpanDrops } from '@sluice/core/tracing/span-drops'

export interface Ports {
  serving: number
  tls: number | null
  admin: number
  metrics: number
  userMetrics: number | null
}

export interface QueueProxyOptions {
  /** Where the TLS certificate and key are looked for (Knative mounts them here). */
  certsDir?: string
  /** How often the certificate files are re-read; 1 minute by default (tests shorten it). */
  certReloadMs?: number
  /** Replaces the readiness prober built from SERVING_READINESS_PROBE (tests). */
  prober?: Prober
  /** How long span drops are gathered into one log line (10 s; tests shorten it). */
  spanDropWindowMs?: number
}

/** The parts that exist only when configured. */
interface OptionalParts {
  metrics: RequestMetrics | null
  requestLog: RequestLogWriter | null
  tracing: QueueTracing | null
  spanDrops: SpanDrops | null
}

export class QueueProxy {
  readonly cfg: QueueConfig
  readonly log: Logger
  readonly ctx: QueueContext
  readonly reporter: StatsReporter
  readonly adminState: AdminState = { terminating: false }
  ports: Ports | null = null

  private readonly listener: DualListener
  private readonly tunnels = new Set<Tunnel>()
  private readonly servers: net.Server[] = []
  private readonly metrics: RequestMetrics | null
  private readonly requestLog: RequestLogWriter | null
  private readonly opts: QueueProxyOptions
  private shuttingDown: Promise<void> | null = null

  private readonly tracing: QueueTracing | null
  private readonly spanDrops: SpanDrops | null

  private constructor(cfg: QueueConfig, log: Logger, parts: OptionalParts, opts: QueueProxyOptions) {
    const { metrics, requestLog, tracing, spanDrops } = parts
    this.cfg = cfg
    this.log = log
    this.opts = opts
    this.metrics = metrics
    this.requestLog = requestLog
    this.tracing = tracing
    this.spanDrops = spanDrops
    const now = performance.now()
    const stats = new RequestStats(now)
    const cc = cfg.containerConcurrency
    const prober = opts.prober ?? new ReadinessProber(parseReadinessProbe(cfg.readinessProbe), {
      log: (line: string) => log.warn(line),
      http2AutoDetect: cfg.http2AutoDetect,
    })
    this.ctx = {
      cfg,
      stats,
      breaker: cc > 0 ? new Breaker({ queueDepth: 10 * cc, maxConcurrency: cc, initialCapacity: cc }) : null,
      upstreams: createUpstreams(cfg.userHost, cfg.userPort, cfg.maxHeaderBytes),
      drainer: new Drainer(cfg.drainQuietMs),
      prober,
      log,
      observer: createObserver(metrics, this.requestLog),
      tracing,
      timeouts: { totalMs: cfg.revisionTimeoutMs, startMs: cfg.responseStartTimeoutMs, idleMs: cfg.idleTimeoutMs, message: Body.requestTimeout },
      active: 0,
      onIdle: null,
    }
    this.reporter = new StatsReporter(stats, cfg.pod, now)
    metrics?.trackDrain(this.ctx.drainer)
    this.listener = createDualListener({
      onRequest: createMainHandler(this.ctx) as never,
      onUpgrade: createUpgradeHandler(this.ctx, this.tunnels),
      limits: cfg.connection,
    })
  }

  static async create(cfg: QueueConfig, log: Logger, opts: QueueProxyOptions = {}): Promise<QueueProxy> {
    // Optional parts are loaded only when configured: start-up and memory stay lean.
    const metrics = cfg.userMetrics !== null ? await RequestMetrics.create(cfg) : null
    let requestLog: RequestLogWriter | null = null
    if (cfg.requestLog.enabled && cfg.requestLog.template !== '') {
      const { RequestLogWriter } = await import('./request-log-writer.ts')
      requestLog = new RequestLogWriter(cfg)
    }
    let tracing: QueueTracing | null = null
    let spanDrops: SpanDrops | null = null
    if (cfg.tracing !== null) {
      const [{ QueueTracing }, { SpanDrops }] = await Promise.all([import('./request-tracing.ts'), import('@sluice/core/tracing/span-drops')])
      spanDrops = new SpanDrops(log, opts.spanDropWindowMs)
      if (metrics !== null) spanDrops.countInRegistry(metrics.registry)
      tracing = await QueueTracing.create(cfg.tracing, cfg.pod, spanDrops, log)
    }
    return new QueueProxy(cfg, log, { metrics, requestLog, tracing, spanDrops }, opts)
  }

  async start(): Promise<Ports> {
    const cfg = this.cfg
    const host = cfg.bindHost === '' ? undefined : cfg.bindHost
    const serving = await listen(this.listener.tcp, cfg.servingPort, host)
    this.servers.push(this.listener.tcp)
    const admin = createAdminServer(this.ctx.drainer, this.adminState)
    const adminPort = await listen(admin, cfg.adminPort, host)
    this.servers.push(admin)
    const metricsServer = createMetricsServer(this.reporter)
    const metricsPort = await listen(metricsServer, cfg.metricsPort, host)
    this.servers.push(metricsServer)
    let userMetrics: number | null = null
    if (this.metrics !== null && cfg.userMetrics !== null) {
      const { createUserMetricsServer } = await import('./user-metrics-server.ts')
      const s = createUserMetricsServer(this.metrics.registry)
      userMetrics = await listen(s, cfg.userMetrics.port, cfg.userMetrics.host === '' ? host : cfg.userMetrics.host)
      this.servers.push(s)
    }
    let tls: number | null = null
    // node:tls is loaded only when Knative mounted certificates (start-up cost).
    const certsDir = this.opts.certsDir ?? '/var/lib/knative/certs'
    let tlsServer = null
    if (existsSync(join(certsDir, 'tls.crt')) && existsSync(join(certsDir, 'tls.key'))) {
      const { loadTlsListener } = await import('./tls-listener.ts')
      tlsServer = await loadTlsListener(certsDir, this.listener, this.log, this.opts.certReloadMs)
    }
    if (tlsServer !== null) {
      tls = await listen(tlsServer, cfg.tlsPort, host)
      this.servers.push(tlsServer)
    }
    if (cfg.profiling.enabled) {
      const { createProfilingServer } = await import('@sluice/core/http/profiling-server')
      const p = createProfilingServer()
      await listen(p, cfg.profiling.port, host)
      this.servers.push(p)
    }
    this.reporter.start()
    this.ports = { serving, tls, admin: adminPort, metrics: metricsPort, userMetrics }
    return this.ports
  }

  /** SIGTERM: fail probes, serve through the quiet period, finish in-flight work, close. */
  shutdown(): Promise<void> {
    this.adminState.terminating = true
    this.shuttingDown ??= this.runShutdown()
    return this.shuttingDown
  }

  private async runShutdown(): Promise<void> {
    const { ctx, cfg, log } = this
    log.info({ quietPeriodMs: cfg.drainQuietMs }, 'received termination signal; draining')
    await ctx.drainer.drain()
    log.info({ active: ctx.active }, 'drain quiet period over; shutting down servers')
    for (const s of this.servers) s.close()
    this.listener.h1.closeIdleConnections()
    for (const s of this.listener.sessions) s.close()
    // In-flight requests finish; websockets get up to websocketDrainMs, then are cut.
    if (ctx.active > 0) {
      const idle = new Promise<void>((resolve) => { ctx.onIdle = resolve })
      const cut = setTimeout(() => { for (const t of this.tunnels) t.destroy() }, cfg.websocketDrainMs)
      const closeIdle = setInterval(() => this.listener.h1.closeIdleConnections(), 200)
      await idle
      clearTimeout(cut)
      clearInterval(closeIdle)
    }
    this.listener.h1.closeAllConnections()
    this.reporter.stop()
    this.requestLog?.flush()
    // Spans of the last requests are exported; a dead collector costs at most 2 s.
    if (this.tracing !== null) await this.tracing.tracer.shutdownWithin()
    this.spanDrops?.flush()
    await this.ctx.upstreams.close()
    log.info('shutdown complete')
  }
}

async function listen(server: net.Server | http.Server, port: number, host: string | undefined): Promise<number> {
  server.listen({ port, host })
  await once(server, 'listening')
  return (server.address() as net.AddressInfo).port
}
