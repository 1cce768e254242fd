// The activator's throttler (spec §2.6, §2.8): per revision, a capacity gate
// (cc x pods assigned to this activator; "open" for cc = 0 with any pod; shut
// with no pods), a load-balancing policy over the assigned pod trackers, and a
// bounded FIFO wait queue (revision-queue.ts) in place of Knative's
// 10 000 + 2^31-1 deep breaker queue.
//
// Dispatch is late-binding: a waiting request is bound to a pod only when a
// slot is actually free, so requests never sit behind one busy pod while
// another is idle, and a pod that just became healthy takes waiting requests
// synchronously inside the update that made it healthy (pain points 9 and 13).
// If the gate is open but the policy finds no pod (a lost race in Knative's
// terms) the request stays at the head of the queue and is retried on the next
// release or capacity change, before anyone who came later.
//
// No HTTP here: the handler passes a long-lived waiter object per request;
// onDest(dest) fires (possibly synchronously inside try) when a pod slot is
// reserved for it, onReject(reason, retryAfterSec) when it is shed. The handler
// calls release(waiter) when the proxied request ends, cancel(waiter) if it
// gives up while waiting (revision timeout -> 504, client abort).

import type { Logger } from '@sluice/core/logging'
import type http from 'node:http'
import type { EndpointEvents, PrivateService, RevisionEndpoints } from '../endpoints/source.ts'
import { revisionKey, type RevisionInfo } from '../revision.ts'
import { assignSlice } from './assignment.ts'
import {
  firstAvailable, leastLoaded, policyForConcurrency, randomChoice2, roundRobin,
  PodTracker, type PolicyName, type RotationState,
} from './lb-policy.ts'
import { createProbeAgent, RevisionBackends, type MeshMode, type RevisionBackendsOptions } from './revision-backends.ts'
import { Admit, QueueBudget, RevisionQueue, type QueueLimits, type QueueNode, type RevisionQueueOptions } from './revision-queue.ts'

/** Knative's revisionMaxConcurrency: the capacity that means "open". */
export const MAX_CAPACITY = 2 ** 31 - 1

export type RejectReason = 'full' | 'deadline' | 'no-revision'

export interface ThrottleWaiter extends QueueNode {
  /** A slot on pod `dest` is reserved: proxy there, then call release(). */
  onDest(dest: string): void
  /** Shed: answer 503 with Retry-After (0 = none). */
  onReject(reason: RejectReason, retryAfterSec: number): void
  // Bookkeeping set by the throttler (no per-request allocation).
  throttleRevision?: RevisionThrottler | null
  throttleTracker?: PodTracker | null
  throttleStart?: number
}

/** Picks and reserves a tracker, or returns null. */
export type LbPolicyFn = (trackers: readonly PodTracker[]) => PodTracker | null

const POLICY_FIRST = 0
const POLICY_RR = 1
const POLICY_P2C = 2
const POLICY_LEAST = 3
const POLICY_CUSTOM = 4
const POLICY_CODES: Record<PolicyName, number> = {
  'first-available': POLICY_FIRST,
  'round-robin': POLICY_RR,
  'random-choice-2': POLICY_P2C,
  'least-loaded': POLICY_LEAST,
}

export interface RevisionThrottlerOptions {
  queue?: RevisionQueueOptions
  /** Replaces the cc-based choice (benchmarks, experiments). */
  policyOverride?: PolicyName | LbPolicyFn
  random?: () => number
  now?: () => number
  /** Probing of the revision's pods; null: none (dests come from updateDests only). */
  probe?: Omit<RevisionBackendsOptions, 'onHealthy' | 'onClusterIP'> | null
  log?: Logger
  /** Capacity arrived while requests waited at none (metrics: cold starts). */
  onColdStart?: (key: string) => void
}

export class RevisionThrottler {
  readonly key: string
  readonly containerConcurrency: number
  readonly queue: RevisionQueue<ThrottleWaiter>
  readonly backends: RevisionBackends | null
  /** Requests holding a pod slot. */
  inFlight = 0
  capacity = 0
  /** Times the gate was open but the policy found no pod. */
  lostRaces = 0
  activatorIndex = -1
  numActivators = 0

  private readonly policy: number
  private readonly customPolicy: LbPolicyFn | null
  private readonly rotation: RotationState = { index: 0 }
  private readonly random: () => number
  private readonly now: () => number
  private readonly log: Logger | undefined
  private readonly onColdStart: ((key: string) => void) | undefined
  /** Healthy pods, sorted by dest. */
  private trackers: PodTracker[] = []
  private assigned: PodTracker[] = []
  /** Every tracker still known: healthy ones plus removed ones with requests in flight. */
  private readonly byDest = new Map<string, PodTracker>()
  private readonly retired = new Set<PodTracker>()
  /** ClusterIP routing (mesh): the one tracker every request goes through, and the K8s-ready pod count. */
  private clusterTracker: PodTracker | null = null
  private readyBackends = 0
  private dispatching = false
  private closed = false

  constructor(key: string, containerConcurrency: number, opts: RevisionThrottlerOptions = {}) {
    this.key = key
    this.containerConcurrency = containerConcurrency
    this.queue = new RevisionQueue(opts.queue)
    const p = opts.policyOverride ?? policyForConcurrency(containerConcurrency)
    this.policy = typeof p === 'function' ? POLICY_CUSTOM : POLICY_CODES[p]
    this.customPolicy = typeof p === 'function' ? p : null
    this.random = opts.random ?? Math.random
    this.now = opts.now ?? performance.now.bind(performance)
    this.log = opts.log
    this.onColdStart = opts.onColdStart
    this.backends = opts.probe === null || opts.probe === undefined
      ? null
      : new RevisionBackends({
        ...opts.probe,
        onHealthy: (dests) => this.updateDests(dests),
        onClusterIP: (dest, ready) => this.updateClusterIP(dest, ready),
      })
  }

  /** The ClusterIP destination requests go through, or null for pod-direct routing. */
  get clusterDest(): string | null {
    return this.clusterTracker?.dest ?? null
  }

  /**
   * Route through the private Service's ClusterIP (dest) with `readyBackends`
   * K8s-ready pods behind it, or back to pod routing (null). No per-pod
   * trackers: one unlimited tracker, capacity from the ready count.
   */
  updateClusterIP(dest: string | null, readyBackends: number): void {
    if (this.closed) return
    if (dest === null) {
      this.clusterTracker = null
      this.readyBackends = 0
    } else {
      if (this.clusterTracker?.dest !== dest) this.clusterTracker = new PodTracker(dest, 0)
      this.readyBackends = readyBackends
    }
    this.recompute()
  }

  /** Destinations this activator sends to. */
  get assignedDests(): string[] {
    return this.assigned.map((t) => t.dest)
  }

  /** Healthy destinations (all activators' share). */
  get healthyDests(): string[] {
    return this.trackers.map((t) => t.dest)
  }

  tracker(dest: string): PodTracker | undefined {
    return this.byDest.get(dest)
  }

  /** Reserve a pod slot for `w` now, queue it, or shed it. */
  try(w: ThrottleWaiter, bytes: number, remainingMs: number): void {
    if (this.closed) {
      w.onReject('no-revision', 0)
      return
    }
    // FIFO: a newcomer only goes straight through when nobody is waiting.
    if (this.queue.length === 0 && this.inFlight < this.capacity) {
      const t = this.pick()
      if (t !== null) {
        this.start(w, t)
        return
      }
      this.lostRaces++
    }
    const r = this.queue.enqueue(w, bytes, remainingMs)
    if (r === Admit.admitted) {
      w.throttleRevision = this
      return
    }
    w.onReject(r === Admit.full ? 'full' : 'deadline', this.queue.retryAfterSec())
  }

  /** The proxied request of `w` ended: free its pod slot and serve the next in line. */
  release(w: ThrottleWaiter): boolean {
    const t = w.throttleTracker
    if (t === null || t === undefined || w.throttleRevision !== this) return false
    w.throttleTracker = null
    w.throttleRevision = null
    t.release()
    this.inFlight--
    this.queue.recordService(this.now() - (w.throttleStart ?? 0))
    if (t.inFlight === 0 && this.retired.delete(t) && this.byDest.get(t.dest) === t) this.byDest.delete(t.dest)
    this.dispatch()
    return true
  }

  /** `w` gave up while waiting: its queue slot and bytes are freed at once. */
  cancel(w: ThrottleWaiter): boolean {
    if (!this.queue.remove(w)) return false
    w.throttleRevision = null
    return true
  }

  /** New healthy pod list (from the backends, or tests). Waiting requests go to new pods at once. */
  updateDests(dests: readonly string[]): void {
    if (this.closed) return
    const cc = this.containerConcurrency
    const next: PodTracker[] = []
    const keep = new Set(dests)
    for (const d of keep) {
      let t = this.byDest.get(d)
      if (t === undefined) {
        t = new PodTracker(d, cc)
        this.byDest.set(d, t)
      } else this.retired.delete(t)
      next.push(t)
    }
    for (const t of this.trackers) {
      if (keep.has(t.dest)) continue
      // Keep a removed pod's tracker while requests run on it, so a pod that comes back
      // is not handed more than cc requests.
      if (t.inFlight > 0) this.retired.add(t)
      else this.byDest.delete(t.dest)
    }
    next.sort(byDest)
    this.trackers = next
    this.recompute()
  }

  /** This activator's position among the revision's activators (spec §2.8). */
  updateActivators(index: number, count: number): void {
    if (index === this.activatorIndex && count === this.numActivators) return
    this.activatorIndex = index
    this.numActivators = count
    this.recompute()
  }

  /** Passive removal: a connection to `dest` failed. */
  reportFailure(dest: string): void {
    if (this.backends !== null) this.backends.reportFailure(dest)
    else if (this.trackers.some((t) => t.dest === dest)) this.updateDests(this.healthyDests.filter((d) => d !== dest))
  }

  /** Revision deleted: stop probing and shed everyone still waiting. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.backends?.close()
    for (let w = this.queue.shift(); w !== undefined; w = this.queue.shift()) {
      w.throttleRevision = null
      w.onReject('no-revision', 0)
    }
  }

  private recompute(): void {
    const cc = this.containerConcurrency
    // calculateCapacity (spec §2.6).
    let capacity: number
    let backends: number
    const ct = this.clusterTracker
    if (ct !== null) {
      // ClusterIP routing: cc x ready backends shared by the activators, at least 1.
      this.assigned = [ct]
      backends = this.readyBackends
      const product = cc * backends
      capacity = Math.floor(product / Math.max(1, this.numActivators))
      if (capacity === 0 && product > 0) capacity = 1
    } else {
      this.assigned = cc > 0 ? assignSlice(this.trackers, this.activatorIndex, this.numActivators) : this.trackers.slice()
      backends = this.trackers.length
      capacity = cc * this.assigned.length
    }
    if (backends > 0 && (cc === 0 || capacity > MAX_CAPACITY)) capacity = MAX_CAPACITY
    if (capacity !== this.capacity) {
      if (this.capacity === 0 && this.queue.length > 0) this.onColdStart?.(this.key)
      this.log?.info({ revision: this.key, capacity, pods: this.trackers.length, clusterIP: ct?.dest, readyBackends: ct !== null ? backends : undefined, index: this.activatorIndex, activators: this.numActivators }, 'set capacity')
    }
    this.capacity = capacity
    this.queue.capacity = capacity
    this.dispatch()
  }

  private pick(): PodTracker | null {
    const a = this.assigned
    switch (this.policy) {
      case POLICY_FIRST: return firstAvailable(a)
      case POLICY_RR: return roundRobin(a, this.rotation)
      case POLICY_P2C: return randomChoice2(a, this.random)
      case POLICY_LEAST: return leastLoaded(a, this.rotation)
      default: return this.customPolicy!(a)
    }
  }

  private start(w: ThrottleWaiter, t: PodTracker): void {
    this.inFlight++
    w.throttleRevision = this
    w.throttleTracker = t
    w.throttleStart = this.now()
    w.onDest(t.dest)
  }

  /** Hands free slots to the queue's head, in order. Re-entrant calls (from onDest) are absorbed by the running loop. */
  private dispatch(): void {
    if (this.dispatching) return
    this.dispatching = true
    try {
      for (;;) {
        if (this.inFlight >= this.capacity) break
        const w = this.queue.peek()
        if (w === undefined) break
        const t = this.pick()
        if (t === null) {
          this.lostRaces++ // stays at the head; retried on the next release or capacity change
          break
        }
        this.queue.shift()
        this.start(w, t)
      }
    } finally {
      this.dispatching = false
    }
  }
}

function byDest(a: PodTracker, b: PodTracker): number {
  return a.dest < b.dest ? -1 : a.dest > b.dest ? 1 : 0
}

export interface ThrottlerOptions {
  /** This activator's POD_IP, matched against the revision's public endpoints. */
  podIP?: string
  /** Per-revision queue limits. */
  revisionLimits?: Partial<QueueLimits>
  /** Activator-wide queue limits. */
  totalLimits?: Partial<QueueLimits>
  queue?: Omit<RevisionQueueOptions, 'budget' | 'maxQueued' | 'maxBufferedBytes'>
  probeFrequencyMs?: number
  probeTimeoutMs?: number
  /** Trust K8s-ready pods without probing (implied by any mesh mode but `auto`). */
  trustReadyPods?: boolean
  /** config-network mesh-compatibility-mode (default `auto`); setMesh changes it at run time. */
  meshMode?: MeshMode
  /** config-network enable-mesh-pod-addressability. */
  passthroughLb?: boolean
  /** false: no pod probing at all (tests and simulations drive updateDests). */
  probe?: boolean
  policyOverride?: PolicyName | LbPolicyFn
  random?: () => number
  now?: () => number
  /** Revision lookup for requests that arrive before revisionUpserted. */
  lookupRevision?: (key: string) => RevisionInfo | undefined
  log?: Logger
  /** Capacity arrived for a revision whose requests waited at none (metrics: cold starts). */
  onColdStart?: (key: string) => void
}

interface ActivatorPosition {
  index: number
  count: number
}

/** All revisions' throttlers; also the sink of endpoint events. */
export class Throttler implements EndpointEvents {
  readonly budget: QueueBudget
  private readonly opts: ThrottlerOptions
  private readonly revisions = new Map<string, RevisionThrottler>()
  private readonly pendingEndpoints = new Map<string, RevisionEndpoints>()
  private readonly positions = new Map<string, ActivatorPosition>()
  /** Private Services' ClusterIP destinations, by revision key. */
  private readonly clusterDests = new Map<string, string>()
  private meshMode: MeshMode
  private passthroughLbOn: boolean
  private readonly agent: http.Agent | null
  /** try() for a revision that is not known. */
  rejectedNoRevision = 0

  constructor(opts: ThrottlerOptions = {}) {
    this.opts = opts
    this.budget = new QueueBudget(opts.totalLimits)
    this.meshMode = opts.meshMode ?? 'auto'
    this.passthroughLbOn = opts.passthroughLb ?? false
    this.agent = opts.probe === false ? null : createProbeAgent()
  }

  get(key: string): RevisionThrottler | undefined {
    return this.revisions.get(key)
  }

  /** Every revision throttler (metrics). */
  all(): IterableIterator<RevisionThrottler> {
    return this.revisions.values()
  }

  /**
   * Asks for a pod slot of revision `key` for `w`. `bytes`: body bytes the
   * request holds while it waits; `remainingMs`: time left before its deadline.
   */
  try(key: string, w: ThrottleWaiter, bytes = 0, remainingMs = Infinity): void {
    let rt = this.revisions.get(key)
    if (rt === undefined) {
      const rev = this.opts.lookupRevision?.(key)
      if (rev !== undefined) rt = this.ensure(rev)
    }
    if (rt === undefined) {
      this.rejectedNoRevision++
      w.onReject('no-revision', 0)
      return
    }
    rt.try(w, bytes, remainingMs)
  }

  release(w: ThrottleWaiter): boolean {
    return w.throttleRevision?.release(w) ?? false
  }

  cancel(w: ThrottleWaiter): boolean {
    return w.throttleRevision?.cancel(w) ?? false
  }

  /** Passive removal of a pod whose connection failed. */
  reportFailure(key: string, dest: string): void {
    this.revisions.get(key)?.reportFailure(dest)
  }

  revisionUpserted(rev: RevisionInfo): void {
    const rt = this.ensure(rev)
    // cc and protocol are fixed at creation (as in Knative); the probe optimisation may change.
    if (rt.backends !== null) rt.backends.probeOptimisation = !rev.execReadinessProbe
  }

  revisionDeleted(namespace: string, name: string): void {
    const key = revisionKey(namespace, name)
    this.revisions.get(key)?.close()
    this.revisions.delete(key)
    this.pendingEndpoints.delete(key)
    this.positions.delete(key)
  }

  endpointsUpdated(namespace: string, name: string, eps: RevisionEndpoints): void {
    const key = revisionKey(namespace, name)
    const rt = this.revisions.get(key)
    if (rt === undefined) this.pendingEndpoints.set(key, eps)
    else this.applyEndpoints(rt, eps)
  }

  endpointsDeleted(namespace: string, name: string): void {
    const key = revisionKey(namespace, name)
    this.pendingEndpoints.delete(key)
    const rt = this.revisions.get(key)
    if (rt === undefined) return
    if (rt.backends !== null) rt.backends.reset()
    else rt.updateDests([])
  }

  activatorsUpdated(namespace: string, name: string, activatorIPs: string[]): void {
    const self = this.opts.podIP
    if (self === undefined || self === '' || !activatorIPs.includes(self)) return // not in this revision's path
    const sorted = [...new Set(activatorIPs)].sort()
    const pos = { index: sorted.indexOf(self), count: sorted.length }
    const key = revisionKey(namespace, name)
    this.positions.set(key, pos)
    this.revisions.get(key)?.updateActivators(pos.index, pos.count)
  }

  /** The mesh settings in force. */
  /** enable-mesh-pod-addressability in force (read per proxied request: no allocation). */
  get passthroughLb(): boolean {
    return this.passthroughLbOn
  }

  get mesh(): { mode: MeshMode; passthroughLb: boolean } {
    return { mode: this.meshMode, passthroughLb: this.passthroughLbOn }
  }

  /** config-network changed: every revision starts over under the new settings. */
  setMesh(mode: MeshMode, passthroughLb: boolean): void {
    if (mode === this.meshMode && passthroughLb === this.passthroughLbOn) return
    this.meshMode = mode
    this.passthroughLbOn = passthroughLb
    for (const rt of this.revisions.values()) rt.backends?.setMesh(mode, passthroughLb)
  }

  privateServiceUpdated(namespace: string, name: string, svc: PrivateService | null): void {
    const key = revisionKey(namespace, name)
    if (svc === null) this.clusterDests.delete(key)
    else this.clusterDests.set(key, svc.clusterDest)
    this.revisions.get(key)?.backends?.setClusterDest(svc?.clusterDest ?? null)
  }

  /** Stops all probing and sheds all waiting requests. */
  close(): void {
    for (const rt of this.revisions.values()) rt.close()
    this.revisions.clear()
    this.agent?.destroy()
  }

  private ensure(rev: RevisionInfo): RevisionThrottler {
    const key = revisionKey(rev.namespace, rev.name)
    let rt = this.revisions.get(key)
    if (rt !== undefined) return rt
    const o = this.opts
    rt = new RevisionThrottler(key, rev.containerConcurrency, {
      queue: { ...o.queue, ...o.revisionLimits, budget: this.budget },
      policyOverride: o.policyOverride,
      random: o.random,
      now: o.now,
      log: o.log,
      onColdStart: o.onColdStart,
      probe: this.agent === null ? null : {
        agent: this.agent,
        probeFrequencyMs: o.probeFrequencyMs,
        probeTimeoutMs: o.probeTimeoutMs,
        probeOptimisation: !rev.execReadinessProbe,
        trustReadyPods: o.trustReadyPods,
        meshMode: this.meshMode,
        passthroughLb: this.passthroughLbOn,
        privateHost: `${rev.name}-private.${rev.namespace}`,
        log: o.log,
      },
    })
    this.revisions.set(key, rt)
    const cluster = this.clusterDests.get(key)
    if (cluster !== undefined) rt.backends?.setClusterDest(cluster)
    const pos = this.positions.get(key)
    if (pos !== undefined) rt.updateActivators(pos.index, pos.count)
    const eps = this.pendingEndpoints.get(key)
    if (eps !== undefined) {
      this.pendingEndpoints.delete(key)
      this.applyEndpoints(rt, eps)
    }
    return rt
  }

  private applyEndpoints(rt: RevisionThrottler, eps: RevisionEndpoints): void {
    if (rt.backends !== null) rt.backends.update(eps)
    else rt.updateDests(eps.ready) // no probing: K8s-ready pods are the backends
  }
}
