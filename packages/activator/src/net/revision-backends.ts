// Healthy pod destinations of one revision (spec §2.7): takes the revision's
// private endpoints, probes the pods that are not yet known healthy
// (GET /healthz, K-Network-Probe: queue, User-Agent: Knative-Activator-Probe;
// healthy iff 200 with body exactly `queue`), and publishes the healthy list
// whenever it changes. Removal is immediate: pods gone from the endpoints,
// pods that went ready -> not-ready, and pods whose connection failed
// (reportFailure, pain point 10: passive removal) leave the healthy set at once
// and must pass a probe again before reuse.
//
// Pod-direct routing only: the ClusterIP fallback of mesh mode `auto`
// (spec §2.7 steps 3-4) is left out, so a revision whose pods cannot be probed
// directly (a mesh without passthrough) gets no backends.
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
export function probeQueueProxy(dest: string, agent: http.Agent, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const { host, port } = splitDest(dest)
    let req: http.ClientRequest
    try {
      req = http.request({ host, port, path: '/healthz', method: 'GET', headers: PROBE_HEADERS, agent, signal })
    } catch {
      resolve(false)
      return
    }
    req.on('error', () => resolve(false))
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        res.resume() // drain so the socket can be reused
        resolve(false)
        return
      }
      let body = ''
      res.setEncoding('latin1')
      res.on('data', (chunk: string) => {
        body += chunk
        if (body.length > EXPECTED_BODY.length) {
          resolve(false)
          res.destroy()
        }
      })
      res.on('end', () => resolve(body === EXPECTED_BODY))
      res.on('error', () => resolve(false))
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
  /** mesh-compatibility-mode `disabled` (spec §2.7 2b): K8s-ready pods count as healthy unprobed. */
  trustReadyPods?: boolean
  log?: Logger
}

export class RevisionBackends {
  private optimisation: boolean
  private readonly onHealthy: (dests: readonly string[]) => void
  private readonly agent: http.Agent
  private readonly ownAgent: boolean
  private readonly frequencyMs: number
  private readonly timeoutMs: number
  private readonly trustReadyPods: boolean
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
    this.trustReadyPods = opts.trustReadyPods ?? false
    this.log = opts.log
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
    this.publish()
    this.kick()
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

  private hasWork(): boolean {
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
    for (const [d, st] of this.dests) {
      if (this.needsProbe(st)) {
        targets.push(d)
        epochs.push(st.epoch)
      }
    }
    if (targets.length === 0) return
    this.inRound = true
    const ac = new AbortController()
    const timeout = setTimeout(() => ac.abort(), this.timeoutMs)
    let results: boolean[]
    try {
      results = await Promise.all(targets.map((d) => probeQueueProxy(d, this.agent, ac.signal)))
    } finally {
      clearTimeout(timeout)
      this.inRound = false
    }
    this.rounds++
    if (this.closed) return
    let changed = false
    for (let i = 0; i < targets.length; i++) {
      if (!results[i]) continue
      const st = this.dests.get(targets[i]!)
      // Still listed, nothing happened to it meanwhile, and usable (ready or optimisation on).
      if (st === undefined || st.epoch !== epochs[i] || st.healthy || !(st.ready || this.optimisation)) continue
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
    for (const [d, st] of this.dests) if (st.healthy) list.push(d)
    list.sort()
    const old = this.published
    if (list.length === old.length && list.every((d, i) => d === old[i])) return
    this.published = list
    this.onHealthy(list)
  }
}
