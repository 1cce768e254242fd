import t, { type Test } from 'tap'
import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { MAX_CAPACITY, Throttler, type RejectReason, type ThrottleWaiter, type ThrottlerOptions } from '@sluice/activator/net/throttler'
import type { PodTracker } from '@sluice/activator/net/lb-policy'
import type { QueueNode } from '@sluice/activator/net/revision-queue'
import type { RevisionInfo } from '@sluice/activator/revision'
import { close, listen } from '../../helpers/servers.ts'

class Req implements ThrottleWaiter {
  readonly id: number
  dest: string | null = null
  destAt = 0
  dests = 0
  reason: RejectReason | null = null
  retryAfter = -1
  queuedIn?: object | null
  queuePrev?: QueueNode | null
  queueNext?: QueueNode | null
  queueBytes?: number
  throttleRevision?: ThrottleWaiter['throttleRevision']
  throttleTracker?: PodTracker | null
  throttleStart?: number
  constructor(id = 0) {
    this.id = id
  }
  onDest(dest: string): void {
    this.dest = dest
    this.destAt = performance.now()
    this.dests++
  }
  onReject(reason: RejectReason, retryAfterSec: number): void {
    this.reason = reason
    this.retryAfter = retryAfterSec
  }
}

function rev(name: string, cc: number, extra: Partial<RevisionInfo> = {}): RevisionInfo {
  return {
    namespace: 'ns', name, containerConcurrency: cc, protocol: 'http1', timeoutSeconds: 300,
    responseStartTimeoutSeconds: 0, idleTimeoutSeconds: 0, serviceName: 's', configurationName: 'c',
    execReadinessProbe: false, ...extra,
  }
}

const pods = (n: number) => Array.from({ length: n }, (_, i) => `10.0.0.${String(i).padStart(2, '0')}:8012`)

/** A throttler without probing: K8s-ready endpoints are the backends. */
function setup(cc: number, nPods: number, opts: ThrottlerOptions = {}) {
  const th = new Throttler({ probe: false, ...opts })
  th.revisionUpserted(rev('r', cc))
  th.endpointsUpdated('ns', 'r', { ready: pods(nPods), notReady: [] })
  return { th, rt: th.get('ns/r')!, key: 'ns/r' }
}

function tryN(th: Throttler, n: number, key = 'ns/r', bytes = 0, remainingMs = Infinity): Req[] {
  return Array.from({ length: n }, (_, i) => {
    const r = new Req(i)
    th.try(key, r, bytes, remainingMs)
    return r
  })
}

t.test('capacity: cc x pods; cc=0 open (2^31-1) with any pod; no pods -> 0; clamped to 2^31-1', (t) => {
  t.equal(setup(10, 3).rt.capacity, 30)
  t.equal(setup(1, 4).rt.capacity, 4)
  t.equal(setup(0, 3).rt.capacity, MAX_CAPACITY)
  t.equal(setup(0, 0).rt.capacity, 0)
  t.equal(setup(5, 0).rt.capacity, 0)
  t.equal(setup(2 ** 30, 3).rt.capacity, MAX_CAPACITY)
  const { th, rt } = setup(10, 3)
  th.endpointsUpdated('ns', 'r', { ready: pods(1), notReady: [] })
  t.equal(rt.capacity, 10, 'recomputed on every backend change')
  t.end()
})

t.test('cc=1: one request per pod at a time; a freed pod takes the next waiter', (t) => {
  const { th, rt } = setup(1, 2)
  const [a, b, c] = tryN(th, 3)
  t.not(a!.dest, null)
  t.not(b!.dest, null)
  t.not(a!.dest, b!.dest, 'different pods')
  t.equal(c!.dest, null, 'third waits')
  t.equal(rt.queue.length, 1)
  t.ok(th.release(a!))
  t.equal(c!.dest, a!.dest, 'the freed pod')
  for (const d of pods(2)) t.equal(rt.tracker(d)!.inFlight, 1)
  t.notOk(th.release(a!), 'releasing twice is a no-op')
  t.equal(rt.inFlight, 2)
  t.end()
})

t.test('cc=1 uses first-available: the lowest pod with a free slot', (t) => {
  const { th } = setup(1, 3)
  const [a, b] = tryN(th, 2)
  t.equal(a!.dest, pods(3)[0])
  t.equal(b!.dest, pods(3)[1])
  th.release(a!)
  t.equal(tryN(th, 1)[0]!.dest, pods(3)[0])
  t.end()
})

t.test('cc=4 uses round-robin across pods', (t) => {
  const { th } = setup(4, 3)
  t.same(tryN(th, 6).map((r) => r.dest), [...pods(3), ...pods(3)])
  t.end()
})

t.test('cc=0: requests wait with no pods, all pass once one pod exists', (t) => {
  const { th, rt } = setup(0, 0)
  const waiting = tryN(th, 100)
  t.ok(waiting.every((r) => r.dest === null))
  th.endpointsUpdated('ns', 'r', { ready: pods(1), notReady: [] })
  t.ok(waiting.every((r) => r.dest === pods(1)[0]), 'all released at once')
  const more = tryN(th, 1000)
  t.ok(more.every((r) => r.dest !== null), 'no limit')
  t.equal(rt.inFlight, 1100)
  t.end()
})

t.test('cc=0 with several pods spreads by power of two choices', (t) => {
  let seed = 1
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647)
  const { th, rt } = setup(0, 4, { random })
  tryN(th, 400)
  const loads = pods(4).map((d) => rt.tracker(d)!.inFlight)
  t.ok(Math.max(...loads) - Math.min(...loads) <= 2, `balanced: ${loads}`)
  t.end()
})

t.test('slicing: 10 pods, 3 activators -> this activator gets its slice and capacity cc x slice', (t) => {
  const { th, rt } = setup(2, 10, { podIP: '10.1.0.2' })
  t.equal(rt.capacity, 20, 'index unknown: all pods')
  th.activatorsUpdated('ns', 'r', ['10.1.0.9', '10.1.0.1', '10.1.0.5'])
  t.equal(rt.activatorIndex, -1, 'own IP not listed: ignored')
  th.activatorsUpdated('ns', 'r', ['10.1.0.3', '10.1.0.1', '10.1.0.2'])
  t.equal(rt.activatorIndex, 1, 'position among the sorted IPs')
  t.equal(rt.numActivators, 3)
  t.same(rt.assignedDests, pods(10).slice(3, 6))
  t.equal(rt.capacity, 6)
  th.activatorsUpdated('ns', 'r', ['10.1.0.2', '10.1.0.3', '10.1.0.4'])
  t.same(rt.assignedDests, [...pods(10).slice(0, 3), pods(10)[9]], 'index 0 also takes the remainder pod')
  t.equal(rt.capacity, 8)
  const got = new Set(tryN(th, 20).map((r) => r.dest).filter((d) => d !== null))
  t.same([...got].sort(), rt.assignedDests, 'only assigned pods receive requests')
  t.equal(rt.queue.length, 12)
  t.end()
})

t.test('slicing does not apply to cc=0: every pod is used', (t) => {
  const { th, rt } = setup(0, 10, { podIP: '10.1.0.2' })
  th.activatorsUpdated('ns', 'r', ['10.1.0.1', '10.1.0.2', '10.1.0.3'])
  t.equal(rt.assignedDests.length, 10)
  t.end()
})

t.test('activator positions and endpoints seen before the revision are applied when it arrives', (t) => {
  const th = new Throttler({ probe: false, podIP: '10.1.0.1' })
  th.activatorsUpdated('ns', 'r', ['10.1.0.1', '10.1.0.2'])
  th.endpointsUpdated('ns', 'r', { ready: pods(4), notReady: [] })
  th.revisionUpserted(rev('r', 3))
  const rt = th.get('ns/r')!
  t.same(rt.assignedDests, pods(4).slice(0, 2))
  t.equal(rt.capacity, 6)
  t.end()
})

t.test('waiting requests go to a newly healthy pod immediately (< 50 ms)', (t) => {
  const { th, rt } = setup(10, 0)
  const waiting = tryN(th, 15)
  const at = performance.now()
  rt.updateDests(pods(1))
  const lag = Math.max(...waiting.slice(0, 10).map((r) => r.destAt)) - at
  t.ok(lag < 50, `released ${lag.toFixed(3)} ms after the pod became healthy`)
  t.equal(waiting.filter((r) => r.dest !== null).length, 10, 'up to the new capacity')
  t.same(waiting.filter((r) => r.dest !== null).map((r) => r.id), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'oldest first')
  rt.updateDests(pods(2))
  t.ok(waiting.every((r) => r.dest !== null), 'the rest go to the second pod')
  t.end()
})

t.test('FIFO: waiters are served in arrival order as slots free up', (t) => {
  const { th } = setup(1, 1)
  const rs = tryN(th, 5)
  const order: number[] = []
  for (let i = 0; i < 5; i++) {
    const running = rs.find((r) => r.dests === 1 && !order.includes(r.id))!
    order.push(running.id)
    th.release(running)
  }
  t.same(order, [0, 1, 2, 3, 4])
  t.end()
})

t.test('count shedding: beyond maxQueued -> full, Retry-After default without an estimate', (t) => {
  const { th, rt } = setup(1, 1, { revisionLimits: { maxQueued: 2 } })
  const rs = tryN(th, 4)
  t.equal(rs[0]!.dest, pods(1)[0])
  t.equal(rs[1]!.reason, null)
  t.equal(rs[2]!.reason, null)
  t.equal(rs[3]!.reason, 'full')
  t.equal(rs[3]!.retryAfter, 5)
  t.equal(rt.queue.shedFull, 1)
  t.equal(th.budget.shedFull, 1)
  t.end()
})

t.test('Retry-After follows the backlog: queued x mean service time / capacity', (t) => {
  let clock = 0
  const { th } = setup(1, 1, { revisionLimits: { maxQueued: 2 }, now: () => clock })
  for (let i = 0; i < 5; i++) {
    const [r] = tryN(th, 1)
    clock += 2000
    th.release(r!)
  }
  const rs = tryN(th, 4)
  t.equal(rs[3]!.reason, 'full')
  t.equal(rs[3]!.retryAfter, 4, '2 queued x 2 s / 1 slot')
  t.end()
})

t.test('byte shedding: per revision and activator-wide', (t) => {
  const th = new Throttler({ probe: false, revisionLimits: { maxBufferedBytes: 1000 }, totalLimits: { maxBufferedBytes: 1500 } })
  th.revisionUpserted(rev('a', 1))
  th.revisionUpserted(rev('b', 1))
  const a = tryN(th, 3, 'ns/a', 600)
  t.equal(a[0]!.reason, null, 'no pods: waits')
  t.equal(a[1]!.reason, 'full', '1200 > 1000 for the revision')
  t.equal(a[2]!.reason, 'full')
  const b = tryN(th, 2, 'ns/b', 800)
  t.equal(b[0]!.reason, null)
  t.equal(b[1]!.reason, 'full', '600 + 800 + 800 > 1500 activator-wide')
  t.equal(th.budget.bufferedBytes, 1400)
  th.endpointsUpdated('ns', 'a', { ready: pods(1), notReady: [] })
  t.equal(a[0]!.dest, pods(1)[0])
  t.equal(th.budget.bufferedBytes, 800, 'a dispatched request no longer counts')
  t.end()
})

t.test('a request that finds a free pod is never shed by the queue limits', (t) => {
  const { th } = setup(1, 1, { revisionLimits: { maxQueued: 1, maxBufferedBytes: 10 } })
  const [r] = tryN(th, 1, 'ns/r', 1_000_000, 0)
  t.equal(r!.dest, pods(1)[0])
  t.end()
})

t.test('deadline shedding (opt-in): expected wait > remaining deadline -> deadline', (t) => {
  let clock = 0
  const { th, rt } = setup(1, 1, { now: () => clock, queue: { shedOnDeadlineEstimate: true } })
  for (let i = 0; i < 5; i++) {
    const [r] = tryN(th, 1)
    clock += 1000
    th.release(r!)
  }
  t.equal(rt.queue.meanServiceMs, 1000)
  const [busy] = tryN(th, 1)
  t.not(busy!.dest, null)
  const [late] = tryN(th, 1, 'ns/r', 0, 500)
  t.equal(late!.reason, 'deadline', 'expects 1000 ms, has 500')
  t.ok(late!.retryAfter >= 1)
  const [fits] = tryN(th, 1, 'ns/r', 0, 1500)
  t.equal(fits!.reason, null)
  const [second] = tryN(th, 1, 'ns/r', 0, 1500)
  t.equal(second!.reason, 'deadline', 'second in line expects 2000 ms')
  t.equal(th.budget.shedDeadline, 2)
  t.end()
})

t.test('by default the estimate sheds nothing: a request waits for its own timeout (pods may be on their way)', (t) => {
  let clock = 0
  const { th } = setup(1, 1, { now: () => clock })
  for (let i = 0; i < 5; i++) {
    const [r] = tryN(th, 1)
    clock += 1000
    th.release(r!)
  }
  tryN(th, 1)
  const waiting = tryN(th, 3, 'ns/r', 0, 500)
  t.same(waiting.map((w) => w.reason), [null, null, null], 'expected waits of 1-3 s against 500 ms: all admitted')
  t.equal(th.budget.shedDeadline, 0)
  const [spent] = tryN(th, 1, 'ns/r', 0, 0)
  t.equal(spent!.reason, 'deadline', 'a deadline already spent is still refused')
  t.end()
})

t.test('scale from zero (no pods): requests with a deadline wait instead of being shed', (t) => {
  const { th, rt } = setup(1, 0)
  const rs = tryN(th, 10, 'ns/r', 0, 1000)
  t.ok(rs.every((r) => r.reason === null))
  t.equal(rt.queue.length, 10)
  t.end()
})

t.test('cancel while waiting: slot and bytes freed at once, the request is never dispatched', (t) => {
  const { th, rt } = setup(1, 1)
  const [a, b, c] = tryN(th, 3, 'ns/r', 100)
  t.equal(th.budget.bufferedBytes, 200)
  t.ok(th.cancel(b!))
  t.equal(rt.queue.length, 1)
  t.equal(th.budget.bufferedBytes, 100)
  t.equal(th.budget.queued, 1)
  t.notOk(th.cancel(b!), 'twice')
  t.notOk(th.cancel(a!), 'a running request is not cancelled (release it instead)')
  th.release(a!)
  t.equal(c!.dest, pods(1)[0])
  t.equal(b!.dest, null)
  t.equal(b!.throttleRevision, null, 'no reference kept')
  t.end()
})

t.test('lost race: the request stays at the head and is served first on the next chance', (t) => {
  let decline = 0
  const { th, rt } = setup(4, 2, {
    policyOverride: (trackers) => {
      if (decline > 0) {
        decline--
        return null
      }
      for (const tr of trackers) if (tr.tryReserve()) return tr
      return null
    },
  })
  const [first] = tryN(th, 1)
  t.not(first!.dest, null)
  decline = 1
  const [head] = tryN(th, 1)
  t.equal(head!.dest, null, 'declined although capacity is free')
  t.equal(rt.lostRaces, 1)
  t.equal(rt.queue.length, 1)
  const [later] = tryN(th, 1)
  t.equal(later!.dest, null, 'a later arrival does not overtake the re-enqueued head')
  th.release(first!)
  t.not(head!.dest, null, 'head served on the next release')
  t.not(later!.dest, null)
  t.ok(head!.destAt <= later!.destAt, 'in order')
  t.end()
})

t.test('policy override: least-loaded picks the pod with fewest in flight', (t) => {
  const { th, rt } = setup(10, 2, { policyOverride: 'least-loaded' })
  const rs = tryN(th, 4)
  t.same(pods(2).map((d) => rt.tracker(d)!.inFlight), [2, 2])
  th.release(rs[1]!)
  th.release(rs[3]!)
  t.equal(tryN(th, 1)[0]!.dest, pods(2)[1], 'the emptier pod')
  t.end()
})

t.test('a removed pod keeps its in-flight count if it comes back (cc=1 never exceeded)', (t) => {
  const { th, rt } = setup(1, 1)
  const [a] = tryN(th, 1)
  rt.updateDests([])
  t.equal(rt.capacity, 0)
  rt.updateDests(pods(1))
  const [b] = tryN(th, 1)
  t.equal(b!.dest, null, 'the pod still runs a')
  th.release(a!)
  t.equal(b!.dest, pods(1)[0])
  th.release(b!)
  rt.updateDests([])
  t.equal(rt.tracker(pods(1)[0]!), undefined, 'idle removed tracker forgotten')
  t.end()
})

t.test('release of a request whose pod was removed still frees revision capacity', (t) => {
  const { th, rt } = setup(1, 2)
  const [a, b] = tryN(th, 2)
  rt.updateDests([pods(2)[1]!])
  const [c] = tryN(th, 1)
  t.equal(c!.dest, null, 'in-flight 2 >= capacity 1')
  th.release(a!)
  t.equal(c!.dest, null, 'the remaining pod is still busy with b')
  th.release(b!)
  t.equal(c!.dest, pods(2)[1])
  t.equal(rt.tracker(pods(2)[0]!), undefined)
  t.end()
})

t.test('reportFailure (no probing): the pod leaves at once', (t) => {
  const { th, rt } = setup(2, 2)
  th.reportFailure('ns/r', pods(2)[0]!)
  t.same(rt.healthyDests, [pods(2)[1]])
  t.equal(rt.capacity, 2)
  t.end()
})

t.test('unknown revision: no-revision; lookupRevision creates the throttler lazily', (t) => {
  const th = new Throttler({ probe: false })
  const [r] = tryN(th, 1, 'ns/nope')
  t.equal(r!.reason, 'no-revision')
  t.equal(th.rejectedNoRevision, 1)
  const lazy = new Throttler({ probe: false, lookupRevision: (k) => (k === 'ns/x' ? rev('x', 1) : undefined) })
  const [w] = tryN(lazy, 1, 'ns/x')
  t.equal(w!.reason, null, 'waits for endpoints')
  lazy.endpointsUpdated('ns', 'x', { ready: pods(1), notReady: [] })
  t.equal(w!.dest, pods(1)[0])
  t.end()
})

t.test('revision deleted: waiting requests are rejected, later ones get no-revision', (t) => {
  const { th } = setup(1, 1)
  const [a, b] = tryN(th, 2)
  th.revisionDeleted('ns', 'r')
  t.equal(b!.reason, 'no-revision')
  t.equal(th.budget.queued, 0)
  t.ok(th.release(a!), 'a running request can still be released')
  t.equal(tryN(th, 1)[0]!.reason, 'no-revision')
  t.end()
})

t.test('endpoints deleted: capacity 0, new requests wait', (t) => {
  const { th, rt } = setup(1, 2)
  th.endpointsDeleted('ns', 'r')
  t.equal(rt.capacity, 0)
  t.equal(tryN(th, 1)[0]!.dest, null)
  t.end()
})

t.test('a waiter whose onDest releases synchronously does not break dispatch order', (t) => {
  const { th, rt } = setup(1, 1)
  const [a] = tryN(th, 1)
  const order: number[] = []
  class Bouncer extends Req {
    override onDest(dest: string): void {
      super.onDest(dest)
      order.push(this.id)
      th.release(this) // e.g. the connection failed at once
    }
  }
  const bs = [new Bouncer(1), new Bouncer(2), new Bouncer(3)]
  for (const b of bs) th.try('ns/r', b)
  th.release(a!)
  t.same(order, [1, 2, 3])
  t.equal(rt.inFlight, 0)
  t.equal(rt.queue.length, 0)
  t.end()
})

/** A queue-proxy stand-in whose probe answer can be switched; records when it first answered `queue`. */
async function probedPod(t: Test, ok: boolean) {
  const state = { ok, okAt: 0 }
  const server = http.createServer((_req, res) => {
    if (!state.ok) {
      res.writeHead(503).end()
      return
    }
    if (state.okAt === 0) state.okAt = performance.now()
    res.end('queue')
  })
  const port = await listen(server)
  t.teardown(() => close(server))
  return { state, dest: `127.0.0.1:${port}` }
}

t.test('with probing: waiting requests go to a pod within 50 ms of its first passing probe', async (t) => {
  const th = new Throttler({ probeFrequencyMs: 20 })
  t.teardown(() => th.close())
  const p = await probedPod(t, false)
  th.revisionUpserted(rev('r', 2))
  th.endpointsUpdated('ns', 'r', { ready: [], notReady: [p.dest] })
  const rs = tryN(th, 3)
  await sleep(60)
  t.ok(rs.every((r) => r.dest === null), 'pod not healthy yet')
  p.state.ok = true
  const end = performance.now() + 1000
  while (rs[1]!.dest === null && performance.now() < end) await sleep(2)
  t.equal(rs[0]!.dest, p.dest)
  t.equal(rs[1]!.dest, p.dest)
  t.equal(rs[2]!.dest, null, 'cc=2')
  const lag = rs[1]!.destAt - p.state.okAt
  t.ok(lag >= 0 && lag < 50, `released ${lag.toFixed(1)} ms after the probe answered`)
})

t.test('with probing: reportFailure removes the pod at once; it returns after a passing re-probe', async (t) => {
  const th = new Throttler({ probeFrequencyMs: 20 })
  t.teardown(() => th.close())
  const p = await probedPod(t, true)
  th.revisionUpserted(rev('r', 1))
  th.endpointsUpdated('ns', 'r', { ready: [p.dest], notReady: [] })
  const rt = th.get('ns/r')!
  const end = performance.now() + 1000
  while (rt.capacity === 0 && performance.now() < end) await sleep(2)
  t.equal(rt.capacity, 1)
  const [a] = tryN(th, 1)
  p.state.ok = false
  th.reportFailure('ns/r', a!.dest!)
  th.release(a!)
  t.equal(rt.capacity, 0, 'out at once')
  const [b] = tryN(th, 1)
  await sleep(80)
  t.equal(b!.dest, null, 'not reused while its probe fails')
  p.state.ok = true
  while (b!.dest === null && performance.now() < end + 1000) await sleep(2)
  t.equal(b!.dest, p.dest)
})
