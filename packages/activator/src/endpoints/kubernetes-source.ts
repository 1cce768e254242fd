// EndpointSource over the Kubernetes API (spec §2.2 step 3, §2.7, §2.8):
// Revisions, the revisions' private and public Endpoints (or, optionally,
// EndpointSlices) and private Services, each kept by a list/watch loop.
//
// The loop is our own rather than client-node's ListWatch: that one gives up
// on the first error, reports list failures while start() still resolves, and
// can leave a watch running when stopped mid-reconnect. Ours relists on
// 410 Gone, resumes dropped watches from the last resourceVersion, backs off
// exponentially on errors, and stop() ends every request.
//
// This module, kube-list.ts and kube-config.ts are the only ones that load
// @kubernetes/client-node; the activator imports them (kubernetes.ts) dynamically.

import { setTimeout as sleep } from 'node:timers/promises'
import { Watch, type KubeConfig } from '@kubernetes/client-node'
import type { Logger } from '@sluice/core/logging'
import { revisionKey, type RevisionInfo } from '../revision.ts'
import { listObjects, StatusError } from './kube-list.ts'
import type { EndpointEvents, EndpointSource, RevisionEndpoints } from './source.ts'

const SERVICE_TYPE_LABEL = 'networking.internal.knative.dev/serviceType'
const REVISION_LABEL = 'serving.knative.dev/revision'
const REVISION_UID_LABEL = 'serving.knative.dev/revisionUID'
const SERVICE_LABEL = 'serving.knative.dev/service'
const CONFIGURATION_LABEL = 'serving.knative.dev/configuration'
const SLICE_SERVICE_NAME_LABEL = 'kubernetes.io/service-name'

const ENDPOINTS_SELECTOR = `${SERVICE_TYPE_LABEL} in (Private,Public)`
const SLICES_SELECTOR = `${ENDPOINTS_SELECTOR},${SLICE_SERVICE_NAME_LABEL}`
const SERVICES_SELECTOR = `${SERVICE_TYPE_LABEL}=Private`

const DEFAULT_TIMEOUT_SECONDS = 300
export const DEFAULT_BACKOFF = { initialMs: 1000, maxMs: 30_000 }
export const DEFAULT_LIST_TIMEOUT_MS = 60_000
/** A watch that closes sooner than this without news is retried with back-off, not at once. */
const MIN_QUIET_WATCH_MS = 1000

// ---- the fields we read, as the API server sends them -----------------------

interface Meta {
  name?: string
  namespace?: string
  labels?: Record<string, string>
  resourceVersion?: string
}
export interface KubeObject {
  metadata?: Meta
}
interface NamedPort {
  name?: string
  port?: number
}
interface Container {
  ports?: NamedPort[]
  readinessProbe?: { exec?: unknown }
}
interface RevisionObject extends KubeObject {
  spec?: {
    containerConcurrency?: number
    timeoutSeconds?: number
    responseStartTimeoutSeconds?: number
    idleTimeoutSeconds?: number
    containers?: Container[]
  }
}
interface EndpointsObject extends KubeObject {
  subsets?: { addresses?: { ip: string }[]; notReadyAddresses?: { ip: string }[]; ports?: NamedPort[] }[]
}
interface ServiceObject extends KubeObject {
  spec?: { clusterIP?: string; ports?: NamedPort[] }
}
interface EndpointSliceObject extends KubeObject {
  addressType?: string
  endpoints?: { addresses?: string[]; conditions?: { ready?: boolean; terminating?: boolean } }[]
  ports?: NamedPort[]
}

// ---- one resource's list/watch loop -------------------------------------------

export interface Backoff {
  initialMs: number
  maxMs: number
}

export interface ResourceSpec<T extends KubeObject> {
  name: string
  /** Collection path for lists and watches, e.g. /api/v1/endpoints. */
  path: string
  labelSelector?: string
  upsert(obj: T, old: T | undefined): void
  remove(obj: T): void
}

function isGone(err: unknown): boolean {
  const e = err as { code?: unknown; statusCode?: unknown }
  return e?.code === 410 || e?.statusCode === 410
}

function isTimeout(err: unknown): boolean {
  return (err as { name?: unknown })?.name === 'TimeoutError'
}

function objectKey(obj: KubeObject): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`
}

export class Reflector<T extends KubeObject> {
  private readonly spec: ResourceSpec<T>
  private readonly kubeConfig: KubeConfig
  private readonly watcher: Watch
  private readonly log: Logger
  private readonly backoff: Backoff
  private readonly listTimeoutMs: number
  private readonly objects = new Map<string, T>()
  private readonly stopSignal = new AbortController()
  private resourceVersion = ''
  private stopped = false
  private delayMs = 0
  private goneStreak = 0
  private eventCount = 0
  private watchAbort: AbortController | undefined
  private loopDone: Promise<void> | undefined
  private markSynced: () => void = () => {}
  private readonly synced = new Promise<void>((resolve) => (this.markSynced = resolve))

  constructor(spec: ResourceSpec<T>, kubeConfig: KubeConfig, watcher: Watch, log: Logger, backoff: Backoff, listTimeoutMs: number) {
    this.spec = spec
    this.kubeConfig = kubeConfig
    this.watcher = watcher
    this.log = log
    this.backoff = backoff
    this.listTimeoutMs = listTimeoutMs
  }

  /** Resolves once the first list was delivered (or when stopped first). */
  start(): Promise<void> {
    this.loopDone ??= this.loop()
    return this.synced
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.stopSignal.abort()
    this.watchAbort?.abort()
    this.markSynced()
    await this.loopDone
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        if (this.resourceVersion === '') {
          await this.relist()
          if (this.stopped) break
          this.markSynced()
        }
        const started = Date.now()
        const seen = this.eventCount
        await this.watchOnce()
        // A normal end (server timeout, dropped connection, our inactivity timeout):
        // resume from the last resourceVersion, at once unless it ended suspiciously fast.
        if (this.eventCount === seen && Date.now() - started < MIN_QUIET_WATCH_MS) await this.pause()
      } catch (err) {
        if (this.stopped) break
        if (isGone(err)) {
          this.log.info({ resource: this.spec.name, resourceVersion: this.resourceVersion }, 'watch expired (410 Gone), relisting')
          this.resourceVersion = ''
          // Two in a row without progress means something is off: do not spin.
          if (this.goneStreak++ > 0) await this.pause()
          continue
        }
        this.log.warn({ resource: this.spec.name, err: String(err) }, 'list/watch failed, retrying')
        await this.pause()
      }
    }
  }

  private nextDelay(): number {
    this.delayMs = this.delayMs === 0 ? this.backoff.initialMs : Math.min(this.delayMs * 2, this.backoff.maxMs)
    return this.delayMs
  }

  private async pause(): Promise<void> {
    try {
      await sleep(this.nextDelay(), undefined, { signal: this.stopSignal.signal })
    } catch {
      // stopped
    }
  }

  private async relist(): Promise<void> {
    const signal = AbortSignal.any([this.stopSignal.signal, AbortSignal.timeout(this.listTimeoutMs)])
    const list = await listObjects<T>(this.kubeConfig, this.spec.path, this.spec.labelSelector, signal)
    if (this.stopped) return
    const seen = new Set<string>()
    for (const obj of list.items ?? []) {
      const key = objectKey(obj)
      seen.add(key)
      const old = this.objects.get(key)
      this.objects.set(key, obj)
      if (old === undefined || old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.deliverUpsert(obj, old)
    }
    for (const [key, old] of this.objects) {
      if (seen.has(key)) continue
      this.objects.delete(key)
      this.deliverRemove(old)
    }
    this.resourceVersion = list.metadata?.resourceVersion ?? ''
    this.delayMs = 0
  }

  /** One watch request; resolves when it ends normally, rejects on errors (StatusError for ERROR events). */
  private watchOnce(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let finished = false
      let failure: unknown
      let controller: AbortController | undefined
      const params: Record<string, string | boolean> = { allowWatchBookmarks: true, resourceVersion: this.resourceVersion }
      if (this.spec.labelSelector !== undefined) params.labelSelector = this.spec.labelSelector
      const onEvent = (type: string, obj: unknown) => {
        if (failure !== undefined || this.stopped) return
        try {
          this.handleEvent(type, obj)
        } catch (err) {
          failure = err
          controller?.abort()
        }
      }
      const done = (err: unknown) => {
        finished = true
        this.watchAbort = undefined
        const e = failure ?? err
        if (e && !isTimeout(e)) reject(e)
        else resolve()
      }
      this.watcher.watch(this.spec.path, params, onEvent, done).then(
        (ctl) => {
          controller = ctl
          if (finished) return
          if (this.stopped || failure !== undefined) ctl.abort()
          else this.watchAbort = ctl
        },
        (err: unknown) => {
          if (!finished) done(err)
        },
      )
    })
  }

  private handleEvent(type: string, raw: unknown): void {
    const obj = raw as T
    switch (type) {
      case 'ADDED':
      case 'MODIFIED': {
        const key = objectKey(obj)
        const old = this.objects.get(key)
        this.advance(obj)
        if (old !== undefined && old.metadata?.resourceVersion === obj.metadata?.resourceVersion) return
        this.objects.set(key, obj)
        this.deliverUpsert(obj, old)
        return
      }
      case 'DELETED': {
        const key = objectKey(obj)
        const old = this.objects.get(key)
        this.advance(obj)
        if (old === undefined) return
        this.objects.delete(key)
        this.deliverRemove(old)
        return
      }
      case 'BOOKMARK':
        this.advance(obj)
        return
      case 'ERROR': {
        const status = raw as { code?: number; message?: string }
        throw new StatusError(status?.code ?? 500, status?.message ?? 'watch error')
      }
    }
  }

  private advance(obj: KubeObject): void {
    const rv = obj.metadata?.resourceVersion
    if (rv) this.resourceVersion = rv
    this.eventCount++
    this.goneStreak = 0
    this.delayMs = 0
  }

  // A consumer's exception must not break the watch loop.
  private deliverUpsert(obj: T, old: T | undefined): void {
    try {
      this.spec.upsert(obj, old)
    } catch (err) {
      this.log.error({ resource: this.spec.name, object: objectKey(obj), err: String(err) }, 'event handler failed')
    }
  }

  private deliverRemove(obj: T): void {
    try {
      this.spec.remove(obj)
    } catch (err) {
      this.log.error({ resource: this.spec.name, object: objectKey(obj), err: String(err) }, 'event handler failed')
    }
  }
}

// ---- translation to the activator's model ------------------------------------

function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`
}

function num(v: unknown, fallback: number): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : fallback
}

/** The serving container, as Knative's RevisionSpec.GetContainer picks it. */
function servingContainer(containers: Container[] | undefined): Container | undefined {
  if (!containers || containers.length === 0) return undefined
  if (containers.length === 1) return containers[0]
  return containers.find((c) => (c.ports?.length ?? 0) > 0)
}

export function toRevisionInfo(obj: RevisionObject): RevisionInfo | undefined {
  const meta = obj.metadata
  if (!meta?.name || !meta.namespace) return undefined
  const spec = obj.spec ?? {}
  const container = servingContainer(spec.containers)
  const labels = meta.labels ?? {}
  return {
    namespace: meta.namespace,
    name: meta.name,
    containerConcurrency: num(spec.containerConcurrency, 0),
    protocol: container?.ports?.[0]?.name === 'h2c' ? 'h2c' : 'http1',
    timeoutSeconds: num(spec.timeoutSeconds, DEFAULT_TIMEOUT_SECONDS),
    responseStartTimeoutSeconds: num(spec.responseStartTimeoutSeconds, 0),
    idleTimeoutSeconds: num(spec.idleTimeoutSeconds, 0),
    serviceName: labels[SERVICE_LABEL] ?? '',
    configurationName: labels[CONFIGURATION_LABEL] ?? '',
    execReadinessProbe: container?.readinessProbe?.exec != null,
  }
}

function sameRevision(a: RevisionInfo, b: RevisionInfo): boolean {
  return (
    a.containerConcurrency === b.containerConcurrency &&
    a.protocol === b.protocol &&
    a.timeoutSeconds === b.timeoutSeconds &&
    a.responseStartTimeoutSeconds === b.responseStartTimeoutSeconds &&
    a.idleTimeoutSeconds === b.idleTimeoutSeconds &&
    a.serviceName === b.serviceName &&
    a.configurationName === b.configurationName &&
    a.execReadinessProbe === b.execReadinessProbe
  )
}

type ServiceType = 'Private' | 'Public'

interface Target {
  type: ServiceType
  namespace: string
  revision: string
}

/** Which revision's private or public endpoints an Endpoints object is (spec §2.7, §2.8), if any. */
function endpointsTarget(obj: KubeObject): Target | undefined {
  const meta = obj.metadata
  const labels = meta?.labels
  const type = labels?.[SERVICE_TYPE_LABEL]
  if (type !== 'Private' && type !== 'Public') return undefined
  const revision = labels?.[REVISION_LABEL]
  if (!revision || !labels?.[REVISION_UID_LABEL] || !meta?.namespace) return undefined
  return { type, namespace: meta.namespace, revision }
}

/** EndpointSlices carry their service's labels; the revision falls back to the service name. */
function sliceTarget(obj: EndpointSliceObject): (Target & { service: string }) | undefined {
  const meta = obj.metadata
  const labels = meta?.labels
  const type = labels?.[SERVICE_TYPE_LABEL]
  const service = labels?.[SLICE_SERVICE_NAME_LABEL]
  if ((type !== 'Private' && type !== 'Public') || !service || !meta?.namespace) return undefined
  const revision = labels?.[REVISION_LABEL] || (type === 'Private' ? service.replace(/-private$/, '') : service)
  return { type, namespace: meta.namespace, revision, service }
}

function sameTarget(a: Target | undefined, b: Target | undefined): boolean {
  return a?.type === b?.type && a?.namespace === b?.namespace && a?.revision === b?.revision
}

// ---- the source ------------------------------------------------------------------

export interface KubernetesSourceOptions {
  kubeConfig: KubeConfig
  log: Logger
  /** Read discovery.k8s.io/v1 EndpointSlices instead of core/v1 Endpoints (Knative reads Endpoints). */
  useEndpointSlices?: boolean
  /** Retry delays after failures: doubles from initialMs up to maxMs. */
  backoff?: Backoff
  /** Abandon a list request after this long and retry. */
  listTimeoutMs?: number
}

export class KubernetesSource implements EndpointSource {
  private readonly kubeConfig: KubeConfig
  private readonly log: Logger
  private readonly useSlices: boolean
  private readonly backoff: Backoff
  private readonly listTimeoutMs: number
  private readonly revisions = new Map<string, RevisionInfo>()
  /** Slices of each service, by "namespace/service" then slice name. */
  private readonly slices = new Map<string, Map<string, EndpointSliceObject>>()
  private readonly reflectors: { stop(): Promise<void> }[] = []
  private events: EndpointEvents | undefined
  private stopped = false

  constructor(opts: KubernetesSourceOptions) {
    this.kubeConfig = opts.kubeConfig
    this.log = opts.log
    this.useSlices = opts.useEndpointSlices ?? false
    this.backoff = opts.backoff ?? DEFAULT_BACKOFF
    this.listTimeoutMs = opts.listTimeoutMs ?? DEFAULT_LIST_TIMEOUT_MS
  }

  async start(events: EndpointEvents): Promise<void> {
    if (this.events) throw new Error('KubernetesSource already started')
    this.events = events
    const kc = this.kubeConfig
    const watcher = new Watch(kc)
    const make = <T extends KubeObject>(spec: ResourceSpec<T>) => {
      const r = new Reflector<T>(spec, kc, watcher, this.log, this.backoff, this.listTimeoutMs)
      this.reflectors.push(r)
      return r
    }

    // Revisions first: the protocol picks the port of the endpoints that follow.
    await make<RevisionObject>({
      name: 'revisions',
      path: '/apis/serving.knative.dev/v1/revisions',
      upsert: (obj) => this.revisionUpserted(obj),
      remove: (obj) => this.revisionRemoved(obj),
    }).start()
    if (this.stopped) return

    const rest: { start(): Promise<void> }[] = []
    if (this.useSlices) {
      rest.push(
        make<EndpointSliceObject>({
          name: 'endpointslices',
          path: '/apis/discovery.k8s.io/v1/endpointslices',
          labelSelector: SLICES_SELECTOR,
          upsert: (obj, old) => this.sliceUpserted(obj, old),
          remove: (obj) => this.sliceRemoved(obj),
        }),
      )
    } else {
      rest.push(
        make<EndpointsObject>({
          name: 'endpoints',
          path: '/api/v1/endpoints',
          labelSelector: ENDPOINTS_SELECTOR,
          upsert: (obj, old) => this.endpointsUpserted(obj, old),
          remove: (obj) => this.endpointsRemoved(obj),
        }),
      )
    }
    rest.push(
      make<ServiceObject>({
        name: 'services',
        path: '/api/v1/services',
        labelSelector: SERVICES_SELECTOR,
        upsert: (obj) => this.serviceUpserted(obj),
        remove: (obj) => this.serviceRemoved(obj),
      }),
    )
    await Promise.all(rest.map((r) => r.start()))
  }

  async stop(): Promise<void> {
    this.stopped = true
    await Promise.all(this.reflectors.map((r) => r.stop()))
  }

  getRevision(namespace: string, name: string): RevisionInfo | undefined {
    return this.revisions.get(revisionKey(namespace, name))
  }

  // -- revisions

  private revisionUpserted(obj: RevisionObject): void {
    const info = toRevisionInfo(obj)
    if (!info) return
    const key = revisionKey(info.namespace, info.name)
    const prev = this.revisions.get(key)
    this.revisions.set(key, info)
    // Status updates are frequent and change nothing we use.
    if (prev && sameRevision(prev, info)) return
    this.events?.revisionUpserted(info)
  }

  private revisionRemoved(obj: RevisionObject): void {
    const ns = obj.metadata?.namespace ?? ''
    const name = obj.metadata?.name ?? ''
    if (this.revisions.delete(revisionKey(ns, name))) this.events?.revisionDeleted(ns, name)
  }

  /** http for HTTP/1 revisions, http2 for h2c ones; unknown revision: http if offered, else http2. */
  private portName(namespace: string, revision: string, offered: (name: string) => boolean): string {
    const rev = this.revisions.get(revisionKey(namespace, revision))
    if (rev) return rev.protocol === 'h2c' ? 'http2' : 'http'
    return offered('http') ? 'http' : 'http2'
  }

  // -- core/v1 Endpoints

  private endpointsUpserted(obj: EndpointsObject, old: EndpointsObject | undefined): void {
    const target = endpointsTarget(obj)
    const before = old && endpointsTarget(old)
    if (before && !sameTarget(before, target)) this.targetGone(before)
    if (!target) return
    const subsets = obj.subsets ?? []
    const port = this.portName(target.namespace, target.revision, (n) =>
      subsets.some((s) => s.ports?.some((p) => p.name === n)),
    )
    const ready = new Set<string>()
    const notReady = new Set<string>()
    for (const s of subsets) {
      const p = s.ports?.find((q) => q.name === port)
      if (p?.port === undefined) continue
      if (target.type === 'Public') {
        for (const a of s.addresses ?? []) ready.add(a.ip)
      } else {
        for (const a of s.addresses ?? []) ready.add(hostPort(a.ip, p.port))
        for (const a of s.notReadyAddresses ?? []) notReady.add(hostPort(a.ip, p.port))
      }
    }
    this.deliver(target, ready, notReady)
  }

  private endpointsRemoved(obj: EndpointsObject): void {
    const target = endpointsTarget(obj)
    if (target) this.targetGone(target)
  }

  private deliver(target: Target, ready: Set<string>, notReady: Set<string>): void {
    if (target.type === 'Public') {
      this.events?.activatorsUpdated(target.namespace, target.revision, [...ready])
    } else {
      const eps: RevisionEndpoints = { ready: [...ready], notReady: [...notReady] }
      this.events?.endpointsUpdated(target.namespace, target.revision, eps)
    }
  }

  /** Public endpoints going away is ignored, as Knative's throttler ignores it. */
  private targetGone(target: Target): void {
    if (target.type === 'Private') this.events?.endpointsDeleted(target.namespace, target.revision)
  }

  // -- discovery.k8s.io/v1 EndpointSlices

  private sliceUpserted(obj: EndpointSliceObject, old: EndpointSliceObject | undefined): void {
    if (old) {
      const before = sliceTarget(old)
      const now = sliceTarget(obj)
      if (before && (before.service !== now?.service || !sameTarget(before, now))) this.sliceRemoved(old)
    }
    const target = sliceTarget(obj)
    if (!target) return
    const key = `${target.namespace}/${target.service}`
    let group = this.slices.get(key)
    if (!group) this.slices.set(key, (group = new Map()))
    group.set(obj.metadata?.name ?? '', obj)
    this.deliverSlices(target, group)
  }

  private sliceRemoved(obj: EndpointSliceObject): void {
    const target = sliceTarget(obj)
    if (!target) return
    const key = `${target.namespace}/${target.service}`
    const group = this.slices.get(key)
    if (!group?.delete(obj.metadata?.name ?? '')) return
    if (group.size > 0) return this.deliverSlices(target, group)
    this.slices.delete(key)
    this.targetGone(target)
  }

  /**
   * Merges a service's slices into what its Endpoints would hold: one address
   * family (IPv4 when present; Endpoints list the primary family only), ready
   * unless conditions.ready is false, terminating endpoints left out.
   */
  private deliverSlices(target: Target, group: Map<string, EndpointSliceObject>): void {
    const all = [...group.values()]
    const family = all.some((s) => s.addressType === 'IPv4') ? 'IPv4' : 'IPv6'
    const slices = all.filter((s) => s.addressType === family)
    const port = this.portName(target.namespace, target.revision, (n) =>
      slices.some((s) => s.ports?.some((p) => p.name === n)),
    )
    const ready = new Set<string>()
    const notReady = new Set<string>()
    for (const s of slices) {
      const p = s.ports?.find((q) => q.name === port)
      if (p?.port === undefined || p.port === null) continue
      for (const ep of s.endpoints ?? []) {
        const ip = ep.addresses?.[0]
        if (!ip || ep.conditions?.terminating === true) continue
        const isReady = ep.conditions?.ready !== false
        if (target.type === 'Public') {
          if (isReady) ready.add(ip)
        } else {
          ;(isReady ? ready : notReady).add(hostPort(ip, p.port))
        }
      }
    }
    this.deliver(target, ready, notReady)
  }

  // -- core/v1 Services

  private serviceTarget(obj: ServiceObject): { namespace: string; revision: string } | undefined {
    const meta = obj.metadata
    if (meta?.labels?.[SERVICE_TYPE_LABEL] !== 'Private' || !meta.namespace || !meta.name) return undefined
    const revision = meta.labels[REVISION_LABEL] || meta.name.replace(/-private$/, '')
    return { namespace: meta.namespace, revision }
  }

  private serviceUpserted(obj: ServiceObject): void {
    const t = this.serviceTarget(obj)
    if (!t || !this.events?.privateServiceUpdated) return
    const ports = obj.spec?.ports ?? []
    const name = this.portName(t.namespace, t.revision, (n) => ports.some((p) => p.name === n))
    const port = ports.find((p) => p.name === name)?.port
    const ip = obj.spec?.clusterIP
    const usable = ip && ip !== 'None' && port !== undefined
    this.events.privateServiceUpdated(t.namespace, t.revision, usable ? { clusterDest: hostPort(ip, port) } : null)
  }

  private serviceRemoved(obj: ServiceObject): void {
    const t = this.serviceTarget(obj)
    if (t) this.events?.privateServiceUpdated?.(t.namespace, t.revision, null)
  }
}
