// The whole cycle through the real local stack — ingress, activator process,
// queue-proxy and app processes, the KPA autoscaler — with real HTTP:
// one instance → many under load → zero after the grace period → one again
// on the next request, with not a single failed request on the way.

import t from 'tap'
import { join } from 'node:path'
import type { ScaleEvent } from '@sluice/local/autoscaler/autoscaler'
import { FIXTURES, revision, send, sleep, startLoad, startRuntime, waitFor, type RevisionStatus } from '../../helpers/local.ts'

const REV = 'cycle-00001'

// Hand computation for fixtures/cycle-service.yaml under CONCURRENCY clients:
//   target per instance = min(annotation target 2, containerConcurrency 2) × 70% = 1.4
//   observed concurrency ≈ CONCURRENCY = 5 (closed loop, 100 ms per answer)
//   desired = ceil(5 / 1.4) = ceil(3.57) = 4 instances
// (observed anywhere in (4.2, 5.6] gives 4; ±1 allows for the ramp and scrape timing).
const CONCURRENCY = 5
const TARGET = 1.4
const EXPECTED = Math.ceil(CONCURRENCY / TARGET)
const LOAD_MS = 12_000

/** Knative's KPA formula for one decision, from the autoscaler's own recorded averages. */
function kpaFormula(a: NonNullable<RevisionStatus['autoscaler']>): { stable: number; panic: number } {
  const maxScaleDown = Math.floor(a.readyPods / 2) // max-scale-down-rate 2
  const stable = Math.max(Math.ceil(a.observedStable / a.target), maxScaleDown)
  const panic = Math.max(Math.ceil(a.observedPanic / a.target), maxScaleDown)
  return { stable, panic }
}

/**
 * Scale events that disagree with the KPA formula applied to the exact inputs
 * the autoscaler recorded (the log line rounds them: 2.84 prints as 2.8, and
 * ceil(2.8 / 1.4) = 2 where the decision rightly was ceil(2.84 / 1.4) = 3).
 */
function eventMismatches(events: readonly ScaleEvent[]): string[] {
  const out: string[] = []
  for (const e of events) {
    const d = e.decision
    if (e.cause !== 'tick' || !d.hasData || d.reason !== '' || e.to !== d.recommended) continue // bounds, zero handling, activation
    const maxScaleDown = Math.floor(d.readyPods / 2) // max-scale-down-rate 2
    const observed = d.panicking ? d.observedPanic : d.observedStable
    const want = Math.max(Math.ceil(observed / e.target), maxScaleDown)
    if (d.panicking ? e.to < want : e.to !== want) out.push(`${e.from} -> ${e.to}: ${JSON.stringify(d)} (formula: ${want})`)
  }
  return out
}

t.test('one → many under load (KPA formula) → fewer → zero after the grace period → cold start, zero failed requests', async (t) => {
  const run = await startRuntime(join(FIXTURES, 'cycle-service.yaml'))
  t.teardown(() => run.stop())
  const { rt, url } = run

  // Initial scale 1: one ready instance before any traffic.
  t.equal(revision(rt, REV).actual, 1, 'initial scale: 1 ready instance')
  t.equal(revision(rt, REV).desired, 1)

  // Many: steady load at fixed concurrency.
  const load = startLoad(url, { concurrency: CONCURRENCY })
  let maxActual = 0
  let maxDesired = 0
  const formulaChecks: string[] = []
  const samples: string[] = []
  // On failure, show what the runtime logged and what the autoscaler decided.
  t.teardown(() => { if (!t.passing()) t.comment(`runtime log:\n${run.lines.join('\n')}\ndecisions sampled under load:\n${samples.join('\n')}`) })
  const loadEnd = performance.now() + LOAD_MS
  while (performance.now() < loadEnd) {
    await sleep(250)
    const r = revision(rt, REV)
    maxActual = Math.max(maxActual, r.actual)
    maxDesired = Math.max(maxDesired, r.desired)
    const a = r.autoscaler
    if (a === null || a.recommended < 0 || !Number.isFinite(a.observedStable)) continue
    // Every decision follows the formula from the autoscaler's recorded averages.
    const f = kpaFormula(a)
    samples.push(JSON.stringify({ actual: r.actual, desired: r.desired, ...a }))
    if (!a.panicking && a.recommended !== f.stable) formulaChecks.push(`stable: recommended ${a.recommended}, formula ${f.stable} (${JSON.stringify(a)})`)
    if (a.panicking && a.recommended < Math.max(f.stable, f.panic)) formulaChecks.push(`panic: recommended ${a.recommended} < formula ${Math.max(f.stable, f.panic)} (${JSON.stringify(a)})`)
  }
  const atEnd = revision(rt, REV)
  const loaded = await load.stop()
  t.equal(atEnd.autoscaler?.target, TARGET, 'the autoscaler aims at 2 × 70% = 1.4 per instance')
  t.same(formulaChecks, [], 'every sampled decision matches ceil(observed / target) (stable) or provisions at least that much (panic)')
  t.ok(Math.abs(atEnd.desired - EXPECTED) <= 1, `desired at the end of the load ${atEnd.desired} ≈ ${EXPECTED} (±1)`)
  t.ok(maxActual >= EXPECTED - 1 && maxActual <= EXPECTED + 1, `ready instances reached ${maxActual} ≈ ${EXPECTED} (±1)`)
  t.ok(maxDesired <= EXPECTED + 1, `never asked for more than ${EXPECTED + 1} (asked ${maxDesired})`)
  t.ok(loaded.ok > 200, `the load was served (${loaded.ok} requests)`)
  t.same(loaded.failures, {}, 'no request failed while scaling up')

  // Fewer: one client keeps sending while instances are drained and stopped
  // (ceil(1 / 1.4) = 1; down at most by half per decision).
  const trickle = startLoad(url, { concurrency: 1 })
  const down = await waitFor(() => revision(rt, REV).instances.length < maxActual, 12_000, 100)
  await sleep(1500)
  const trickled = await trickle.stop()
  t.ok(down, `scaled down to ${revision(rt, REV).instances.length} instances with traffic flowing`)
  t.same(trickled.failures, {}, `no request failed while scaling down (${trickled.ok} requests)`)

  // Every scale event follows the formula from the exact averages behind it.
  const events = rt.scaleEvents(`default/${REV}`)
  t.ok(events.length >= 2, `scale events were recorded (${events.length})`)
  t.same(eventMismatches(events), [], 'each decision is ceil(observed / target), halving at most on the way down')

  // Zero: stable window (6 s) for the average to fall, then the grace period (6 s).
  const stoppedAt = performance.now()
  const zero = await waitFor(() => { const r = revision(rt, REV); return r.desired === 0 && r.instances.length === 0 }, 40_000, 100)
  t.ok(zero, `back to zero instances ${((performance.now() - stoppedAt) / 1000).toFixed(1)} s after the load stopped`)
  t.match(run.lines.join('\n'), /autoscaler: default\/cycle-00001 1 -> 0 \(.*scale to zero: inactive for/, 'the scale to zero is logged in one line')

  // One again: the next request cold-starts an instance and is answered.
  const cold = await send(url, { timeoutMs: 15_000 })
  t.equal(cold.status, 200, `a request at zero cold-starts an instance and gets 200 (in ${cold.ms.toFixed(0)} ms)`)
  t.equal(JSON.parse(cold.body).revision, REV)
  // The activator probes the starting instance itself and may answer before
  // the runtime's own readiness poll marks it ready (Knative's probe
  // optimisation), so wait for the runtime to catch up, then check it is one.
  await waitFor(() => revision(rt, REV).actual >= 1, 5_000, 25)
  t.equal(revision(rt, REV).actual, 1, 'one ready instance after the cold start')
  t.match(run.lines.join('\n'), /autoscaler: default\/cycle-00001 0 -> 1 \(.*activator poke\)/, 'the cold start\'s scale-up is logged in one line')
})
