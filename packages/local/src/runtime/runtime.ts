// The local runtime (issue 4): one machine, no Kubernetes. A Service manifest
// becomes revisions; each revision runs as instances (app + queue-proxy
// processes) scaled by the local KPA autoscaler; the activator — the same
// code as in a cluster, in its own process — is always in the path; the
// ingress routes by Host and traffic split. Every wire protocol is real.

import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { Autoscaler, type ScaleEvent } from '../autoscaler/autoscaler.ts'
import { loadAutoscalerConfig } from '../autoscaler/config.ts'
import { RevisionTracker, type RevisionRecord } from '../manifest/revisions.ts'
import { resolveRoute, RouteTable, pickRevision, RouteError, DEFAULT_DOMAIN } from '../manifest/routes.ts'
import { parseServiceManifests, servingContainer, type ServiceSpec } from '../manifest/service.ts'
import { ActivatorProcess } from './activator-process.ts'
import { Ingress, type RouteTarget } from './ingress.ts'
import { assertPortFree } from './ports.ts'
import { RevisionRunner } from './revision-runner.ts'
import type { RevisionSpec } from './spec.ts'
import { createStatusServer, type RuntimeStatus } from './status-server.ts'

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
  showOutput?: boolean
  log?: (line: string) => void
  /** Queue-proxy drain quiet period (endpoints are removed before instances stop). */
  drainQuiet?: string
}

interface ServiceState {
  spec: ServiceSpec
  tracker: RevisionTracker
  revisions: Map<string, { record: RevisionRecord; spec: RevisionSpec; runner: RevisionRunner; ready: boolean; target: number }>
  routeError: string
}

export class LocalRuntime {
  readonly opts: RuntimeOptions
  readonly log: (line: string) => void
  readonly routes = new RouteTable()
  private readonly services = new Map<string, ServiceState>()
  private autoscaler: Autoscaler | null = null
  private activator: ActivatorProcess | null = null
  private ingress: Ingress | null = null
  private statusServer: import('node:http').Server | null = null
  ingressUrl = ''
  statusPort = 0
  private stopping = false

  constructor(opts: RuntimeOptions) {
    this.opts = opts
    this.log = opts.log ?? ((l) => process.stdout.write(`${l}\n`))
  }

  get domain(): string {
    return this.opts.domain ?? DEFAULT_DOMAIN
  }

  async start(): Promise<void> {
    const o = this.opts
    const text = await readFile(o.manifestPath, 'utf8')
    const specs = parseServiceManifests(text, o.manifestPath)
    if (o.ingressPort !== 0) await assertPortFree(o.ingressPort, 'ingress (SLUICE_INGRESS_PORT)', o.ingressHost)
    if (o.statusPort !== 0) await assertPortFree(o.statusPort, 'status API (SLUICE_STATUS_PORT)', '127.0.0.1')
    const config = o.autoscalerConfigPath !== undefined ? await loadAutoscalerConfig(o.autoscalerConfigPath) : undefined
    this.autoscaler = new Autoscaler({ onScale: (key, n) => this.onScale(key, n), config, log: this.log })
    await this.autoscaler.start()
    this.activator = new ActivatorProcess({ root: o.root, nodePath: o.nodePath, autoscalerUrl: this.autoscaler.statServerUrl, showOutput: o.showOutput ?? false })
    await this.activator.start()
    this.ingress = new Ingress({ route: (host) => this.route(host), activatorPort: this.activator.httpPort })
    const port = await this.ingress.listen(o.ingressPort, o.ingressHost)
    this.ingressUrl = `http://${o.ingressHost === '0.0.0.0' ? '127.0.0.1' : o.ingressHost}:${port}`
    this.statusServer = createStatusServer(() => this.status())
    this.statusPort = await new Promise<number>((res) => this.statusServer!.listen(o.statusPort, '127.0.0.1', () => res((this.statusServer!.address() as import('node:net').AddressInfo).port)))
    for (const spec of specs) await this.apply(spec)
  }

  /** Applies one version of a Service: a new revision when its template changed; the route follows. */
  async apply(spec: ServiceSpec): Promise<void> {
    for (const w of spec.warnings) this.log(`warning: ${w}`)
    const key = `${spec.namespace}/${spec.name}`
    let svc = this.services.get(key)
    if (svc === undefined) {
      svc = { spec, tracker: new RevisionTracker(spec.name, spec.namespace), revisions: new Map(), routeError: '' }
      this.services.set(key, svc)
    }
    svc.spec = spec
    const { revision, created } = svc.tracker.apply(spec)
    if (created) {
      const rs = this.revisionSpec(spec, revision)
      const runner = new RevisionRunner(rs, {
        // While stopping, the activator goes away with pushes in flight: nothing to report.
        endpointsChanged: (rev, eps) => { void this.activator!.setEndpoints(rev, eps).catch((err: Error) => { if (!this.stopping) this.log(`activator: ${err.message}`) }) },
        instancesChanged: (rev, instances) => {
          this.autoscaler!.setInstances(`${rev.namespace}/${rev.name}`, instances.map((i) => ({ id: i.id, metricsPort: i.metricsPort, ready: i.state === 'ready' })))
          const entry = svc!.revisions.get(rev.name)
          if (entry !== undefined && !entry.ready && instances.some((i) => i.state === 'ready')) {
            entry.ready = true
            this.updateRoute(svc!)
          }
        },
        log: this.log,
      }, { root: this.opts.root, nodePath: this.opts.nodePath, showOutput: this.opts.showOutput ?? false, drainQuiet: this.opts.drainQuiet ?? '1s' }, 10_000)
      const entry = { record: revision, spec: rs, runner, ready: false, target: 0 }
      svc.revisions.set(revision.name, entry)
      await this.activator!.upsertRevision(rs)
      this.log(`revision ${spec.namespace}/${revision.name} created`)
      entry.target = this.autoscaler!.register({ key: `${spec.namespace}/${revision.name}`, containerConcurrency: rs.containerConcurrency, annotations: revision.template.annotations }).target
    }
    this.updateRoute(svc)
  }

  private revisionSpec(spec: ServiceSpec, rec: RevisionRecord): RevisionSpec {
    const t = rec.template
    const c = servingContainer(t)
    const manifestDir = dirname(resolve(this.opts.manifestPath))
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

  /** The autoscaler's recent scale events for a revision ("namespace/name"), with exact inputs. */
  scaleEvents(key: string): readonly ScaleEvent[] {
    return this.autoscaler?.scaleEvents(key) ?? []
  }

  async stop(): Promise<void> {
    this.stopping = true
    await this.ingress?.close()
    await Promise.all([...this.services.values()].flatMap((s) => [...s.revisions.values()].map((r) => r.runner.stopAll())))
    await this.activator?.stop()
    await this.autoscaler?.stop()
    this.statusServer?.closeAllConnections()
    this.statusServer?.close()
  }
}
