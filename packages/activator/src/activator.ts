// Wires the activator's parts (Knative's cmd/activator/main.go, spec §2.2):
// endpoint source → throttler; concurrency reporter → stat sender; the
// handler chain on the http1 and h2c ports; metrics; drain on SIGTERM.

import http from 'node:http'
import type net from 'node:net'
import { once } from 'node:events'
import { createDualListener, type DualListener } from '@sluice/core/http/listener'
import type { Logger } from '@sluice/core/logging'
import { internalTlsFromConfigNetwork, type ActivatorConfig } from './config.ts'
import type { ActivatorContext } from './context.ts'
import type { EndpointEvents, EndpointSource } from './endpoints/source.ts'
import { createMainHandler } from './handler/main-handler.ts'
import { WaitingUploads } from './handler/waiting-uploads.ts'
import { createUpgradeHandler } from './handler/upgrade-tunnel.ts'
import { ActivatorMetrics, revisionLabels } from './metrics.ts'
import { splitRevisionKey } from './revision.ts'
import { Throttler } from './net/throttler.ts'
import { ConcurrencyReporter } from './stats/concurrency-reporter.ts'
import { StatSender } from './stats/stat-sender.ts'
import { createUpstreams } from './upstream.ts'
import type { PolicyName } from './net/lb-policy.ts'
import type { CertificateFeed } from './tls/internal-tls.ts'
import type { ConfigMapFeed } from './endpoints/source.ts'
import { meshFromConfigMap, type MeshSettings } from './net/mesh-config.ts'
import { SIDE_PORT_OPTIONS } from '@sluice/core/http/connection-limits'
import { tracingFromConfigMap, tracingFromObservabilityConfigMap, type TracingSettings } from '@sluice/core/tracing/settings'
import { TracingSwitch } from './tracing-switch.ts'
import { registerMeshMetrics } from './net/mesh-metrics.ts'

export interface ActivatorOptions {
  source: EndpointSource
  autoscalerUrl: string
  clusterDomain: string
  /** Overrides the cc-based load-balancing choice (SLUICE_LB_POLICY). */
  policy?: PolicyName
  /** system-internal-tls certificates; by default the Secret through the API (endpoints/certificate-source.ts). */
  certificates?: CertificateFeed
  /**
   * ConfigMaps of SYSTEM_NAMESPACE (config-network, ...). Default: watched
   * through the API with the Kubernetes source (endpoints/config-maps.ts);
   * none with the local source (the SLUICE_* values apply). null: none.
   */
  configMaps?: ConfigMapFeed | null
}

export interface ActivatorPorts {
  http: number
  h2c: number
  metrics: number
  profiling: number
  /** The TLS port (system-internal-tls only). */
  https?: number
}

export class Activator {
  readonly cfg: ActivatorConfig
  readonly ctx: ActivatorContext
  readonly sender: StatSender
  ports: ActivatorPorts | null = null
  private readonly listeners: DualListener[] = []
  private readonly servers: net.Server[] = []
  private shuttingDown: Promise<void> | null = null
  private readonly opts: ActivatorOptions
  private certificates: CertificateFeed | null = null
  /** The ConfigMap watch, once start() made it (null: local source). */
  configMaps: ConfigMapFeed | null = null
  /** config-tracing (or SLUICE_TRACING_*) applied to ctx.tracing. */
  readonly tracing: TracingSwitch

  constructor(cfg: ActivatorConfig, log: Logger, opts: ActivatorOptions) {
    this.cfg = cfg
    this.opts = opts
    const metrics = new ActivatorMetrics(cfg.podName)
    const sender = new StatSender({ url: opts.autoscalerUrl, log })
    this.sender = sender
    const throttler = new Throttler({
      podIP: cfg.podIP,
      revisionLimits: { maxQueued: cfg.maxQueuedPerRevision, maxBufferedBytes: cfg.maxBufferedBytesPerRevision },
      totalLimits: { maxQueued: cfg.maxQueuedTotal, maxBufferedBytes: cfg.maxBufferedBytesTotal },
      probeFrequencyMs: cfg.probeFrequencyMs,
      probeTimeoutMs: cfg.probeTimeoutMs,
      meshMode: cfg.mesh.mode,
      passthroughLb: cfg.mesh.passthroughLb,
      queue: { shedOnDeadlineEstimate: cfg.shedOnDeadlineEstimate },
      policyOverride: opts.policy,
      lookupRevision: (key) => opts.source.getRevision(...splitRevisionKey(key)),
      log,
      onColdStart: (key) => metrics.coldStart(key),
    })
    metrics.setLimits({ queuedPerRevision: cfg.maxQueuedPerRevision, queuedTotal: cfg.maxQueuedTotal, bytesPerRevision: cfg.maxBufferedBytesPerRevision, bytesTotal: cfg.maxBufferedBytesTotal })
    const reporter = new ConcurrencyReporter({
      podName: cfg.podName,
      send: (msgs) => sender.send(msgs),
      onReport: (ns, name, c) => metrics.setConcurrency(ns, name, c),
    })
    sender.onStateChange = (up: boolean) => {
      metrics.autoscalerConnected.set(up ? 1 : 0)
      // (Re)connected: report at once, so revisions with waiting requests are
      // signalled now rather than at the next tick (pokes sent while down were lost).
      if (up) reporter.tick()
    }
    this.ctx = {
      cfg,
      clusterDomain: opts.clusterDomain,
      source: opts.source,
      throttler,
      reporter,
      metrics,
      upstreams: createUpstreams(cfg.maxHeaderBytes),
      uploads: new WaitingUploads({ log, maxReadAheadBytes: cfg.maxReadAheadBytes, onAbandoned: () => metrics.abandonedUploads.inc() }),
      health: { terminating: false, autoscalerConnected: () => sender.connected, requireAutoscaler: cfg.readinessRequiresAutoscaler },
      log,
      tracing: null,
      active: 0,
      onIdle: null,
    }
    this.tracing = new TracingSwitch(this.ctx, log, metrics.registry)
    registerMeshMetrics(metrics.registry, throttler)
  }

  async start(): Promise<ActivatorPorts> {
    const { cfg, ctx } = this
    // config-network before the revisions: their first probes use its mesh mode.
    await this.startConfigMaps()
    // Revisions and endpoints first: requests arriving at once can be routed.
    await ctx.source.start(this.events())
    this.sender.start()
    ctx.reporter.start()
    // Knative is not Ready before the autoscaler websocket is up; Sluice serves
    // regardless, but gives the connection a moment so first requests are poked.
    await this.waitForAutoscaler(1000)
    const host = cfg.bindHost === '' ? undefined : cfg.bindHost
    const onRequest = createMainHandler(ctx)
    const onUpgrade = createUpgradeHandler(ctx)
    const ports: number[] = []
    for (const port of [cfg.httpPort, cfg.h2cPort]) {
      const l = createDualListener({ onRequest: onRequest as never, onUpgrade, limits: cfg.connection })
      this.listeners.push(l)
      ports.push(await listen(l.tcp, port, host))
      this.servers.push(l.tcp)
    }
    let https: number | undefined
    if (cfg.systemInternalTls ?? (await this.internalTlsFromConfigNetwork())) {
      const l = createDualListener({ onRequest: onRequest as never, onUpgrade, limits: cfg.connection })
      this.listeners.push(l)
      const server = await this.startInternalTls(l)
      https = await listen(server, cfg.httpsPort, host)
      this.servers.push(server)
    }
    const metricsServer = http.createServer(SIDE_PORT_OPTIONS, (req, res) => {
      if (req.url !== '/metrics' && !req.url!.startsWith('/metrics?')) {
        res.writeHead(404)
        res.end('404 page not found\n')
        return
      }
      this.updateQueueGauges()
      ctx.metrics.registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': ctx.metrics.registry.contentType })
        res.end(text)
      }, (err: Error) => {
        res.writeHead(500)
        res.end(`${err.message}\n`)
      })
    })
    const metricsPort = await listen(metricsServer, cfg.metricsPort, host)
    this.servers.push(metricsServer)
    const { createProfilingServer } = await import('@sluice/core/http/profiling-server')
    const profiling = createProfilingServer(() => cfg.profiling)
    const profilingPort = await listen(profiling, cfg.profilingPort, host)
    this.servers.push(profiling)
    this.ports = { http: ports[0]!, h2c: ports[1]!, metrics: metricsPort, profiling: profilingPort }
    if (https !== undefined) this.ports.https = https
    return this.ports
  }

  /** Knative's certificate cache and TLS transport (spec §2.2 step 5): certificates first, then the server. */
  private async startInternalTls(listener: DualListener): Promise<import('node:tls').Server> {
    const { cfg, ctx } = this
    const { InternalTls } = await import('./tls/internal-tls.ts')
    const { ROUTING_CERT_SECRET } = await import('./tls/names.ts')
    const { createTlsServer } = await import('./tls/tls-listener.ts')
    let feed = this.opts.certificates
    if (feed === undefined) {
      const { CertificateSource, loadKubeConfig } = await import('./endpoints/kubernetes.ts')
      feed = new CertificateSource({ kubeConfig: loadKubeConfig(process.env), namespace: cfg.systemNamespace, log: ctx.log })
    }
    this.certificates = feed
    const internal = new InternalTls({ maxHeaderBytes: cfg.maxHeaderBytes, queueTlsPort: cfg.queueTlsPort, secretName: `${cfg.systemNamespace}/${ROUTING_CERT_SECRET}`, log: ctx.log })
    const server = createTlsServer(listener)
    internal.attach(server)
    await feed.start((m) => internal.update(m))
    ctx.upstreams.tls = internal
    ctx.log.info({ port: cfg.httpsPort, queueTlsPort: cfg.queueTlsPort }, 'Knative Internal TLS is enabled')
    return server
  }

  /** config-network's system-internal-tls, read once at start as Knative does; off without a ConfigMap watch. */
  private internalTlsFromConfigNetwork(): Promise<boolean> {
    const feed = this.configMaps
    if (feed === null) return Promise.resolve(false)
    return new Promise((resolve) => {
      let decided = false
      // A listener added after start() hears the current data at once.
      feed.onConfigMap('config-network', (data) => {
        if (decided) return
        decided = true
        const on = internalTlsFromConfigNetwork(data)
        if (on === undefined) this.ctx.log.error({ configMap: `${this.cfg.systemNamespace}/config-network`, value: data?.['system-internal-tls'] ?? data?.['internal-encryption'] }, 'invalid system-internal-tls; internal TLS stays off')
        resolve(on ?? false)
      })
    })
  }

  /** The ConfigMap watch and config-network's mesh settings, applied at run time as they change. */
  private async startConfigMaps(): Promise<void> {
    const { cfg, ctx } = this
    let feed = this.opts.configMaps
    if (feed === undefined && cfg.endpointSource === 'kubernetes') {
      const { ConfigMapWatch, loadKubeConfig } = await import('./endpoints/kubernetes.ts')
      feed = new ConfigMapWatch({ kubeConfig: loadKubeConfig(process.env), namespace: cfg.systemNamespace, log: ctx.log })
    }
    this.configMaps = feed ?? null
    if (this.configMaps === null) {
      this.logMesh(cfg.mesh, 'environment')
      if (cfg.tracing !== null) await this.tracing.apply(cfg.tracing, 'environment')
      return
    }
    // config-tracing (1.12) and HEAD's config-observability tracing-* keys, which win when present.
    let fromTracing: TracingSettings | null = cfg.tracing
    let fromObservability: TracingSettings | undefined | null = null
    const applyTracing = (from: string): void => {
      void this.tracing.apply(fromObservability === null ? fromTracing : fromObservability ?? null, from)
    }
    this.configMaps.onConfigMap('config-tracing', (data) => {
      try {
        fromTracing = data === undefined ? cfg.tracing : tracingFromConfigMap(data) ?? null
      } catch (err) {
        ctx.log.error({ configMap: `${cfg.systemNamespace}/config-tracing`, err: (err as Error).message }, 'invalid config-tracing; keeping the settings in force')
        return
      }
      applyTracing(data === undefined ? 'environment (no config-tracing)' : 'config-tracing')
    })
    this.configMaps.onConfigMap('config-observability', (data) => {
      try {
        fromObservability = data === undefined ? null : tracingFromObservabilityConfigMap(data)
      } catch (err) {
        ctx.log.error({ configMap: `${cfg.systemNamespace}/config-observability`, err: (err as Error).message }, 'invalid config-observability tracing; keeping the settings in force')
        return
      }
      applyTracing(fromObservability === null ? 'config-tracing' : 'config-observability')
    })
    this.configMaps.onConfigMap('config-network', (data) => {
      let mesh: MeshSettings
      try {
        mesh = meshFromConfigMap(data, cfg.mesh)
      } catch (err) {
        ctx.log.error({ configMap: `${cfg.systemNamespace}/config-network`, err: (err as Error).message }, 'invalid config-network; keeping the settings in force')
        return
      }
      const before = ctx.throttler.mesh
      if (before.mode === mesh.mode && before.passthroughLb === mesh.passthroughLb && this.meshLogged) return
      ctx.throttler.setMesh(mesh.mode, mesh.passthroughLb)
      this.logMesh(mesh, data === undefined ? 'defaults (no config-network)' : 'config-network')
    })
    await this.configMaps.start()
    // The first requests are traced if config-tracing says so.
    await this.tracing.settled()
  }

  private meshLogged = false

  /** The line operators check for the mode in force (deploy/README.md, "Istio / service mesh"). */
  private logMesh(mesh: MeshSettings, from: string): void {
    this.meshLogged = true
    this.ctx.log.info({ 'mesh-compatibility-mode': mesh.mode, 'enable-mesh-pod-addressability': mesh.passthroughLb, from }, 'mesh compatibility settings')
  }

  private async waitForAutoscaler(ms: number): Promise<void> {
    const deadline = performance.now() + ms
    while (!this.sender.connected && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  }

  /** Endpoint events go to the throttler. */
  private events(): EndpointEvents {
    return this.ctx.throttler
  }

  private updateQueueGauges(): void {
    const m = this.ctx.metrics
    for (const rt of this.ctx.throttler.all()) {
      const labels = revisionLabels(rt.key)
      m.queueDepth.set(labels, rt.queue.length)
      m.bufferedBytes.set(labels, rt.queue.bufferedBytes)
      if (!m.started(rt.key)) {
        const rev = this.opts.source.getRevision(labels.namespace_name, labels.revision_name)
        if (rev !== undefined) m.startRevision(rev)
      }
    }
    m.readAheadBytes.set(this.ctx.uploads.readAheadBytes)
    m.connectionScanSeconds.set(this.ctx.uploads.lastScanMs / 1000)
  }

  /** SIGTERM: fail probes at once, keep serving for the drain period, finish in-flight work, close. */
  shutdown(): Promise<void> {
    this.ctx.health.terminating = true
    this.shuttingDown ??= this.runShutdown()
    return this.shuttingDown
  }

  private async runShutdown(): Promise<void> {
    const { ctx, cfg } = this
    ctx.log.info({ drainMs: cfg.drainMs }, 'received termination signal; failing probes and draining')
    await new Promise((r) => setTimeout(r, cfg.drainMs))
    for (const s of this.servers) s.close()
    for (const l of this.listeners) {
      l.h1.closeIdleConnections()
      for (const s of l.sessions) s.close()
    }
    if (ctx.active > 0) {
      const closeIdle = setInterval(() => { for (const l of this.listeners) l.h1.closeIdleConnections() }, 200)
      await new Promise<void>((resolve) => { ctx.onIdle = resolve })
      clearInterval(closeIdle)
    }
    for (const l of this.listeners) l.h1.closeAllConnections()
    ctx.reporter.stop()
    this.sender.stop()
    ctx.throttler.close()
    ctx.uploads.close()
    await ctx.source.stop()
    await this.configMaps?.stop()
    await this.certificates?.stop()
    await this.tracing.close()
    await ctx.upstreams.close()
    ctx.log.info('shutdown complete')
  }
}

async function listen(server: net.Server, port: number, host: string | undefined): Promise<number> {
  server.listen({ port, host })
  await once(server, 'listening')
  return (server.address() as net.AddressInfo).port
}
