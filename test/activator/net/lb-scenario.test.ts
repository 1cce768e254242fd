// A deterministic simulation of the knative/serving#14199 scenario (pain point
// 9: some pods idle while others queue several deep): 4 pods behind one
// activator, containerConcurrency 10, but each pod really works on only 2
// requests at once (2 vCPUs) and queues the rest internally, as a pod whose cc
// is set above its true parallelism does. Service times are heavy-tailed
// (Pareto, alpha 1.8, mean 50 ms, capped at 10 s); arrivals are Poisson at
// 70% of the pods' real capacity. The real Throttler dispatches (virtual
// clock); only the pods are simulated. Same workload for every policy.
//
// Measured: wait = arrival at the activator -> start of service on a pod
// (activator queue + in-pod queue); the deepest in-pod queue seen; and the
// #14199 symptom itself: a request queued inside one pod while another pod has
// an idle worker ("misrouted"), with the deepest such queue.

import t from 'tap'
import { Throttler, type RejectReason, type ThrottleWaiter } from '@sluice/activator/net/throttler'
import type { PolicyName, PodTracker } from '@sluice/activator/net/lb-policy'
import type { QueueNode } from '@sluice/activator/net/revision-queue'

const PODS = 4
const CC = 10
const WORKERS = 2
const MEAN_SERVICE_MS = 50
const ALPHA = 1.8
const MAX_SERVICE_MS = 10_000
const UTILISATION = 0.7
const REQUESTS = 40_000

/** mulberry32: small seeded PRNG, deterministic across runs and platforms. */
function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let x = Math.imul(s ^ (s >>> 15), 1 | s)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

class Req implements ThrottleWaiter {
  arrival = 0
  service = 0
  start = -1
  queuedIn?: object | null
  queuePrev?: QueueNode | null
  queueNext?: QueueNode | null
  queueBytes?: number
  throttleRevision?: ThrottleWaiter['throttleRevision']
  throttleTracker?: PodTracker | null
  throttleStart?: number
  readonly sim: Sim
  constructor(sim: Sim) {
    this.sim = sim
  }
  onDest(dest: string): void {
    this.sim.toPod(this, dest)
  }
  onReject(reason: RejectReason): void {
    throw new Error(`unexpected shed: ${reason}`)
  }
}

interface Pod {
  busy: number
  fifo: Req[]
  maxQueue: number
}

/** Min-heap of completion events by time. */
class Heap {
  private t: number[] = []
  private v: { pod: Pod; req: Req }[] = []
  get size(): number {
    return this.t.length
  }
  peekTime(): number {
    return this.t[0]!
  }
  push(time: number, pod: Pod, req: Req): void {
    this.t.push(time)
    this.v.push({ pod, req })
    let i = this.t.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (this.t[p]! <= this.t[i]!) break
      this.swap(i, p)
      i = p
    }
  }
  pop(): { pod: Pod; req: Req } {
    const top = this.v[0]!
    const lastT = this.t.pop()!
    const lastV = this.v.pop()!
    if (this.t.length > 0) {
      this.t[0] = lastT
      this.v[0] = lastV
      for (let i = 0; ;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < this.t.length && this.t[l]! < this.t[m]!) m = l
        if (r < this.t.length && this.t[r]! < this.t[m]!) m = r
        if (m === i) break
        this.swap(i, m)
        i = m
      }
    }
    return top
  }
  private swap(a: number, b: number): void {
    ;[this.t[a], this.t[b]] = [this.t[b]!, this.t[a]!]
    ;[this.v[a], this.v[b]] = [this.v[b]!, this.v[a]!]
  }
}

interface Result {
  policy: string
  p50: number
  p99: number
  p999: number
  mean: number
  maxPodQueue: number
  queuedAtPod: number
  misrouted: number
  maxQueueWhileIdle: number
}

class Sim {
  now = 0
  readonly pods = new Map<string, Pod>()
  readonly events = new Heap()
  readonly waits: number[] = []
  queuedAtPod = 0
  misrouted = 0
  maxQueueWhileIdle = 0

  toPod(r: Req, dest: string): void {
    const pod = this.pods.get(dest)!
    if (pod.busy < WORKERS) this.begin(pod, r)
    else {
      pod.fifo.push(r)
      this.queuedAtPod++
      if (pod.fifo.length > pod.maxQueue) pod.maxQueue = pod.fifo.length
      for (const other of this.pods.values()) {
        if (other.busy < WORKERS) {
          this.misrouted++
          if (pod.fifo.length > this.maxQueueWhileIdle) this.maxQueueWhileIdle = pod.fifo.length
          break
        }
      }
    }
  }

  begin(pod: Pod, r: Req): void {
    pod.busy++
    r.start = this.now
    this.waits.push(this.now - r.arrival)
    this.events.push(this.now + r.service, pod, r)
  }
}

function run(policy: PolicyName | 'default'): Result {
  const workload = rng(14199)
  const sim = new Sim()
  const th = new Throttler({
    probe: false,
    now: () => sim.now,
    random: rng(7),
    ...(policy === 'default' ? {} : { policyOverride: policy }),
  })
  th.revisionUpserted({
    namespace: 'ns', name: 'r', containerConcurrency: CC, protocol: 'http1', timeoutSeconds: 300,
    responseStartTimeoutSeconds: 0, idleTimeoutSeconds: 0, serviceName: 's', configurationName: 'c', execReadinessProbe: false,
  })
  const dests = Array.from({ length: PODS }, (_, i) => `10.0.0.${i + 1}:8012`)
  for (const d of dests) sim.pods.set(d, { busy: 0, fifo: [], maxQueue: 0 })
  th.endpointsUpdated('ns', 'r', { ready: dests, notReady: [] })

  const xm = (MEAN_SERVICE_MS * (ALPHA - 1)) / ALPHA
  const rate = (UTILISATION * PODS * WORKERS) / MEAN_SERVICE_MS // per ms
  let nextArrival = 0
  for (let n = 0; n < REQUESTS || sim.events.size > 0;) {
    if (n < REQUESTS && (sim.events.size === 0 || nextArrival <= sim.events.peekTime())) {
      sim.now = nextArrival
      const r = new Req(sim)
      r.arrival = sim.now
      r.service = Math.min(MAX_SERVICE_MS, xm / Math.pow(1 - workload(), 1 / ALPHA))
      nextArrival += -Math.log(1 - workload()) / rate
      n++
      th.try('ns/r', r)
      continue
    }
    sim.now = sim.events.peekTime()
    const { pod, req } = sim.events.pop()
    pod.busy--
    const next = pod.fifo.shift()
    if (next !== undefined) sim.begin(pod, next)
    th.release(req)
  }
  th.close()
  const w = sim.waits.sort((a, b) => a - b)
  const q = (p: number) => w[Math.min(w.length - 1, Math.floor(p * w.length))]!
  return {
    policy,
    p50: q(0.5),
    p99: q(0.99),
    p999: q(0.999),
    mean: w.reduce((a, b) => a + b, 0) / w.length,
    maxPodQueue: Math.max(...[...sim.pods.values()].map((p) => p.maxQueue)),
    queuedAtPod: sim.queuedAtPod / REQUESTS,
    misrouted: sim.misrouted / REQUESTS,
    maxQueueWhileIdle: sim.maxQueueWhileIdle,
  }
}

const fmt = (r: Result) =>
  `${r.policy.padEnd(16)} wait p50 ${r.p50.toFixed(1).padStart(6)} ms  p99 ${r.p99.toFixed(1).padStart(7)} ms  ` +
  `p99.9 ${r.p999.toFixed(1).padStart(7)} ms  mean ${r.mean.toFixed(1).padStart(6)} ms  ` +
  `max in-pod queue ${String(r.maxPodQueue).padStart(2)}  queued at a pod ${(100 * r.queuedAtPod).toFixed(1).padStart(4)}%  ` +
  `queued while another pod idled ${(100 * r.misrouted).toFixed(1).padStart(4)}% (deepest ${r.maxQueueWhileIdle})`

t.test('#14199 scenario: least-loaded beats round-robin on tail wait and per-pod queueing', (t) => {
  const rr = run('default') // cc = 10 -> round-robin
  const ll = run('least-loaded')
  const fa = run('first-available')
  const p2c = run('random-choice-2')
  t.comment(`4 pods, cc=${CC}, ${WORKERS} workers/pod, Pareto(${ALPHA}) service mean ${MEAN_SERVICE_MS} ms, ${UTILISATION * 100}% load, ${REQUESTS} requests`)
  for (const r of [rr, ll, p2c, fa]) t.comment(fmt(r))
  t.equal(rr.policy, 'default')
  t.ok(ll.p99 * 2 < rr.p99, `least-loaded p99 ${ll.p99.toFixed(1)} ms vs round-robin ${rr.p99.toFixed(1)} ms: at least 2x better`)
  t.ok(ll.mean < rr.mean, 'lower mean wait')
  t.ok(ll.queuedAtPod < rr.queuedAtPod, 'fewer requests wait behind another inside a pod')
  t.ok(rr.misrouted > 0.05, `round-robin queues ${(100 * rr.misrouted).toFixed(1)}% of requests at a pod while another pod has an idle worker (#14199)`)
  t.equal(ll.misrouted, 0, 'least-loaded never does')
  t.ok(rr.maxQueueWhileIdle >= 4, `round-robin: ${rr.maxQueueWhileIdle} deep at one pod while another idled ("4+ deep")`)
  t.ok(p2c.p99 < rr.p99, 'power of two choices also beats round-robin')
  t.end()
})

t.test('the simulation is deterministic', (t) => {
  t.same(run('least-loaded'), run('least-loaded'))
  t.end()
})
