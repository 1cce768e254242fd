// Healthy pod destinations of one revision (spec §2.7): takes the revision's
// private endpoints, probes the pods that are not yet known healthy
// (GET /healthz, K-Network-Probe: queue, User-Agent: Knative-Activator-Probe;
// healthy iff 200 with body exactly `queue`), and publishes the healthy list
// whenever it changes. Removal is immediate: pods gone from the endpoints,
// pods that went ready -> not-ready, and pods whose connection failed
// (reportFailure, pain point 10: passive removal) leave the healthy set at once
// and must pass a probe again before reuse.
//
// Mesh modes (spec §2.7 steps 2-5, Knative's checkDests): `auto` probes pods
// and, when none passes and no answer proved pods reachable (only 502/503 or
// transport errors, what a sidecar rejecting plain traffic gives), probes the
// private Service's ClusterIP and routes there (onClusterIP); `enabled` skips
// pods and always uses the ClusterIP; `disabled` never does. Once the
// ClusterIP took over, pods are not probed again (Knative's podsAddressable
// = false) until the mode changes at run time or the endpoints are deleted.
//
// Probes use node:http with one keep-alive Agent shared by all revisions:
// probes are tiny GETs at 5/s per unready pod, a keep-alive socket saves the
// connect per round, node:http's Agent handles thousands of distinct pod
// origins without a pool object per origin (undici's Agent keeps one Pool per
// origin), its idle sockets are unref'd and closed on `timeout`, and it avoids
// loading undici's index for the probe path.

import http from 'node:http'
import { Header, ProbeValue, UserAgent } from '@sluice/core/constants'
import type { Logger } from '@sluice/core/logging'
import type { RevisionEndpoints } from '../endpoints/source.ts'

export const DEFAULT_PROBE_FREQUENCY_MS = 200
export const DEFAULT_PROBE_TIMEOUT_MS = 300

const PROBE_HEADERS: Readonly<http.OutgoingHttpHeaders> = {
  [Header.networkProbe]: ProbeValue.queue,
  [Header.userAgent]: UserAgent.activatorProbe,
}
const EXPECTED_BODY = ProbeValue.queue

export type MeshMode = 'auto' | 'enabled' | 'disabled'

/** Probe outcomes: passed; failed with an answer proving direct access works; failed, maybe a mesh. */
export const PROBE_OK = 2
export const PROBE_NOT_MESH = 1
export const PROBE_FAILED = 0

/** A keep-alive agent for probes; idle sockets close after 5 s. */
export function createProbeAgent(): http.Agent {
  return new http.Agent({ keepAlive: true, maxFreeSockets: 1024, timeout: 5_000, scheduling: 'lifo' })
}

/** Splits "ip:port" / "[v6]:port". */
function splitDest(dest: string): { host: string; port: number } {
  const i = dest.lastIndexOf(':')
  let host = dest.slice(0, i)
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1)
  return { host, port: Number(dest.slice(i + 1)) }
}

/** One activator probe of a queue-proxy; resolves true iff 200 and body `queue`. Never rejects. */
export async function probeQueueProxy(dest: string, agent: http.Agent, signal: AbortSignal): Promise<boolean> {
  return (await probeDest(dest, agent, signal, PROBE_HEADERS)) === PROBE_OK
}

/**
 * Probes `dest`: PROBE_OK iff 200 and body `queue`; PROBE_NOT_MESH for any
 * other answer than 502/503 (Knative's IsPotentialMeshErrorResponse);
 * PROBE_FAILED for 502/503 and transport errors. Never rejects.
 */
export function probeDest(dest: string, agent: http.Agent, signal: AbortSignal, headers: Readonly<http.OutgoingHttpHeaders>): Promise<number> {
  return new Promise((resolve) => {
    const { host, port } = splitDest(dest)
    let req: http.ClientRequest
    try {
      req = http.request({ host, port, path: '/healthz', method: 'GET', headers, agent, signal })
    } catch {
      resolve(PROBE_FAILED)
      return
    }
    req.on('error', () => resolve(PROBE_FAILED))
    req.on('response', (res) => {
      const sc = res.statusCode
      const miss = sc === 502 || sc === 503 ? PROBE_FAILED : PROBE_NOT_MESH
      if (sc !== 200) {
        res.resume() // drain so the socket can be reused
        resolve(miss)
        return
      }
      let body = ''
      res.setEncoding('latin1')
      res.on('data', (chunk: string) => {
        body += chunk
        if (body.length > EXPECTED_BODY.length) {
          resolve(PROBE_NOT_MESH)
          res.destroy()
        }
      })
      res.on('end', () => resolve(body === EXPECTED_BODY ? PROBE_OK : PROBE_NOT_MESH))
      res.on('error', () => resolve(PROBE_FAILED))
    })
    req.end()
  })
}

interface DestState {
  /** Kubernetes lists it under `addresses` (not `notReadyAddresses`). */
  ready: boolean
  healthy: boolean
  /** Connection failed (reportFailure): ignore trustReadyPods until a probe passes. */
  suspect: boolean
  /** Bumped whenever a probe already in flight must not count any more. */
  epoch: number
}

export interface RevisionBackendsOptions {
  /** Called with the sorted healthy destinations whenever they change. */
  onHealthy: (dests: readonly string[]) => void
  agent?: http.Agent
  probeFrequencyMs?: number
  /** Budget of one probing round, shared by all pods probed in it. */
  probeTimeoutMs?: number
  /** Spec §2.7 2c: a probed not-ready pod is used; off when the revision has an exec readiness probe. */
  probeOptimisation?: boolean
  /** K8s-ready pods count as healthy unprobed (spec §2.7 2b: any mesh mode but `auto`). */
  trustReadyPods?: boolean
  /** config-network mesh-compatibility-mode; default `auto`. */
  meshMode?: MeshMode
  /** enable-mesh-pod-addressability: probes carry K-Passthrough-Lb and Host `<rev>-private.<ns>`; never the ClusterIP. */
  passthroughLb?: boolean
  /** `<rev>-private.<namespace>`, the Host of passthrough probes. */
  privateHost?: string
  /** ClusterIP routing took over (dest "ip:port", K8s-ready pod count), or ended (null). */
  onClusterIP?: (dest: string | null, readyBackends: number) => void
  log?: Logger
}

export class RevisionBackends {
  private optimisation: boolean
  private readonly onHealthy: (dests: readonly string[]) => void
  private readonly agent: http.Agent
  private readonly ownAgent: boolean
  private readonly frequencyMs: number
  private readonly timeoutMs: number
  private trustReadyPods: boolean
  private readonly trustReadyOption: boolean
  private mode: MeshMode
  private passthrough: boolean
  private readonly privateHost: string
  private readonly onClusterIP: ((dest: string | null, readyBackends: number) => void) | undefined
  private probeHeaders: Readonly<http.OutgoingHttpHeaders>
  /** The private Service's ClusterIP destination, when known. */
  private clusterDest: string | null = null
  private clusterIPHealthy = false
  private podsAddressable = true
  /** The ClusterIP route last published ("dest/ready"), '' for none. */
  private publishedRoute = ''
  private readonly log: Logger | undefined
  private dests = new Map<string, DestState>()
  private published: readonly string[] = []
  private timer: NodeJS.Timeout | null = null
  private inRound = false
  private rerun = false
  private closed = false
  /** Completed probing rounds (for tests and debugging). */
  rounds = 0

  constructor(opts: RevisionBackendsOptions) {
    this.onHealthy = opts.onHealthy
    this.ownAgent = opts.agent === undefined
    this.agent = opts.agent ?? createProbeAgent()
    this.frequencyMs = opts.probeFrequencyMs ?? DEFAULT_PROBE_FREQUENCY_MS
    this.timeoutMs = opts.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS
    this.optimisation = opts.probeOptimisation ?? true
    this.trustReadyOption = opts.trustReadyPods ?? false
    this.mode = opts.meshMode ?? 'auto'
    this.trustReadyPods = this.trustReadyOption || this.mode !== 'auto'
    this.passthrough = opts.passthroughLb ?? false
    this.privateHost = opts.privateHost ?? ''
    this.onClusterIP = opts.onClusterIP
    this.probeHeaders = this.headersFor(this.passthrough)
    this.log = opts.log
  }

  private headersFor(passthrough: boolean): Readonly<http.OutgoingHttpHeaders> {
    if (!passthrough || this.privateHost === '') return PROBE_HEADERS
    return { ...PROBE_HEADERS, host: this.privateHost, [Header.passthroughLb]: 'true' }
  }

  /** True while requests go through the ClusterIP. */
  get viaClusterIP(): boolean {
    return this.clusterIPHealthy
  }

  /** The private Service's ClusterIP destination changed (null: gone or headless). */
  setClusterDest(dest: string | null): void {
    if (dest === this.clusterDest) return
    this.clusterDest = dest
    // Knative looks the Service up on every check; a new address must pass a probe.
    if (this.clusterIPHealthy) {
      this.clusterIPHealthy = false
      this.publishRoute()
    }
    this.kick()
  }

  /** config-network changed at run time: start over from pod probing under the new mode. */
  setMesh(mode: MeshMode, passthroughLb: boolean): void {
    if (mode === this.mode && passthroughLb === this.passthrough) return
    this.mode = mode
    this.passthrough = passthroughLb
    this.probeHeaders = this.headersFor(passthroughLb)
    this.trustReadyPods = this.trustReadyOption || mode !== 'auto'
    this.resetMesh()
    for (const st of this.dests.values()) {
      st.epoch++
      st.healthy = this.trustReadyPods && st.ready && !st.suspect
    }
    this.publish()
    this.kick()
  }

  private resetMesh(): void {
    this.podsAddressable = true
    if (this.clusterIPHealthy) {
      this.clusterIPHealthy = false
      this.publishRoute()
    }
  }

  private readyCount(): number {
    let n = 0
    for (const st of this.dests.values()) if (st.ready) n++
    return n
  }

  /** Publishes the ClusterIP route (or its end) when it changed. */
  private publishRoute(): void {
    const route = this.clusterIPHealthy && this.clusterDest !== null ? `${this.clusterDest}/${this.readyCount()}` : ''
    if (route === this.publishedRoute) return
    this.publishedRoute = route
    this.onClusterIP?.(route === '' ? null : this.clusterDest, route === '' ? 0 : this.readyCount())
  }

  /** Probe optimisation; may change with the revision (exec readiness probe). */
  get probeOptimisation(): boolean {
    return this.optimisation
  }

  set probeOptimisation(on: boolean) {
    if (on === this.optimisation) return
    this.optimisation = on
    this.kick() // not-ready pods may need probing now
  }

  /** The healthy destinations last published (sorted). */
  get healthy(): readonly string[] {
    return this.published
  }

  /** True while a probing round runs or is scheduled. */
  get probing(): boolean {
    return this.inRound || this.timer !== null
  }

  /** New private endpoints of the revision. */
  update(eps: RevisionEndpoints): void {
    if (this.closed) return
    const prev = this.dests
    const next = new Map<string, DestState>()
    for (const d of eps.ready) {
      if (next.has(d)) continue
      const st = prev.get(d) ?? { ready: true, healthy: false, suspect: false, epoch: 0 }
      st.ready = true
      if (this.trustReadyPods && !st.suspect) st.healthy = true
      next.set(d, st)
    }
    for (const d of eps.notReady) {
      if (next.has(d)) continue
      let st = prev.get(d)
      if (st === undefined) st = { ready: false, healthy: false, suspect: false, epoch: 0 }
      else if (st.ready) {
        // Went ready -> not-ready: out at once, re-probed below (spec §2.7 2a).
        st.healthy = false
        st.epoch++
      }
      st.ready = false
      next.set(d, st)
    }
    for (const [d, st] of prev) if (!next.has(d)) st.epoch++ // a probe in flight for it no longer counts
    this.dests = next
    // Scaled to zero: the ClusterIP must pass a probe again (Knative's checkDests step 1).
    if (next.size === 0) this.clusterIPHealthy = false
    this.publish()
    this.publishRoute()
    this.kick()
  }

  /** The private endpoints were deleted: forget what was learnt about the mesh too. */
  reset(): void {
    this.update({ ready: [], notReady: [] })
    this.podsAddressable = true
  }

  /** A connection to `dest` failed: stop using it until it passes a probe again. */
  reportFailure(dest: string): boolean {
    const st = this.dests.get(dest)
    if (st === undefined || !st.healthy) return false
    st.healthy = false
    st.suspect = true
    st.epoch++
    this.log?.info({ dest }, 'removing pod after connection failure; re-probing')
    this.publish()
    this.kick()
    return true
  }

  /** Stops probing; destroys the agent if this instance created it. */
  close(): void {
    this.closed = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    if (this.ownAgent) this.agent.destroy()
  }

  private needsProbe(st: DestState): boolean {
    return !st.healthy && (st.ready || this.optimisation)
  }

  /** Pods are probed unless the ClusterIP took over or the mode says never. */
  private get probePods(): boolean {
    return this.podsAddressable && this.mode !== 'enabled'
  }

  /** The ClusterIP may be tried when no pod is healthy (spec §2.7 steps 3-4). */
  private get clusterFallback(): boolean {
    return !this.passthrough && this.mode !== 'disabled' && this.clusterDest !== null
  }

  private hasWork(): boolean {
    if (this.dests.size === 0 || this.clusterIPHealthy) return false
    if (!this.probePods) return this.clusterFallback
    for (const st of this.dests.values()) if (this.needsProbe(st)) return true
    return false
  }

  /** Probe now: after an update the next round starts at once (as Knative's checkDests does). */
  private kick(): void {
    if (this.closed) return
    if (this.inRound) {
      this.rerun = true
      return
    }
    if (this.timer !== null) {
      clearTimeout(this.timer)
      this.timer = null
    }
    if (this.hasWork()) void this.round()
  }

  private schedule(delayMs: number): void {
    if (this.closed || this.timer !== null || !this.hasWork()) return
    this.timer = setTimeout(() => {
      this.timer = null
      void this.round()
    }, delayMs)
    this.timer.unref()
  }

  private async round(): Promise<void> {
    const started = performance.now()
    const targets: string[] = []
    const epochs: number[] = []
    if (this.probePods) {
      for (const [d, st] of this.dests) {
        if (this.needsProbe(st)) {
          targets.push(d)
          epochs.push(st.epoch)
        }
      }
    }
    if (targets.length === 0 && !(this.hasWork() && !this.probePods)) return
    const cluster = this.clusterDest
    this.inRound = true
    const ac = new AbortController()
    const timeout = setTimeout(() => ac.abort(), this.timeoutMs)
    let results: number[]
    let clusterOk = false
    try {
      results = await Promise.all(targets.map((d) => probeDest(d, this.agent, ac.signal, this.probeHeaders)))
      // Step 4: no pod passed and none proved direct access works -> try the ClusterIP.
      const tryCluster = cluster !== null && this.clusterFallback && !this.clusterIPHealthy &&
        !results.includes(PROBE_NOT_MESH) && !results.includes(PROBE_OK) && this.published.length === 0
      if (tryCluster) clusterOk = (await probeDest(cluster, this.agent, ac.signal, this.probeHeaders)) === PROBE_OK
    } finally {
      clearTimeout(timeout)
      this.inRound = false
    }
    this.rounds++
    if (this.closed) return
    if (clusterOk && cluster === this.clusterDest && this.dests.size > 0 && this.clusterFallback && this.published.length === 0) {
      this.podsAddressable = false
      this.clusterIPHealthy = true
      this.log?.info({ clusterIP: cluster, readyBackends: this.readyCount() }, 'pods not addressable (mesh); routing through the private service ClusterIP')
      this.publishRoute()
    }
    let changed = false
    for (let i = 0; i < targets.length; i++) {
      if (results[i] !== PROBE_OK) continue
      const st = this.dests.get(targets[i]!)
      // Still listed, nothing happened to it meanwhile, and usable (ready or optimisation on).
      if (st === undefined || st.epoch !== epochs[i] || st.healthy || !(st.ready || this.optimisation) || !this.probePods) continue
      st.healthy = true
      st.suspect = false
      changed = true
    }
    if (changed) this.publish()
    if (this.rerun) {
      this.rerun = false
      this.kick()
    } else {
      const elapsed = performance.now() - started
      this.schedule(elapsed >= this.frequencyMs ? 0 : this.frequencyMs - elapsed)
    }
  }

  private publish(): void {
    const list: string[] = []
    if (this.probePods || this.mode === 'disabled') for (const [d, st] of this.dests) if (st.healthy) list.push(d)
    list.sort()
    const old = this.published
    if (list.length === old.length && list.every((d, i) => d === old[i])) return
    this.published = list
    this.onHealthy(list)
  }
}
