// The KPA decisions against hand-computed expectations. Stats are recorded
// per second into the revision's buckets (as the scraper and the activator
// would) and the decider is clocked by hand; the arithmetic is in the comments.
// Unless a test says otherwise: containerConcurrency 10, so the target is
// 10 x 0.7 = 7 per instance; stable window 60 s, panic window 6 s, panic
// threshold 200 %, max scale-up rate 1000, max scale-down rate 2, grace 30 s.
import t from 'tap'
import { emptyStat, type Stat } from '@sluice/core/stat-proto'
import { autoscalerConfigFromData, resolveRevisionScaling } from '@sluice/local/autoscaler/config'
import { RevisionMetrics } from '@sluice/local/autoscaler/metric-buckets'
import { Decider, applyBounds, type Decision, type DeciderOptions } from '@sluice/local/autoscaler/decider'

const S = 1000
const A = 'autoscaling.knative.dev/'

interface Harness {
  decider: Decider
  target: number
  /** Plans one stat for second `sec` (recorded when a decision reaches that second). */
  record(sec: number, fields: Partial<Stat>): void
  /** Decides at `sec` seconds with `ready` ready instances. */
  decide(sec: number, ready: number): Decision
}

function harness(opts: { config?: Record<string, string>; cc?: number; annotations?: Record<string, string>; decider?: DeciderOptions } = {}): Harness {
  const spec = resolveRevisionScaling(autoscalerConfigFromData(opts.config ?? {}), { containerConcurrency: opts.cc ?? 10, annotations: opts.annotations })
  const metrics = new RevisionMetrics(spec.stableWindowMs, spec.panicWindowMs)
  const decider = new Decider(spec, opts.decider)
  // Stats are planned ahead and only recorded once the clock reaches their
  // second: data from the future would (correctly) count in the averages.
  let pending: Array<{ sec: number; stat: Stat }> = []
  return {
    decider,
    target: spec.target,
    record: (sec, fields) => {
      pending.push({ sec, stat: { ...emptyStat('p'), ...fields } })
    },
    decide: (sec, ready) => {
      const due = pending.filter((p) => p.sec <= sec).sort((a, b) => a.sec - b.sec)
      pending = pending.filter((p) => p.sec > sec)
      for (const p of due) metrics.record(p.sec * S, p.stat)
      return decider.decide(sec * S, ready, metrics.observe(spec.metric, sec * S))
    },
  }
}

/** Records `conc` concurrency in every second of [from, to]. */
function steady(h: Harness, from: number, to: number, conc: number): void {
  for (let s = from; s <= to; s++) h.record(s, { averageConcurrentRequests: conc })
}

t.test('applyBounds: min, max, 0 = unbounded', async (t) => {
  t.equal(applyBounds(2, 5, 0), 2)
  t.equal(applyBounds(2, 5, 9), 5)
  t.equal(applyBounds(0, 0, 9), 9)
  t.equal(applyBounds(1, 0, 3), 3)
})

t.test('scale-up from 0 on the activator\'s poke stat', async (t) => {
  const h = harness({ config: { 'allow-zero-initial-scale': 'true', 'initial-scale': '0' } })
  t.equal(h.decider.desired, 0, 'initial scale 0')
  t.equal(h.decide(0.5, 0).desired, 0, 'no data: stays at 0')
  // Poke {concurrency 1}: stable = panic = 1 / 1 bucket = 1; readyPods = max(1, 0) = 1;
  // ceil(1 / 7) = 1; maxScaleUp = ceil(1000 x 1) = 1000; maxScaleDown = floor(1 / 2) = 0;
  // panic? 1 / 1 = 1 < 2: no.  -> 1
  h.record(1000, { averageConcurrentRequests: 1, requestCount: 1 })
  const d = h.decide(1000.2, 0)
  t.equal(d.desired, 1)
  t.equal(d.recommended, 1)
  t.equal(d.panicking, false)
  t.equal(d.observedStable, 1)
})

t.test('a burst at zero: 30 requests waiting at the activator scale to 5 at once, in panic', async (t) => {
  const h = harness({ config: { 'allow-zero-initial-scale': 'true', 'initial-scale': '0' } })
  h.record(50, { averageConcurrentRequests: 30 })
  // ceil(30 / 7) = ceil(4.29) = 5 for both windows; 5 / readyPods 1 = 5 >= 2: panic.
  // In panic: max(stable 5, panic 5) = 5.
  const d = h.decide(50.5, 0)
  t.equal(d.desired, 5)
  t.equal(d.panicking, true)
})

t.test('stable scaling follows ceil(stable average / target), limited to floor(ready / 2) down', async (t) => {
  const h = harness()
  steady(h, 0, 59, 21)
  // stable = panic = 21; ceil(21 / 7) = 3; panic? 3 / 2 ready = 1.5 < 2: no.
  // maxScaleDown = floor(2 / 2) = 1, maxScaleUp = 2000.  -> 3
  let d = h.decide(59.5, 2)
  t.equal(d.desired, 3)
  t.equal(d.panicking, false)
  steady(h, 60, 119, 7)
  // At 89.5 the stable window is 30..89: 30 x 21 + 30 x 7 = 840 / 60 = 14 -> ceil(14 / 7) = 2.
  // Panic window 84..89: 7 -> 1; 1 / 3 < 2.  maxScaleDown = floor(3 / 2) = 1.  -> 2
  d = h.decide(89.5, 3)
  t.equal(d.observedStable, 14)
  t.equal(d.observedPanic, 7)
  t.equal(d.desired, 2)
  // At 119.5 the window 60..119 is all 7 -> 1.  -> 1
  t.equal(h.decide(119.5, 3).desired, 1)
})

t.test('panic: entered when the panic window needs 2x the ready instances, never scales down inside, left after a stable window', async (t) => {
  const h = harness()
  steady(h, 0, 59, 7)
  // 7 / 7 = 1 instance; 1 / 1 < 2.
  t.equal(h.decide(59.5, 1).desired, 1)
  steady(h, 60, 65, 70)
  // Panic window 60..65: 70 -> ceil(70 / 7) = 10; 10 / 1 ready >= 2: PANIC (since 65.5).
  // Stable window 6..65: 54 x 7 + 6 x 70 = 798 / 60 = 13.3 -> ceil(1.9) = 2.
  // In panic: max(2, 10) = 10.
  let d = h.decide(65.5, 1)
  t.equal(d.panicking, true)
  t.equal(d.desired, 10)
  steady(h, 66, 140, 7)
  // 71.5, ready 10: panic window 66..71 = 7 -> 1; 1 / 10 < 2, but panic began at 65.5 and
  // 65.5 + 60 = 125.5 is not before 71.5: still panicking.
  // Stable 12..71: 48 x 7 + 6 x 70 + 6 x 7 = 798 / 60 -> 2; maxScaleDown = floor(10 / 2) = 5 -> 5.
  // 5 < the 10 asked for in this panic: stays 10.
  d = h.decide(71.5, 10)
  t.equal(d.panicking, true)
  t.equal(d.desired, 10, 'no scale-down while panicking')
  // 125.5: 125.5 is not before 125.5: still panicking -> 10.
  t.equal(h.decide(125.5, 10).desired, 10)
  // 127.5: 125.5 < 127.5: panic over. Stable 68..127 = 7 -> 1, but at most
  // halved: floor(10 / 2) = 5.
  d = h.decide(127.5, 10)
  t.equal(d.panicking, false)
  t.equal(d.desired, 5)
  // 129.5, ready 5: floor(5 / 2) = 2.  131.5, ready 2: floor(2 / 2) = 1.
  t.equal(h.decide(129.5, 5).desired, 2)
  t.equal(h.decide(131.5, 2).desired, 1)
})

t.test('panic is extended by every new breach of the threshold', async (t) => {
  const h = harness()
  steady(h, 0, 5, 70)
  // 70 / 7 = 10 instances for 1 ready: panic at 5.5, desired 10.
  t.equal(h.decide(5.5, 1).desired, 10)
  steady(h, 6, 50, 7)
  steady(h, 51, 56, 210)
  // 56.5, ready 10: panic window 51..56 = 210 -> 30; 30 / 10 >= 2: breach again, panic now runs from 56.5.
  // Stable 0..56: 6 x 70 + 45 x 7 + 6 x 210 = 420 + 315 + 1260 = 1995 / 57 = 35 -> 5; max(5, 30) = 30.
  let d = h.decide(56.5, 10)
  t.equal(d.observedStable, 35)
  t.equal(d.desired, 30)
  steady(h, 57, 120, 7)
  // 66.5 would have ended a panic begun at 5.5 (5.5 + 60 < 66.5), but the last breach was 56.5.
  d = h.decide(66.5, 30)
  t.equal(d.panicking, true)
  t.equal(d.desired, 30)
  // 118.5: 56.5 + 60 = 116.5 < 118.5: over. Stable 59..118 = 7 -> 1; floor(30 / 2) = 15.
  d = h.decide(118.5, 30)
  t.equal(d.panicking, false)
  t.equal(d.desired, 15)
})

t.test('max scale-up rate: at most ceil(rate x ready) instances', async (t) => {
  const h = harness({ config: { 'max-scale-up-rate': '2' } })
  steady(h, 0, 10, 70)
  // Wants ceil(70 / 7) = 10. ready 1: ceil(2 x 1) = 2.
  t.equal(h.decide(0.5, 1).desired, 2)
  // ready 2: ceil(2 x 2) = 4; ready 4: 8; ready 8: 16, so the 10 wanted.
  t.equal(h.decide(2.5, 2).desired, 4)
  t.equal(h.decide(4.5, 4).desired, 8)
  t.equal(h.decide(6.5, 8).desired, 10)
})

t.test('max scale-up rate: a conservative rate still grows by one instance (Knative\'s example)', async (t) => {
  // MSUR 1.1, observed 3, 2 ready, target 1: ceil(1.1 x 2) = ceil(2.2) = 3, so 3 and not 2.
  const h = harness({ config: { 'max-scale-up-rate': '1.1' }, cc: 0, annotations: { [`${A}target`]: '1', [`${A}targetUtilizationPercentage`]: '100' } })
  t.equal(h.target, 1)
  steady(h, 0, 59, 3)
  const d = h.decide(59.5, 2)
  t.equal(d.panicking, false, '3 / 2 = 1.5 < 2')
  t.equal(d.desired, 3)
})

t.test('max scale-down rate: at least floor(ready / rate) instances', async (t) => {
  const h = harness()
  steady(h, 0, 59, 0)
  // Wants 0; floor(8 / 2) = 4.
  t.equal(h.decide(59.5, 8).desired, 4)
  const h4 = harness({ config: { 'max-scale-down-rate': '4' } })
  steady(h4, 0, 59, 0)
  // floor(8 / 4) = 2; then floor(2 / 4) = 0, but no instance goes before the stable window of activity.
  t.equal(h4.decide(59.5, 8).desired, 2)
  t.equal(h4.decide(61.5, 2).desired, 1)
})

/** Steps the decider every 2 s over [from, to] (at s + 0.5); returns the first time desired hit 0. */
function firstZero(h: Harness, from: number, to: number, ready: (s: number) => number): number | undefined {
  for (let s = from; s <= to; s += 2) {
    if (h.decide(s + 0.5, ready(s)).desired === 0) return s + 0.5
  }
  return undefined
}

/** One request during seconds 0..9 (concurrency 1), nothing after, up to `to`. */
function shortTraffic(h: Harness, to: number): void {
  for (let s = 0; s <= to; s++) h.record(s, { averageConcurrentRequests: s < 10 ? 1 : 0 })
}

t.test('scale to zero: a stable window without traffic, then the grace period', async (t) => {
  const h = harness()
  shortTraffic(h, 200)
  // Up to 68.5 the stable window still holds second 9 (1 / 60 > 0 -> 1 instance).
  // 70.5: window 11..70 is all 0 -> 0 wanted; active since 0.5, for 70 s >= 60: inactive from 70.5.
  // Grace 30 s: 0 at 70.5 + 30 = 100.5 (98.5 is 28 s: still 1).
  t.equal(firstZero(h, 0, 200, () => 1), 100.5)
  const d = h.decider
  t.equal(d.desired, 0)
})

t.test('scale to zero: the pod retention period holds the last instance when longer than the grace period', async (t) => {
  const h = harness({ annotations: { [`${A}scale-to-zero-pod-retention-period`]: '45s' } })
  shortTraffic(h, 200)
  // Inactive from 70.5 as above; max(30, 45) = 45 s: 114.5 is 44 s, 116.5 is 46 s -> 0.
  t.equal(firstZero(h, 0, 200, () => 1), 116.5)
  const short = harness({ annotations: { [`${A}scaleToZeroPodRetentionPeriod`]: '10s' } })
  shortTraffic(short, 200)
  t.equal(firstZero(short, 0, 200, () => 1), 100.5, 'a shorter retention: the grace period rules (max of the two)')
  const cfg = harness({ config: { 'scale-to-zero-pod-retention-period': '40s' } })
  shortTraffic(cfg, 200)
  // 70.5 + 40 = 110.5
  t.equal(firstZero(cfg, 0, 200, () => 1), 110.5, 'retention from config-autoscaler')
})

t.test('scale to zero: a new revision that never sees traffic gets a stable window of activity first', async (t) => {
  const h = harness()
  // The instance is ready from second 50; its queue-proxy reports 0 from then on.
  steady(h, 50, 200, 0)
  // Before 50: no data, the initial scale 1 stands. 50.5: 0 wanted, active since 50.5;
  // 110.5: active 60 s -> inactive; 140.5: 30 s grace -> 0.
  t.equal(firstZero(h, 0, 200, (s) => (s >= 50 ? 1 : 0)), 140.5)
})

t.test('scale to zero is off with enable-scale-to-zero false: one instance stays', async (t) => {
  const h = harness({ config: { 'enable-scale-to-zero': 'false' } })
  shortTraffic(h, 300)
  t.equal(firstZero(h, 0, 300, () => 1), undefined)
  const d = h.decide(300.5, 1)
  t.equal(d.recommended, 0)
  t.equal(d.desired, 1)
  t.match(d.reason, /enable-scale-to-zero/)
})

t.test('traffic during the grace period keeps the instance and restarts the clock', async (t) => {
  const h = harness()
  shortTraffic(h, 200)
  h.record(90, { averageConcurrentRequests: 2 }) // inactive since 70.5, then a request at 90
  // 90.5: stable window 31..90 holds 2 -> 1 wanted; inactivity cleared.
  // Zero again once 90 leaves the window (window 91..150 at 150.5), inactive from 150.5, + 30 = 180.5.
  t.equal(firstZero(h, 0, 200, () => 1), 180.5)
})

t.test('an instance that never gets ready is kept until the activation timeout', async (t) => {
  const run = (opts: DeciderOptions): number | undefined => {
    const h = harness({ config: { 'allow-zero-initial-scale': 'true', 'initial-scale': '0' }, decider: opts })
    h.record(0, { averageConcurrentRequests: 1 })
    t.equal(h.decide(0.5, 0).desired, 1, 'poked up to 1')
    for (let s = 1; s <= 70; s++) h.record(s, { averageConcurrentRequests: 0 })
    // From 60.5 nothing is wanted (window 1..60 is all 0) but no instance ever became
    // ready: Knative waits for the activation timeout, counted from the first
    // evaluation with an instance wanted and none ready (2.5).
    return firstZero(h, 2, 700, () => 0)
  }
  t.equal(run({ activationTimeoutMs: 30_000 }), 60.5, '2.5 + 30 s is long past when 0 is first wanted (60.5)')
  t.equal(run({}), 632.5, 'default 630 s (progress deadline 600 s + 30 s): 2.5 + 630')
})

t.test('min-scale, max-scale and initial-scale bound the decision', async (t) => {
  const min = harness({ annotations: { [`${A}minScale`]: '2' } })
  t.equal(min.decider.desired, 2, 'initial scale 1 raised to min-scale 2')
  steady(min, 0, 10, 0)
  // 0 wanted, floor(2 / 2) = 1 -> 1, raised to 2.
  let d = min.decide(10.5, 2)
  t.equal(d.recommended, 1)
  t.equal(d.desired, 2)
  t.equal(d.reason, 'min-scale 2')

  const max = harness({ annotations: { [`${A}max-scale`]: '3' } })
  steady(max, 0, 10, 700)
  // ceil(700 / 7) = 100 (in panic), capped at 3.
  d = max.decide(10.5, 1)
  t.equal(d.recommended, 100)
  t.equal(d.desired, 3)
  t.equal(d.reason, 'max-scale 3')

  const unbounded = harness()
  steady(unbounded, 0, 10, 7000)
  // ceil(7000 / 7) = 1000 = ceil(1000 x 1); max-scale 0 is unbounded.
  t.equal(unbounded.decide(10.5, 1).desired, 1000)
})

t.test('initial scale: kept until reached once, then the decisions rule', async (t) => {
  const h = harness({ annotations: { [`${A}initialScale`]: '3' } })
  t.equal(h.decider.desired, 3)
  t.equal(h.decide(0.5, 0).desired, 3, 'no data yet')
  steady(h, 1, 20, 0)
  // 0 wanted, floor(1 / 2) = 0, but 3 has never been ready: initial scale is the floor.
  let d = h.decide(1.5, 1)
  t.equal(d.desired, 3)
  t.equal(d.reason, 'initial-scale 3')
  // 3 ready: initialised. 0 wanted, floor(3 / 2) = 1.
  d = h.decide(3.5, 3)
  t.equal(d.desired, 1)
  t.equal(d.reason, '')
  // Dropping to 1 ready later does not bring the initial scale back.
  t.equal(h.decide(5.5, 1).desired, 1)

  const z = harness({ config: { 'allow-zero-initial-scale': 'true' }, annotations: { [`${A}initial-scale`]: '0', [`${A}min-scale`]: '1' } })
  t.equal(z.decider.desired, 1, 'initial 0 under min-scale 1: 1')
})

t.test('rps metric: ceil(observed requests per second / (200 x 0.7))', async (t) => {
  const h = harness({ cc: 0, annotations: { [`${A}metric`]: 'rps' } })
  t.equal(h.target, 140)
  for (let s = 0; s < 60; s++) {
    // Queue-proxies (aggregated): 300 rps, 20 of them through the activator; lots of concurrency.
    h.record(s, { averageConcurrentRequests: 1000, requestCount: 300, proxiedRequestCount: 20 })
    // The activator's own stat: the 20.
    h.record(s, { averageConcurrentRequests: 5, requestCount: 20 })
  }
  // rps = (300 - 20) + 20 = 300; ceil(300 / 140) = ceil(2.14) = 3; 3 / 2 < 2.
  const d = h.decide(59.5, 2)
  t.equal(d.observedStable, 300)
  t.equal(d.desired, 3, 'concurrency plays no part')

  const t50 = harness({ cc: 0, annotations: { [`${A}metric`]: 'rps', [`${A}target`]: '100', [`${A}targetUtilizationPercentage`]: '50' } })
  steady(t50, 0, 59, 0)
  for (let s = 0; s < 60; s++) t50.record(s, { requestCount: 300 })
  // target 100 x 50 % = 50; ceil(300 / 50) = 6; 6 / 2 >= 2: panic, max(6, 6) = 6.
  const e = t50.decide(59.5, 2)
  t.equal(e.desired, 6)
  t.equal(e.panicking, true)
})

t.test('no data in the stable window: the previous recommendation stands', async (t) => {
  const h = harness()
  steady(h, 0, 59, 21)
  t.equal(h.decide(59.5, 2).desired, 3)
  // Last write at 59; at 130 more than a window (60 s) has passed: no signal.
  const d = h.decide(130, 2)
  t.equal(d.hasData, false)
  t.equal(d.desired, 3)
  t.equal(d.recommended, 3)
})
