// The activator's per-revision concurrency reports (spec §2.11, §3.4, quirk
// §7.9): Knative's TestStats cases with an injected clock (times in ms), the
// request_concurrency gauge, garbage collection, and the batches on the wire.
import t from 'tap'
import type { WireStatMessage } from '@sluice/core/stat-proto'
import { createLogger } from '@sluice/core/logging'
import { ConcurrencyReporter } from '@sluice/activator/stats/concurrency-reporter'
import { StatSender } from '@sluice/activator/stats/stat-sender'
import { startTestAutoscaler } from '../../helpers/test-autoscaler.ts'

const POD = 'the-best-activator'
const NS = 'test'

/** [name, averageConcurrentRequests, requestCount] per message. */
type Row = [string, number, number]

function harness() {
  const clock = { now: 0 }
  const batches: WireStatMessage[][] = []
  const gauge: Array<[string, number]> = []
  const cr = new ConcurrencyReporter({
    podName: POD,
    send: (msgs) => { batches.push(msgs) },
    now: () => clock.now,
    onReport: (_ns, name, c) => gauge.push([name, c]),
  })
  const rows = (): Row[][] => batches.map((b) => b.map((m) => [m.name, m.stat!.averageConcurrentRequests, m.stat!.requestCount]))
  return { clock, batches, gauge, cr, rows }
}

/** Applies Knative-style ops: in/out of a revision at a time, or a tick. */
function run(h: ReturnType<typeof harness>, ops: Array<['in' | 'out', string, number] | ['tick', number]>): void {
  for (const op of ops) {
    if (op[0] === 'tick') {
      h.clock.now = op[1]
      h.cr.tick()
    } else {
      h.clock.now = op[2]
      if (op[0] === 'in') h.cr.requestIn(NS, op[1])
      else h.cr.requestOut(NS, op[1])
    }
  }
}

t.test('TestStats: scale-from-zero sends one (1, 1) poke per revision at once', async (t) => {
  const h = harness()
  run(h, [['in', 'rev1', 0], ['in', 'rev2', 0]])
  t.same(h.rows(), [[['rev1', 1, 1]], [['rev2', 1, 1]]])
  const poke = h.batches[0]![0]!
  t.same(poke, {
    namespace: NS,
    name: 'rev1',
    stat: { podName: POD, averageConcurrentRequests: 1, averageProxiedConcurrentRequests: 0, requestCount: 1, proxiedRequestCount: 0, processUptime: 0, timestamp: 0 },
  }, 'proxied fields, uptime and timestamp are 0')
})

t.test("TestStats: in'n out: the first report is discounted by the poke", async (t) => {
  const h = harness()
  run(h, [['in', 'rev1', 0], ['out', 'rev1', 1], ['in', 'rev1', 1], ['out', 'rev1', 2], ['tick', 2]])
  t.same(h.rows(), [[['rev1', 1, 1]], [['rev1', 0, 1]]])
})

t.test('TestStats: scale to two: (1,1) poke, (1,1) first report, then (2,0)', async (t) => {
  const h = harness()
  run(h, [['in', 'rev1', 0], ['in', 'rev1', 0], ['tick', 1], ['tick', 2]])
  t.same(h.rows(), [[['rev1', 1, 1]], [['rev1', 1, 1]], [['rev1', 2, 0]]])
})

t.test('TestStats: an idle window deletes the entry and the next request pokes again', async (t) => {
  const h = harness()
  run(h, [['in', 'rev1', 0], ['out', 'rev1', 1], ['tick', 1]])
  t.same(h.rows(), [[['rev1', 1, 1]], [['rev1', 0, 0]]], 'first report discounted to (0, 0)')
  t.equal(h.cr.size, 1, 'a window with activity keeps the entry')
  run(h, [['tick', 2]])
  t.same(h.rows()[2], [['rev1', 0, 0]], 'the idle window is still reported')
  t.equal(h.cr.size, 0, 'then the entry is gone')
  run(h, [['in', 'rev1', 3]])
  t.same(h.rows()[3], [['rev1', 1, 1]], 'scale from zero again')
  t.equal(h.batches.length, 4)
})

t.test('TestStats: multiple revisions tick as ONE batch', async (t) => {
  const h = harness()
  run(h, [['in', 'rev1', 0], ['in', 'rev2', 0], ['in', 'rev3', 0], ['tick', 0]])
  t.same(h.rows(), [
    [['rev1', 1, 1]], [['rev2', 1, 1]], [['rev3', 1, 1]],
    [['rev1', 0, 0], ['rev2', 0, 0], ['rev3', 0, 0]],
  ])
  t.equal(h.cr.size, 3, 'entries held by requests in flight are kept')
})

t.test('TestStats: interleaved requests over 2 ms report (0.5, 1)', async (t) => {
  const h = harness()
  // The tick's time (0) is before the last event: only the events' time counts.
  run(h, [['in', 'rev1', 0], ['in', 'rev1', 0], ['out', 'rev1', 1], ['out', 'rev1', 2], ['tick', 0]])
  t.same(h.rows(), [[['rev1', 1, 1]], [['rev1', 0.5, 1]]])
})

t.test('three requests then a report: (2, 2) after the poke (TestConcurrencyReporterRun)', async (t) => {
  const h = harness()
  run(h, [['in', 'rev1', 0], ['in', 'rev1', 0], ['in', 'rev1', 0], ['tick', 0.000001]])
  t.same(h.rows(), [[['rev1', 1, 1]], [['rev1', 2, 2]]])
})

t.test('request_concurrency gauge gets the adjusted concurrency (TestMetricsReported)', async (t) => {
  const h = harness()
  run(h, [['in', 'rev1', 0], ['in', 'rev1', 0], ['in', 'rev1', 0], ['in', 'rev1', 0], ['tick', 0.000001]])
  t.same(h.gauge, [['rev1', 3]], 'first report: 4 minus the poke')
  run(h, [['tick', 0.000002]])
  t.same(h.gauge, [['rev1', 3], ['rev1', 4]], 'then the real concurrency')
})

t.test('an unmatched requestOut is ignored (no negative concurrency)', async (t) => {
  const h = harness()
  h.cr.requestOut(NS, 'never-seen')
  run(h, [['in', 'rev1', 0], ['out', 'rev1', 1], ['out', 'rev1', 1], ['tick', 2]])
  t.same(h.rows(), [[['rev1', 1, 1]], [['rev1', 0, 0]]])
  run(h, [['tick', 3]])
  t.same(h.rows()[2], [['rev1', 0, 0]])
  t.equal(h.cr.size, 0)
})

t.test('namespaces keep revisions of the same name apart', async (t) => {
  const h = harness()
  h.cr.requestIn('a', 'rev')
  h.cr.requestIn('b', 'rev')
  t.equal(h.batches.length, 2, 'each is a first request')
  t.same(h.batches.map((b) => b[0]!.namespace), ['a', 'b'])
})

t.test('no report while nothing is tracked; start() ticks at the period, stop() ends it', async (t) => {
  const batches: WireStatMessage[][] = []
  const cr = new ConcurrencyReporter({ podName: POD, send: (m) => { batches.push(m) } })
  const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
  const before = timeouts()
  cr.start(20)
  t.teardown(() => cr.stop())
  t.equal(timeouts(), before, 'the interval does not keep the process alive')
  await new Promise((r) => setTimeout(r, 70))
  t.equal(batches.length, 0, 'nothing to report, nothing sent')
  const t0 = performance.now()
  cr.requestIn(NS, 'rev1')
  t.equal(batches.length, 1, 'the poke is sent synchronously')
  while (batches.length < 3 && performance.now() - t0 < 1000) await new Promise((r) => setTimeout(r, 5))
  t.ok(batches.length >= 3, `periodic reports follow (${batches.length} batches)`)
  cr.stop()
  const n = batches.length
  await new Promise((r) => setTimeout(r, 60))
  t.equal(batches.length, n, 'no reports after stop()')
})

t.test('on the wire: immediate poke, one frame per batch with every revision, GC then a new poke', async (t) => {
  const autoscaler = await startTestAutoscaler()
  const sender = new StatSender({ url: autoscaler.url, log: createLogger({ name: 'test', level: 'silent' }) })
  const cr = new ConcurrencyReporter({ podName: POD, send: (m) => sender.send(m) })
  t.teardown(async () => {
    cr.stop()
    await sender.stop()
    await autoscaler.stop()
  })
  sender.start()
  await autoscaler.waitFor(() => sender.connected, 2000, 'the sender to connect')
  cr.start(1000)

  const t0 = performance.now()
  cr.requestIn(NS, 'rev1')
  const poke = await autoscaler.waitForStat((s) => s.name === 'rev1')
  t.ok(poke.at - t0 < 500, `poke arrived after ${Math.round(poke.at - t0)} ms, before the 1 s tick`)
  t.same([poke.namespace, poke.stat.podName, poke.stat.averageConcurrentRequests, poke.stat.requestCount], [NS, POD, 1, 1])
  t.equal(autoscaler.frames.length, 1, 'the poke is a frame of its own')

  // Faster ticks from here on, to keep the test short.
  cr.stop()
  cr.requestIn(NS, 'rev2')
  cr.requestIn('other', 'rev3')
  await autoscaler.waitForFrames(3)
  cr.start(150)
  const [first, second] = [...(await autoscaler.waitForFrames(5))].slice(3)
  for (const f of [first!, second!]) {
    t.same(f.messages.map((m) => `${m.namespace}/${m.name}`), ['test/rev1', 'test/rev2', 'other/rev3'], 'one frame holds all revisions')
    t.ok(f.messages.every((m) => m.stat!.podName === POD && m.stat!.timestamp === 0))
  }
  t.same(first!.messages.map((m) => [m.stat!.averageConcurrentRequests, m.stat!.requestCount]), [[0, 0], [0, 0], [0, 0]], 'first report minus the poke')
  t.same(second!.messages.map((m) => [m.stat!.averageConcurrentRequests, m.stat!.requestCount]), [[1, 0], [1, 0], [1, 0]], 'then one request in flight each')

  cr.requestOut(NS, 'rev1')
  cr.requestOut(NS, 'rev2')
  cr.requestOut('other', 'rev3')
  // A window with some in-flight time, then an idle one that collects the entries.
  await autoscaler.waitFor(() => autoscaler.frames.slice(5).some((f) => f.messages.every((m) => m.stat!.averageConcurrentRequests === 0)), 2000, 'an idle report')
  t.equal(cr.size, 0, 'idle entries collected')
  const t1 = performance.now()
  cr.requestIn(NS, 'rev1')
  const again = await autoscaler.waitForStat((s) => s.name === 'rev1' && s.at > t1)
  t.same([again.stat.averageConcurrentRequests, again.stat.requestCount], [1, 1], 'a new poke')
  t.ok(again.at - t1 < 500, 'sent at once')
  cr.requestOut(NS, 'rev1')
})
