// The local runtime (issue 4): one machine, no Kubernetes. A Service manifest
// becomes revisions; each revision runs as instances (app + queue-proxy
// processes) scaled by the local KPA autoscaler; the activator — the same
// code as in a cluster, in its own process — is always in the path; the
// ingress routes by Host and traffic split. Every wire protocol is real.
// While it runs, manifests are applied again (`sluice apply`, --watch) and
// Services deleted, with Knative's semantics (issue 11).

import { dirname, resolve } from 'node:path'
import { Autoscaler, type ScaleEvent } from '../autoscaler/autoscaler.ts'
import { loadAutoscalerConfig, resolveRevisionScaling } from '../autoscaler/config.ts'
import { readManifestPath } from '../manifest/files.ts'
import { RevisionTracker, type RevisionRecord } from '../manifest/revisions.ts'
import { resolveRoute, RouteTable, pickRevision, RouteError, DEFAULT_DOMAIN } from '../manifest/routes.ts'
import { parseServiceManifests, servingContainer, type ServiceSpec } from '../manifest/service.ts'
import { ActivatorProcess } from './activator-process.ts'
import { createControlServer, type ApplyOutcome, type ManifestFile } from './control-server.ts'
import { DashboardData } from './dashboard-data.ts'
import { DashboardServer } from './dashboard-server.ts'
import { Ingress, type RouteTarget } from './ingress.ts'
import { LogStore } from './log-store.ts'
import { loadTracingConfig } from './tracing-config.ts'
import { assertPortFree } from './ports.ts'
import { RevisionRunner } from './revision-runner.ts'
import type { RevisionSpec } from './spec.ts'
import type { RuntimeStatus } from './status-server.ts'

export interface RuntimeOptions {
  manifestPath: string
  /** Repository root: where the packages' dist folders live. */
  root: string
  nodePath: string
  ingressPort: number
  ingressHost: string
  statusPort: number
  domain?: string
  autoscalerConfigPath?: string
  /** A config-tracing ConfigMap file: every process traces with its settings (tracing-config.ts). */
  tracingConfigPath?: string
  showOutput?: boolean
  log?: (line: string) => void
  /** Queue-proxy drain quiet period (endpoints are removed before instances stop). */
  drainQuiet?: string
  /** Queue-proxies serve Knative's request metrics for Prometheus (see metricsTargets()). */
  requestMetrics?: boolean
  /** Extra environment for the activator process (its SLUICE_* settings). */
  activatorEnv?: Record<string, string>
}

/** Where one process serves Prometheus metrics (see LocalRuntime.metricsTargets). */
export interface MetricsTarget {
  component: 'activator' | 'queue-proxy'
  /** host:port of its /metrics. */
  address: string
  /** The activator's POD_NAME, or the instance id (the queue-proxy's SERVING_POD). */
  pod: string
  /** Queue-proxies: their revision and serving address (host:port; traffic there bypasses the activator). */
  namespace?: string
  revision?: string
  serving?: string
}

interface RevisionEntry {
  record: RevisionRecord
  spec: RevisionSpec
  runner: RevisionRunner
  ready: boolean
  target: number
  metric: string
}

interface ServiceState {
  spec: ServiceSpec
  tracker: RevisionTracker
  revisions: Map<string, RevisionEntry>
  routeError: string
  deleted: boolean
}

/** Requests waiting in the activator are read from its metrics this often (for the dashboard). */
const QUEUE_SCRAPE_MS = 1000

export class LocalRuntime {
  readonly opts: RuntimeOptions
  readonly log: (line: string) => void
  readonly routes = new RouteTable()
  private readonly services = new Map<string, ServiceState>()
  private autoscaler: Autoscaler | null = null
  private activator: ActivatorProcess | null = null
  /** config-tracing's TRACING_CONFIG_* for every queue-proxy (undefined: tracing off). */
  private queueProxyEnv: Record<string, string> | undefined = undefined
  private ingress: Ingress | null = null
  private statusServer: import('node:http').Server | null = null
  readonly logs = new LogStore()
  readonly dashboardData: DashboardData
  readonly dashboard: DashboardServer
  private buffered = new Map<string, number>()
  private queueTimer: NodeJS.Timeout | undefined
  /** Applies run one at a time, in the order they came. */
  private applying: Promise<unknown> = Promise.resolve()
  /** Services that came from the files given at start (what --watch prunes). */
  private fromFiles = new Set<string>()
  ingressUrl = ''
  statusPort = 0
  private stopping = false

  constructor(opts: RuntimeOptions) {
    this.opts = opts
    const print = opts.log ?? ((l) => process.stdout.write(`${l}\n`))
    this.log = (l) => {
      print(l)
      this.attribute('sluice', l)
    }
    this.dashboardData = new DashboardData({
      status: () => this.status(),
      scaleEvents: (key) => this.scaleEvents(key),
      buffered: (key) => this.buffered.get(key) ?? 0,
      metric: (key) => this.findRevision(key)?.metric ?? 'concurrency',
    })
    this.dashboard = new DashboardServer(this.dashboardData)
  }

  /** The dashboard's address (valid after start()). */
  get dashboardUrl(): string {
    return `http://127.0.0.1:${this.statusPort}/`
  }

  get domain(): string {
    return this.opts.domain ?? DEFAULT_DOMAIN
  }

  async start(): Promise<void> {
    const o = this.opts
    const files = await readManifestPath(o.manifestPath)
    // Fail before starting anything when the manifests are bad.
    for (const f of files) parseServiceManifests(f.text, f.path)
    if (o.ingressPort !== 0) await assertPortFree(o.ingressPort, 'ingress (SLUICE_INGRESS_PORT)', o.ingressHost)
    if (o.statusPort !== 0) await assertPortFree(o.statusPort, 'status API (SLUICE_STATUS_PORT)', '127.0.0.1')
    const config = o.autoscalerConfigPath !== undefined ? await loadAutoscalerConfig(o.autoscalerConfigPath) : undefined
    this.autoscaler = new Autoscaler({ onScale: (key, n) => this.onScale(key, n), config, log: this.log })
    await this.autoscaler.start()
    const tracing = o.tracingConfigPath !== undefined ? await loadTracingConfig(o.tracingConfigPath) : undefined
    this.queueProxyEnv = tracing?.queueProxy
    if (tracing !== undefined) this.log(`tracing: ${tracing.settings.exporter} ${tracing.settings.endpoint}, sample rate ${tracing.settings.sampleRate} (${o.tracingConfigPath})`)
    this.activator = new ActivatorProcess({ root: o.root, nodePath: o.nodePath, autoscalerUrl: this.autoscaler.statServerUrl, showOutput: o.showOutput ?? false, onLine: (l) => this.attribute('activator', l), env: { ...tracing?.activator, ...o.activatorEnv } })
    await this.activator.start()
    this.ingress = new Ingress({
      route: (host) => this.route(host),
      activatorPort: this.activator.httpPort,
      onResponse: (target, ms, status) => this.dashboardData.requestDone(`${target.namespace}/${target.revision}`, ms, status),
    })
    const port = await this.ingress.listen(o.ingressPort, o.ingressHost)
    this.ingressUrl = `http://${o.ingressHost === '0.0.0.0' ? '127.0.0.1' : o.ingressHost}:${port}`
    this.statusServer = createControlServer(this)
    this.statusPort = await new Promise<number>((res) => this.statusServer!.listen(o.statusPort, '127.0.0.1', () => res((this.statusServer!.address() as import('node:net').AddressInfo).port)))
    this.dashboard.start()
    this.queueTimer = setInterval(() => {
      void this.activator?.queueDepths().then((m) => { this.buffered = m })
    }, QUEUE_SCRAPE_MS)
    this.queueTimer.unref()
    for (const r of await this.applyFiles(files)) this.fromFiles.add(`${r.namespace}/${r.name}`)
  }

  /** --watch: applies the files it was started with again; Services no longer in them are deleted. */
  async syncFiles(files: readonly ManifestFile[]): Promise<ApplyOutcome[]> {
    const out = await this.applyFiles(files)
    const now = new Set(out.map((o) => `${o.namespace}/${o.name}`))
    for (const key of this.fromFiles) {
      if (now.has(key)) continue
      const slash = key.indexOf('/')
      await this.deleteService(key.slice(0, slash), key.slice(slash + 1))
    }
    this.fromFiles = now
    return out
  }

  /**
   * Applies manifests as `kubectl apply` does, all or nothing: every document
   * is parsed and checked before any is applied, so a bad one (the error
   * names its field) leaves the running Services as they were.
   */
  applyFiles(files: readonly ManifestFile[]): Promise<ApplyOutcome[]> {
    const run = this.applying.then(() => this.applyNow(files))
    this.applying = run.catch(() => {})
    return run
  }

  private async applyNow(files: readonly ManifestFile[]): Promise<ApplyOutcome[]> {
    const docs: { spec: ServiceSpec; dir: string }[] = []
    for (const f of files) for (const spec of parseServiceManifests(f.text, f.path)) docs.push({ spec, dir: dirname(f.path) })
    for (const { spec } of docs) {
      this.services.get(`${spec.namespace}/${spec.name}`)?.tracker.check(spec)
      // Throws AnnotationError naming the annotation.
      resolveRevisionScaling(this.autoscaler!.config, { containerConcurrency: spec.template.containerConcurrency, annotations: spec.template.annotations })
    }
    const out: ApplyOutcome[] = []
    for (const { spec, dir } of docs) out.push(await this.apply(spec, dir))
    return out
  }

  /** Applies one version of a Service: a new revision when its template changed; the route follows. */
  async apply(spec: ServiceSpec, manifestDir = dirname(resolve(this.opts.manifestPath))): Promise<ApplyOutcome> {
    for (const w of spec.warnings) this.log(`warning: ${w}`)
    const key = `${spec.namespace}/${spec.name}`
    let svc = this.services.get(key)
    let action: ApplyOutcome['action'] = 'unchanged'
    if (svc === undefined) {
      svc = { spec, tracker: new RevisionTracker(spec.name, spec.namespace), revisions: new Map(), routeError: '', deleted: false }
      this.services.set(key, svc)
      action = 'created'
    } else if (JSON.stringify(svc.spec.traffic) !== JSON.stringify(spec.traffic)) action = 'configured'
    svc.spec = spec
    const { revision, created } = svc.tracker.apply(spec)
    if (created && action === 'unchanged') action = 'configured'
    if (created) {
      const rs = this.revisionSpec(spec, revision, manifestDir)
      const state = svc
      const runner = new RevisionRunner(rs, {
        // While stopping (or once deleted), the activator has no use for pushes: nothing to report.
        endpointsChanged: (rev, eps) => {
          if (state.deleted) return
          void this.activator!.setEndpoints(rev, eps).catch((err: Error) => { if (!this.stopping && !state.deleted) this.log(`activator: ${err.message}`) })
        },
        instancesChanged: (rev, instances) => {
          this.autoscaler!.setInstances(`${rev.namespace}/${rev.name}`, instances.map((i) => ({ id: i.id, metricsPort: i.metricsPort, ready: i.state === 'ready' })))
          const entry = svc!.revisions.get(rev.name)
          if (entry !== undefined && !entry.ready && instances.some((i) => i.state === 'ready')) {
            entry.ready = true
            this.updateRoute(svc!)
          }
        },
        log: this.log,
        output: (inst, from, line) => this.logs.add(key, inst.id, { t: Date.now(), revision: inst.rev.name, source: from === 'app' ? inst.id : `${inst.id} queue-proxy`, text: line }),
        coldStart: (rev, inst, ms) => this.dashboardData.coldStart(`${rev.namespace}/${rev.name}`, inst.id, ms),
      }, { root: this.opts.root, nodePath: this.opts.nodePath, showOutput: this.opts.showOutput ?? false, drainQuiet: this.opts.drainQuiet ?? '1s', requestMetrics: this.opts.requestMetrics, queueProxyEnv: this.queueProxyEnv }, 10_000)
      const entry: RevisionEntry = { record: revision, spec: rs, runner, ready: false, target: 0, metric: 'concurrency' }
      svc.revisions.set(revision.name, entry)
      await this.activator!.upsertRevision(rs)
      this.log(`revision ${spec.namespace}/${revision.name} created`)
      const scaling = this.autoscaler!.register({ key: `${spec.namespace}/${revision.name}`, containerConcurrency: rs.containerConcurrency, annotations: revision.template.annotations })
      entry.target = scaling.target
      entry.metric = scaling.metric
    }
    this.updateRoute(svc)
    if (svc.routeError !== '' && action === 'configured') this.log(`service ${key}: route not changed yet: ${svc.routeError}`)
    return { namespace: spec.namespace, name: spec.name, action, revision: created ? revision.name : '' }
  }

  /** `sluice delete ksvc`: the Service's hosts stop answering, then its revisions' processes stop. */
  async deleteService(namespace: string, name: string): Promise<boolean> {
    const run = this.applying.then(async () => {
      const key = `${namespace}/${name}`
      const svc = this.services.get(key)
      if (svc === undefined) return false
      svc.deleted = true
      this.routes.delete(namespace, name)
      this.services.delete(key)
      this.log(`service ${key} deleted: stopping its revisions`)
      await Promise.all([...svc.revisions.values()].map(async (r) => {
        const revKey = `${namespace}/${r.record.name}`
        this.autoscaler!.unregister(revKey)
        await r.runner.stopAll()
        this.dashboardData.forget(revKey)
        await this.activator!.deleteRevision(namespace, r.record.name).catch(() => {})
      }))
      this.logs.dropService(key)
      return true
    })
    this.applying = run.catch(() => {})
    return run
  }

  /** Files a runtime, activator or autoscaler line under the revision it names, for `sluice logs`. */
  private attribute(source: string, line: string): void {
    for (const [key, svc] of this.services) {
      for (const name of svc.revisions.keys()) {
        if (line.includes(name)) {
          this.logs.add(key, `${name}/${source}`, { t: Date.now(), revision: name, source, text: line })
          return
        }
      }
    }
  }

  private findRevision(key: string): RevisionEntry | undefined {
    const slash = key.indexOf('/')
    const ns = key.slice(0, slash)
    for (const svc of this.services.values()) {
      if (svc.spec.namespace === ns) {
        const r = svc.revisions.get(key.slice(slash + 1))
        if (r !== undefined) return r
      }
    }
    return undefined
  }

  private revisionSpec(spec: ServiceSpec, rec: RevisionRecord, manifestDir: string): RevisionSpec {
    const t = rec.template
    const c = servingContainer(t)
    const env: Record<string, string> = {}
    for (const e of c.env) env[e.name] = e.value
    return {
      namespace: spec.namespace,
      name: rec.name,
      service: spec.name,
      configuration: spec.name,
      containerConcurrency: t.containerConcurrency,
      timeoutSeconds: t.timeoutSeconds,
      responseStartTimeoutSeconds: t.responseStartTimeoutSeconds ?? 0,
      idleTimeoutSeconds: t.idleTimeoutSeconds ?? 0,
      protocol: c.portName === 'h2c' ? 'h2c' : 'http1',
      annotations: t.annotations,
      app: {
        command: c.command[0]!,
        args: [...c.command.slice(1), ...c.args],
        env,
        // Commands run from the working directory, else from where the manifest's project is.
        cwd: c.workingDir !== undefined ? resolve(manifestDir, c.workingDir) : this.opts.root,
        readinessProbe: c.readinessProbe !== undefined ? JSON.parse(c.readinessProbe) as Record<string, unknown> : null,
      },
    }
  }

  private updateRoute(svc: ServiceState): void {
    const states = svc.tracker.list().map((r) => ({ name: r.name, ready: svc.revisions.get(r.name)?.ready ?? false }))
    try {
      const route = resolveRoute(svc.spec, states, this.domain)
      this.routes.set(route)
      svc.routeError = ''
    } catch (err) {
      svc.routeError = err instanceof RouteError ? err.message : (err as Error).message
    }
    // Reachability: revisions the route or the spec's traffic names, and the latest (pending its route).
    const route = this.routes.get(svc.spec.namespace, svc.spec.name)
    const latest = svc.tracker.latestCreated?.name
    for (const name of svc.revisions.keys()) {
      const routed = (route?.traffic.some((tr) => tr.revisionName === name) ?? false) || svc.spec.traffic.some((tr) => tr.revisionName === name)
      this.autoscaler!.setReachable(`${svc.spec.namespace}/${name}`, routed || name === latest)
    }
  }

  private route(host: string): RouteTarget | null {
    const m = this.routes.routeForHost(host)
    if (m === undefined) return null
    const name = m.revision ?? pickRevision(m.route)
    const svc = this.services.get(`${m.route.namespace}/${m.route.name}`)
    const rev = svc?.revisions.get(name)
    if (rev === undefined) return null
    return { namespace: m.route.namespace, revision: name, timeoutSeconds: rev.spec.timeoutSeconds }
  }

  private onScale(key: string, n: number): void {
    const [ns, name] = key.split('/') as [string, string]
    for (const svc of this.services.values()) {
      if (svc.spec.namespace !== ns) continue
      const rev = svc.revisions.get(name)
      if (rev !== undefined) rev.runner.scaleTo(n)
    }
  }

  status(): RuntimeStatus {
    const services: RuntimeStatus['services'] = []
    for (const svc of this.services.values()) {
      const route = this.routes.get(svc.spec.namespace, svc.spec.name)
      const revs = svc.tracker.list()
      const latest = revs[revs.length - 1]
      const latestReady = [...revs].reverse().find((r) => svc.revisions.get(r.name)?.ready)
      services.push({
        name: svc.spec.name,
        namespace: svc.spec.namespace,
        url: route?.url ?? '',
        latestCreated: latest?.name ?? '',
        latestReady: latestReady?.name ?? '',
        ready: route !== undefined && svc.routeError === '',
        reason: svc.routeError === '' ? '' : 'RevisionMissing',
        revisions: revs.map((r) => {
          const e = svc.revisions.get(r.name)!
          const d = this.autoscaler?.lastDecision(`${svc.spec.namespace}/${r.name}`)
          return {
            name: r.name, generation: r.generation, ready: e.ready, actual: e.runner.readyCount, desired: e.runner.desired,
            instances: e.runner.live.map((i) => ({ id: i.id, state: i.state, appStartMs: i.appStartMs, restarts: i.restarts })),
            autoscaler: d === undefined ? null : { target: e.target, panicking: d.panicking, observedStable: d.observedStable, observedPanic: d.observedPanic, readyPods: d.readyPods, recommended: d.recommended },
          }
        }),
        traffic: route?.traffic.map((t) => ({ revision: t.revisionName, percent: t.percent, tag: t.tag ?? '', url: t.url ?? '' })) ?? [],
      })
    }
    return { ingress: this.ingressUrl, domain: this.domain, services }
  }

  /**
   * Where Prometheus scrapes the running processes now: the activator's
   * metrics port and, with requestMetrics, each queue-proxy's (draining ones too). Instances
   * come and go with scaling: read it again (a Prometheus file_sd writer, say).
   */
  metricsTargets(): MetricsTarget[] {
    const out: MetricsTarget[] = []
    if (this.activator !== null && this.activator.metricsPort !== 0) out.push({ component: 'activator', address: `127.0.0.1:${this.activator.metricsPort}`, pod: 'activator-local' })
    for (const svc of this.services.values()) {
      for (const r of svc.revisions.values()) {
        for (const i of r.runner.running) {
          if (i.userMetricsPort === 0) continue
          out.push({ component: 'queue-proxy', address: `127.0.0.1:${i.userMetricsPort}`, pod: i.id, namespace: i.rev.namespace, revision: i.rev.name, serving: i.dest })
        }
      }
    }
    return out
  }

  /** The autoscaler's recent scale events for a revision ("namespace/name"), with exact inputs. */
  scaleEvents(key: string): readonly ScaleEvent[] {
    return this.autoscaler?.scaleEvents(key) ?? []
  }

  async stop(): Promise<void> {
    this.stopping = true
    this.dashboard.stop()
    clearInterval(this.queueTimer)
    await this.ingress?.close()
    await Promise.all([...this.services.values()].flatMap((s) => [...s.revisions.values()].map((r) => r.runner.stopAll())))
    await this.activator?.stop()
    await this.autoscaler?.stop()
    this.statusServer?.closeAllConnections()
    this.statusServer?.close()
  }
}
